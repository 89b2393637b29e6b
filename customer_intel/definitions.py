"""The single Definitions object of the customer_intel code location."""

from __future__ import annotations

import dagster as dg

from customer_intel.assets import features, ingest, scoring
from customer_intel.resources import build_resources

all_assets = dg.load_assets_from_modules([ingest, features, scoring])
all_asset_checks = dg.load_asset_checks_from_modules([scoring])

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("ingest", "features", "scoring"),
    description="Ingest and validate the raw tables, build features as of the partition date and write scored_customers.",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_asset_checks,
    jobs=[scoring_job],
    resources=build_resources(),
)
