"""The daily partitions shared by every scored asset (and their checks)."""

import warnings

import dagster as dg

from customer_intel.resources.settings import partitions_start

# A check on a daily-partitioned asset must declare the same partitions_def (otherwise it loads
# every partition and fails when one is missing). Dagster marks that API "preview"; we rely on
# it on purpose, so its warning is noise in the UI and the CLI.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec is currently in preview")

# definition-time: Dagster needs the partition set while it loads the code location
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")
