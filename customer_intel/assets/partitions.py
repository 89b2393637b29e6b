"""The daily partitions shared by every scored asset (and their checks)."""

import dagster as dg

from customer_intel.resources.settings import Settings

daily_partitions = dg.DailyPartitionsDefinition(start_date=Settings.from_env().partitions_start, timezone="UTC")
