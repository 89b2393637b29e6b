"""The code location the killed-run test serves (``dagster api grpc -m customer_intel_tests.faults.kill_location``).

The project's own assets, checks, training_job, scoring_job and resources; without its sensors and
schedule, so the daemon launches only the runs the test submits (the landing sensor would start a
training run of its own on the test's raw files).
"""

import dagster as dg

from customer_intel.definitions import all_asset_checks, all_assets
from customer_intel.jobs import scoring_job, training_job
from customer_intel.resources import build_resources

defs = dg.Definitions(assets=all_assets, asset_checks=all_asset_checks, jobs=[training_job, scoring_job], resources=build_resources())
