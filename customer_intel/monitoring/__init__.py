"""Monitoring without Dagster: feature drift (PSI) and the landing-file cursor the sensors use."""

from customer_intel.monitoring.drift import DEFAULT_DRIFT_FEATURES, DriftReport, drift_report, psi
from customer_intel.monitoring.landing import LandingCursor

__all__ = ["DEFAULT_DRIFT_FEATURES", "DriftReport", "LandingCursor", "drift_report", "psi"]
