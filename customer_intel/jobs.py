"""The jobs, built from the model families: training (ingest + every family's lifecycle) and daily scoring.

With one scoring shard (``CUSTOMER_INTEL_SCORING_SHARDS`` = 1, the default) one run of
``scoring_job`` scores a date end to end. With N > 1 a date is a chain of runs, because a Dagster
job holds one partitions definition and the raw tables, the shards and the published tables have
three: ``ingest_job`` (the unpartitioned raw tables and their contract checks), then N parallel
runs of ``shard_scoring_job`` (features and every family's daily scores of one date x shard),
then one run of ``publish_job`` (``scored_customers``, ``campaign_targets`` and
``lookalike_audience`` of the date, over every shard). The sensors of
``customer_intel.automation.shards`` launch each link when the one before it has succeeded.
"""

import dagster as dg

from customer_intel.assets import FAMILIES
from customer_intel.assets.factory import SCORING_GROUP
from customer_intel.assets.partitions import SHARDS
from customer_intel.table_names import CUSTOMER_FEATURES

# Training and scoring (with shards: ingest_job) rewrite the unpartitioned raw_* tables: dagster.yaml
# and deploy/dagster.yaml let one run with this tag at a time, so a sensor-launched training run
# and the nightly scoring run queue behind each other instead of interleaving their writes. With
# shards the lock ends with ingest_job: the shard runs read the raw tables, and a shard (or a family's
# scores) whose tables were rewritten since its ingest fails rather than mix two ingests
# (partitions.check_same_ingest), and the retraining sensors wait while a date's chain is in flight.
SHARED_TABLES_TAG = {"customer_intel/writes": "shared-tables"}
FAMILY_GROUPS = tuple(family.spec.name for family in FAMILIES)
SHARD_ASSETS = (CUSTOMER_FEATURES, *(family.spec.scores_name for family in FAMILIES))
"""The assets of one date x shard: the features and every family's daily scores."""

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingest", *FAMILY_GROUPS),
    description="Ingest and validate the raw tables; for every model family (" + ", ".join(FAMILY_GROUPS) + "), compare its "
    "candidates on a time split, track them in MLflow and promote the champion if it passes the gate.",
    tags=SHARED_TABLES_TAG,
)

if SHARDS == 1:
    scoring_job = dg.define_asset_job(
        "scoring_job",
        selection=dg.AssetSelection.groups("ingest", "features", SCORING_GROUP),
        description="Ingest and validate the raw tables, build features as of the partition date, score them with every "
        "family's champion (loaded by MLflow alias, no training) and write scored_customers.",
        tags=SHARED_TABLES_TAG,
    )
    SCORING_JOBS = (scoring_job,)
else:
    ingest_job = dg.define_asset_job(
        "ingest_job",
        selection=dg.AssetSelection.groups("ingest"),
        description=f"The first link of a date's scoring with {SHARDS} shards: ingest and validate the raw tables. On success "
        "the shard sensor launches shard_scoring_job for every shard of the date in the run's customer_intel/date tag.",
        tags=SHARED_TABLES_TAG,
    )
    shard_scoring_job = dg.define_asset_job(
        "shard_scoring_job",
        selection=dg.AssetSelection.assets(*SHARD_ASSETS),
        description=f"One date x shard (of {SHARDS}): the shard's customers' features as of the date and every family's daily "
        "scores from its champion. The shards of a date run in parallel; they read the raw tables the date's ingest_job wrote.",
    )
    publish_job = dg.define_asset_job(
        "publish_job",
        selection=dg.AssetSelection.groups(SCORING_GROUP) - dg.AssetSelection.assets(*SHARD_ASSETS),
        description="The last link: scored_customers, campaign_targets and lookalike_audience of the date, each one table "
        f"over every one of the {SHARDS} shards (launched when they have all succeeded for the same ingest).",
    )
    SCORING_JOBS = (ingest_job, shard_scoring_job, publish_job)
