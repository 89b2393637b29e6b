"""The jobs: training (ingest + CLTV comparison and gated promotion) and daily scoring."""

import dagster as dg

# Both jobs rewrite the unpartitioned raw_* tables (and training the CLTV frame): dagster.yaml and
# deploy/dagster.yaml let one run with this tag at a time, so a sensor-launched training run
# and the nightly scoring run queue behind each other instead of interleaving their writes.
SHARED_TABLES_TAG = {"customer_intel/writes": "shared-tables"}

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingest", "cltv"),
    description="Ingest and validate the raw tables, compare every CLTV candidate on a time holdout, "
    "track them in MLflow and promote the champion if it passes the gate.",
    tags=SHARED_TABLES_TAG,
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("ingest", "features", "scoring"),
    description="Ingest and validate the raw tables, build features as of the partition date and write scored_customers "
    "with the champions loaded by MLflow alias (no training).",
    tags=SHARED_TABLES_TAG,
)
