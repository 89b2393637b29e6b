"""The nightly scoring schedule."""

import dagster as dg

from customer_intel.jobs import scoring_job

NIGHTLY_HOUR_UTC = 2

# At 02:00 UTC on day D the schedule scores partition D-1: the day that has just ended, the
# last complete one (features as of the end of D-1, champions loaded by alias). Dagster's
# partitioned-job schedules target the latest complete partition by design.
nightly_scoring_schedule = dg.build_schedule_from_partitioned_job(
    scoring_job,
    name="nightly_scoring_schedule",
    hour_of_day=NIGHTLY_HOUR_UTC,
    minute_of_hour=0,
    description="Score yesterday's (the last complete) daily partition at 02:00 UTC: scored_customers and campaign_targets.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
