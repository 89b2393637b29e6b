"""The nightly scoring schedule."""

import datetime as dt

import dagster as dg

from customer_intel.assets.partitions import DATE_TAG, SHARDS, daily_partitions
from customer_intel.jobs import SCORING_JOBS

NIGHTLY_HOUR_UTC = 2
DESCRIPTION = "Score yesterday's (the last complete) daily partition at 02:00 UTC: scored_customers and campaign_targets."


def nightly_date(scheduled: dt.datetime) -> str:
    """The date a tick scores: the day before the tick's, the last complete one."""
    return (scheduled.astimezone(dt.UTC) - dt.timedelta(days=1)).date().isoformat()


def build_nightly_schedule() -> dg.ScheduleDefinition:
    """One shard: ``scoring_job`` for the latest complete daily partition. N shards: ``ingest_job`` tagged with that date,
    which leads to the shard runs and the publish run (``customer_intel.automation.shards``)."""
    if SHARDS == 1:
        # At 02:00 UTC on day D the schedule scores partition D-1: the day that has just ended, the
        # last complete one (features as of the end of D-1, champions loaded by alias). Dagster's
        # partitioned-job schedules target the latest complete partition by design.
        return dg.build_schedule_from_partitioned_job(
            SCORING_JOBS[0], name="nightly_scoring_schedule", hour_of_day=NIGHTLY_HOUR_UTC, minute_of_hour=0,
            description=DESCRIPTION, default_status=dg.DefaultScheduleStatus.RUNNING)

    @dg.schedule(job=SCORING_JOBS[0], cron_schedule=f"0 {NIGHTLY_HOUR_UTC} * * *", execution_timezone="UTC",
                 name="nightly_scoring_schedule", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=DESCRIPTION + f" With {SHARDS} shards: ingest_job, then the shards, then publish_job.")
    def nightly_scoring_schedule(context: dg.ScheduleEvaluationContext):
        day = nightly_date(context.scheduled_execution_time or dt.datetime.now(dt.UTC))
        if not daily_partitions.has_partition_key(day):
            return dg.SkipReason(f"{day} is before the first daily partition")
        return dg.RunRequest(run_key=day, tags={DATE_TAG: day})

    return nightly_scoring_schedule


nightly_scoring_schedule = build_nightly_schedule()
