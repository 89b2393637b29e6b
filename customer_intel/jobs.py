"""The jobs: training (ingest + CLTV comparison and gated promotion) and daily scoring."""

import dagster as dg

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingest", "cltv"),
    description="Ingest and validate the raw tables, compare every CLTV candidate on a time holdout, "
    "track them in MLflow and promote the champion if it passes the gate.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("ingest", "features", "scoring"),
    description="Ingest and validate the raw tables, build features as of the partition date and write scored_customers "
    "with the champions loaded by MLflow alias (no training).",
)
