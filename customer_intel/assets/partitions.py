"""The partitions of the daily path: dates, and with more than one shard, dates x customer shards.

With ``CUSTOMER_INTEL_SCORING_SHARDS`` = 1 (the default) every daily asset is partitioned by date
and one run of ``scoring_job`` scores a date. With N > 1 the features and every family's daily
scores are partitioned by date x shard (a ``MultiPartitionsDefinition``; shard ``s`` holds the
customers whose block, ``engine.customer_key() % 65,536``, is ``s`` modulo N), so the shards of a date run as parallel
runs, and the tables the bank reads (``scored_customers``, ``campaign_targets``,
``lookalike_audience``) stay one partition per date, each built from every shard of its date.
"""

import warnings

import dagster as dg

from customer_intel.resources.settings import partitions_start, scoring_shards

# A check on a daily-partitioned asset must declare the same partitions_def (otherwise it loads
# every partition and fails when one is missing). Dagster marks that API "preview"; we rely on
# it on purpose, so its warning is noise in the UI and the CLI.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec is currently in preview")
# the same for the mapping from a date's shards to the date (beta): publish_job reads every shard of its date through it
warnings.filterwarnings("ignore", message="Class `MultiToSingleDimensionPartitionMapping` is currently in beta")

DATE, SHARD = "date", "shard"
DATE_TAG = "customer_intel/date"  # the date an ingest_job run (and the shard and publish runs it leads to) scores
INGEST_TAG = "customer_intel/ingest_run"  # the ingest_job run whose raw tables a shard or publish run reads

# definition-time: Dagster needs the partition sets while it loads the code location
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")
SHARDS = scoring_shards()
shard_partitions = dg.StaticPartitionsDefinition([str(s) for s in range(SHARDS)])
scoring_partitions: dg.PartitionsDefinition = (
    dg.MultiPartitionsDefinition({DATE: daily_partitions, SHARD: shard_partitions}) if SHARDS > 1 else daily_partitions)
"""The partitions of the features and the families' daily scores: dates, or dates x shards."""


def every_shard(key: str) -> dg.AssetIn:
    """An input of a daily asset from a sharded one: every shard of the date (a dict of frames by partition key)."""
    if SHARDS == 1:
        return dg.AssetIn(key)
    return dg.AssetIn(key, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE))


def date_and_shard(context) -> tuple[str, tuple[int, int]]:
    """(the date, (shard, shards)) of a scoring-partitioned step."""
    key = context.partition_key
    if SHARDS == 1:
        return key, (0, 1)
    # a run launched by tag has the key as text (``date|shard``); a MultiPartitionKey is text too, with its dimensions
    dims = scoring_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
    return dims[DATE], (int(dims[SHARD]), SHARDS)


def shard_of(key: str) -> int:
    """The shard of a scoring partition key (``date|shard``, or a date with one shard)."""
    if SHARDS == 1:
        return 0
    return int(scoring_partitions.get_partition_key_from_str(str(key)).keys_by_dimension[SHARD])


def merge_shards(loaded):
    """One frame of a date from what ``every_shard`` loaded (a frame with one shard, else a dict by partition key), shards in order."""
    import pandas as pd

    if isinstance(loaded, pd.DataFrame):
        return loaded
    frames = [loaded[key] for key in sorted(loaded, key=shard_of)]
    if len(frames) != SHARDS:
        raise ValueError(f"{len(frames)} of {SHARDS} shards loaded")
    return pd.concat(frames, ignore_index=True)


def check_same_ingest(context, raw_tables) -> None:
    """Fail a run that an ingest_job run launched (its ``INGEST_TAG``) when a raw table has been written since by another
    run: the shards of a date would score two different ingests, and the published table would mix them."""
    ingest = context.run.tags.get(INGEST_TAG)
    if ingest is None:
        return
    # the ingest run and the runs it re-executed (a re-execution from failure writes only the tables that failed)
    lineage, run_id = set(), ingest
    while run_id and run_id not in lineage:
        lineage.add(run_id)
        record = context.instance.get_run_by_id(run_id)
        run_id = record.parent_run_id if record is not None else None
    for table in raw_tables:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(table))
        if event is not None and event.run_id not in lineage:
            raise dg.Failure(  # a guard, not a glitch: never retried
                allow_retries=False,
                description=f"{table} was written by run {event.run_id} after ingest run {ingest} launched this one; "
                f"scoring {context.partition_key} now would mix two ingests. Run ingest_job for the date again (the "
                "shard sensor then relaunches every shard).",
                metadata={"ingest_run": ingest, "latest_writer": event.run_id, "table": table})
