"""The daily partitions shared by every scored asset (and their checks)."""

import warnings

import dagster as dg

from customer_intel.resources.settings import Settings

# A check on a daily-partitioned asset must declare the same partitions_def (otherwise it loads
# every partition and fails when one is missing). Dagster marks that API "preview"; we rely on
# it on purpose, so its warning is noise in the UI and the CLI.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec is currently in preview")

daily_partitions = dg.DailyPartitionsDefinition(start_date=Settings.from_env().partitions_start, timezone="UTC")
