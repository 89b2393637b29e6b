"""Automation: the nightly scoring schedule and the retraining sensors (landing files, feature drift)."""

from customer_intel.automation.schedules import nightly_scoring_schedule
from customer_intel.automation.sensors import feature_drift_sensor, raw_landing_sensor

__all__ = ["feature_drift_sensor", "nightly_scoring_schedule", "raw_landing_sensor"]
