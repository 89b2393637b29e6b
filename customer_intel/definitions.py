"""The single Definitions object of the customer_intel code location."""

import dagster as dg

from customer_intel.assets import cltv, features, ingest, scoring
from customer_intel.automation import feature_drift_sensor, nightly_scoring_schedule, raw_landing_sensor
from customer_intel.jobs import scoring_job, training_job
from customer_intel.resources import build_resources

all_assets = dg.load_assets_from_modules([ingest, features, scoring, cltv])
all_asset_checks = dg.load_asset_checks_from_modules([scoring, cltv])

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_asset_checks,
    jobs=[training_job, scoring_job],
    schedules=[nightly_scoring_schedule],
    sensors=[raw_landing_sensor, feature_drift_sensor],
    resources=build_resources(),
)
