"""The chain of runs that scores a date with N > 1 scoring shards: ingest, the shards in parallel, publish.

``nightly_scoring_schedule`` (see ``schedules``) launches ``ingest_job`` for yesterday with the date in
the ``customer_intel/date`` tag. When it succeeds, ``shard_scoring_sensor`` launches one
``shard_scoring_job`` run per shard of that date, each tagged with the ingest run's id; the run
queue runs them side by side (``max_concurrent_runs``; under ``k8s_job_executor`` each its own pod).
Each time a shard succeeds, ``publish_sensor`` looks for the date's other shards of the same
ingest; when every one has succeeded it launches ``publish_job`` for the date, once (its run key
is the date and the ingest). A shard that fails leaves the date unpublished (yesterday's tables
stay the latest); re-executing it from the UI keeps its tags, and its success publishes the date.
"""

import dagster as dg

from customer_intel.assets.partitions import DATE, DATE_TAG, INGEST_TAG, SHARD, SHARDS, daily_partitions
from customer_intel.jobs import SCORING_JOBS

SUCCESS = dg.DagsterRunStatus.SUCCESS
PARTITION_TAG = "dagster/partition"


def shard_in(partition: str) -> int:
    """The shard of a ``date|shard`` partition key (a multi-partition key's dimensions in name order: date, shard)."""
    return int(str(partition).rsplit("|", 1)[-1])


def shard_run_requests(ingest_run: dg.DagsterRun, shards: int = SHARDS) -> list[dg.RunRequest] | dg.SkipReason:
    """One run request per shard of the ingest run's date (none for an ingest run launched without a date)."""
    day = ingest_run.tags.get(DATE_TAG)
    if day is None:
        return dg.SkipReason(f"ingest run {ingest_run.run_id} has no {DATE_TAG} tag (launched by hand): no date to score")
    if not daily_partitions.has_partition_key(day):
        return dg.SkipReason(f"ingest run {ingest_run.run_id}: {day} is not a daily partition")
    tags = {DATE_TAG: day, INGEST_TAG: ingest_run.run_id}
    return [dg.RunRequest(run_key=f"{ingest_run.run_id}:{shard}", partition_key=dg.MultiPartitionKey({DATE: day, SHARD: str(shard)}),
                          tags=tags) for shard in range(shards)]


def publish_run_request(instance: dg.DagsterInstance, shard_run: dg.DagsterRun, shards: int = SHARDS) -> dg.RunRequest | dg.SkipReason:
    """The date's publish run when every shard of the shard run's date and ingest has succeeded."""
    day, ingest = shard_run.tags.get(DATE_TAG), shard_run.tags.get(INGEST_TAG)
    if day is None or ingest is None:
        return dg.SkipReason(f"shard run {shard_run.run_id} was not launched for an ingest ({DATE_TAG}, {INGEST_TAG} tags): "
                             "run publish_job for its date by hand")
    records = instance.get_run_records(dg.RunsFilter(job_name=shard_run.job_name, statuses=[SUCCESS],
                                                     tags={DATE_TAG: day, INGEST_TAG: ingest}))
    done = {shard_in(record.dagster_run.tags[PARTITION_TAG]) for record in records if PARTITION_TAG in record.dagster_run.tags}
    missing = sorted(set(range(shards)) - done)
    if missing:
        return dg.SkipReason(f"{day}: {len(done)} of {shards} shards done for ingest {ingest}; waiting for shard(s) {missing}")
    return dg.RunRequest(run_key=f"publish:{day}:{ingest}", partition_key=day, tags={DATE_TAG: day, INGEST_TAG: ingest})


IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def chain_in_flight(instance: dg.DagsterInstance, shards: int = SHARDS) -> str | None:
    """What of a date's chain is queued or running (None with one shard, or when nothing is): the retraining sensors
    wait for it, since training re-ingests the raw tables the shard runs read."""
    if shards == 1:
        return None
    for job_name in ("ingest_job", "shard_scoring_job", "publish_job"):
        records = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1)
        if records:
            run = records[0].dagster_run
            return f"{job_name} run {run.run_id} ({run.tags.get(DATE_TAG, 'no date')}) is {run.status.value.lower()}"
    return None


def waiting_for_chain(context: dg.SensorEvaluationContext) -> dg.SkipReason | None:
    """The skip of a retraining sensor's tick while a date's chain is in flight (never with one shard); its cursor stays."""
    busy = chain_in_flight(context.instance) if SHARDS > 1 else None
    return dg.SkipReason(f"waiting for the scoring chain: {busy}") if busy else None


def build_shard_sensors() -> list[dg.SensorDefinition]:
    """The two run-status sensors of the chain (none with one shard: ``scoring_job`` does it all)."""
    if SHARDS == 1:
        return []
    ingest_job, shard_scoring_job, publish_job = SCORING_JOBS

    @dg.run_status_sensor(run_status=SUCCESS, monitored_jobs=[ingest_job], request_job=shard_scoring_job,
                          name="shard_scoring_sensor", default_status=dg.DefaultSensorStatus.RUNNING,
                          description=f"When ingest_job succeeds for a date, launch shard_scoring_job for each of its {SHARDS} shards.")
    def shard_scoring_sensor(context: dg.RunStatusSensorContext):
        return shard_run_requests(context.dagster_run)

    @dg.run_status_sensor(run_status=SUCCESS, monitored_jobs=[shard_scoring_job], request_job=publish_job,
                          name="publish_sensor", default_status=dg.DefaultSensorStatus.RUNNING,
                          description=f"When all {SHARDS} shards of a date (of one ingest) have succeeded, launch publish_job for the date.")
    def publish_sensor(context: dg.RunStatusSensorContext):
        return publish_run_request(context.instance, context.dagster_run)

    return [shard_scoring_sensor, publish_sensor]


SHARD_SENSORS = build_shard_sensors()
