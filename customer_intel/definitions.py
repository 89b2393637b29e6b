"""The single Definitions object of the customer_intel code location.

Importing it reads no runtime configuration: resources resolve their unset fields from the
environment when they run (only the partition start and the landing interval are read here).
"""

import dagster as dg

from customer_intel.assets import FAMILIES, features, ingest
from customer_intel.assets.campaign_targets import campaign_targets
from customer_intel.assets.embeddings import lookalike_audience_asset
from customer_intel.assets.scoring import build_scored_customers
from customer_intel.automation import SHARD_SENSORS, feature_drift_sensor, nightly_scoring_schedule, raw_landing_sensor
from customer_intel.jobs import SCORING_JOBS, training_job
from customer_intel.resources import build_resources

scored_customers = build_scored_customers([family.contribution for family in FAMILIES if family.spec.in_scored_customers])
all_assets = [*dg.load_assets_from_modules([ingest, features]), *(a for family in FAMILIES for a in family.assets), scored_customers,
              campaign_targets, lookalike_audience_asset]
all_asset_checks = [c for family in FAMILIES for c in family.checks]

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_asset_checks,
    jobs=[training_job, *SCORING_JOBS],
    schedules=[nightly_scoring_schedule],
    sensors=[raw_landing_sensor, feature_drift_sensor, *SHARD_SENSORS],
    resources=build_resources(),
)
