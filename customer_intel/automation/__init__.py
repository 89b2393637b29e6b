"""Automation: the nightly scoring schedule, the retraining sensors (landing files, feature drift) and, with scoring
shards, the sensors that chain a date's ingest, shard and publish runs."""

from customer_intel.automation.schedules import nightly_scoring_schedule
from customer_intel.automation.sensors import feature_drift_sensor, raw_landing_sensor
from customer_intel.automation.shards import SHARD_SENSORS

__all__ = ["SHARD_SENSORS", "feature_drift_sensor", "nightly_scoring_schedule", "raw_landing_sensor"]
