"""The drift sensor's settings as a resource: which features, which threshold, against which training frame."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from customer_intel.resources.settings import Settings
from customer_intel.table_names import CUSTOMER_FEATURES, training_frame

DEFAULT_REFERENCE_FAMILY = "cltv"


class DriftPolicy(dg.ConfigurableResource):
    """PSI of the latest published ``customer_features`` partition against a family's training frame.

    The reference is the training frame's validation rows: features as of the cutoff the champion
    was judged at. Unset fields come from the environment when the sensor ticks.
    """

    psi_threshold: float | None = Field(default=None, description="PSI above which a feature counts as drifted; "
                                        "unset: $CUSTOMER_INTEL_DRIFT_PSI_THRESHOLD, else 0.2")
    features: list[str] | None = Field(default=None, description="features compared; unset: $CUSTOMER_INTEL_DRIFT_FEATURES, "
                                       "else the behaviour features (customer age T and t_x move with the calendar)")
    reference_family: str = Field(default=DEFAULT_REFERENCE_FAMILY, description="the family whose training frame is the reference")
    live_asset: str = Field(default=CUSTOMER_FEATURES, description="the daily features table compared")

    @property
    def threshold(self) -> float:
        return self.psi_threshold if self.psi_threshold is not None else Settings.from_env().drift_psi_threshold

    @property
    def compared_features(self) -> tuple[str, ...]:
        return tuple(self.features) if self.features is not None else Settings.from_env().drift_features

    @property
    def reference_asset(self) -> str:
        return training_frame(self.reference_family)
