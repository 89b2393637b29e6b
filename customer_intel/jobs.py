"""The jobs, built from the model families: training (ingest + every family's lifecycle) and daily scoring."""

import dagster as dg

from customer_intel.assets import FAMILIES
from customer_intel.assets.factory import SCORING_GROUP

# Both jobs rewrite the unpartitioned raw_* tables (and training the families' frames): dagster.yaml
# and deploy/dagster.yaml let one run with this tag at a time, so a sensor-launched training run
# and the nightly scoring run queue behind each other instead of interleaving their writes.
SHARED_TABLES_TAG = {"customer_intel/writes": "shared-tables"}
FAMILY_GROUPS = tuple(family.spec.name for family in FAMILIES)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingest", *FAMILY_GROUPS),
    description="Ingest and validate the raw tables; for every model family (" + ", ".join(FAMILY_GROUPS) + "), compare its "
    "candidates on a time split, track them in MLflow and promote the champion if it passes the gate.",
    tags=SHARED_TABLES_TAG,
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("ingest", "features", SCORING_GROUP),
    description="Ingest and validate the raw tables, build features as of the partition date, score them with every "
    "family's champion (loaded by MLflow alias, no training) and write scored_customers.",
    tags=SHARED_TABLES_TAG,
)
