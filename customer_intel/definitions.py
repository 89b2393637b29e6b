"""The single Definitions object of the customer_intel code location."""

from __future__ import annotations

import dagster as dg

from customer_intel.assets import cltv, features, ingest, scoring
from customer_intel.resources import build_resources

all_assets = dg.load_assets_from_modules([ingest, features, scoring, cltv])
all_asset_checks = dg.load_asset_checks_from_modules([scoring, cltv])

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingest", "cltv"),
    description="Ingest and validate the raw tables, compare every CLTV candidate on a time holdout, "
    "track them in MLflow and promote the champion if it passes the gate.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("ingest", "features", "scoring"),
    description="Ingest and validate the raw tables, build features as of the partition date and write scored_customers.",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_asset_checks,
    jobs=[training_job, scoring_job],
    resources=build_resources(),
)
