"""Per-customer features as of a date: the one builder shared by training and scoring (no Dagster here)."""

from customer_intel.features.rfm import (
    FeatureFrame,
    FeatureInputError,
    as_of_day,
    build_customer_features,
    calibration_holdout_frame,
    holdout_targets,
    net_spend_to_date,
)
from customer_intel.features.segments import SEGMENT_NAMES, add_rfm_scores, quintile_score, segment_name

__all__ = [
    "SEGMENT_NAMES", "FeatureFrame", "FeatureInputError", "add_rfm_scores", "as_of_day",
    "build_customer_features", "calibration_holdout_frame", "holdout_targets", "net_spend_to_date", "quintile_score", "segment_name",
]
