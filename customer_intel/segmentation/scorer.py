"""The registered segmentation scorer: the input space, the fitted clusterer and the named segments.

Its module path is part of every registered segmentation model (MLflow pickles it by reference):
keep ``customer_intel.segmentation.scorer.SegmentScorer`` importable and give new fields defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.modeling.scorer import ScorerInfo
from customer_intel.segmentation.space import InputSpace

SCORE_COLUMNS = ("id", "name", "distance", "outlier")  # published as segment_id, segment_name, ...


@dataclass
class SegmentScorer:
    """Assigns every customer (new ones included) to a named segment.

    ``segment_distance``: Euclidean distance to the segment's centre in the standardised input
    space; ``segment_outlier``: farther than 99% of the segment's training customers, or a density
    method's noise point (assigned to the nearest segment all the same).
    """

    candidate: str
    space: InputSpace
    model: object
    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    outlier_distance: tuple[float, ...]  # per segment: the 99th percentile of its training customers' distances
    cutoff: str | None = None
    code_version: str = "unknown"
    extra: dict = field(default_factory=dict)

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("segmentation", self.candidate, self.cutoff, None, self.code_version)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return SCORE_COLUMNS

    def assign(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment ids, distances to the assigned centre, outlier flags) for every row."""
        X = self.space.transform(features)
        labels = np.asarray(self.model.predict(X), dtype=np.int64)
        distance = self.model.transform(X)[np.arange(len(X)), labels] if len(X) else np.zeros(0)
        outlier = distance > np.asarray(self.outlier_distance)[labels]
        if hasattr(self.model, "is_noise"):
            outlier |= np.asarray(self.model.is_noise(X), dtype=bool)
        return labels, distance, outlier

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        labels, distance, outlier = self.assign(features)
        return pd.DataFrame({"id": labels, "name": np.asarray(self.names, dtype=object)[labels], "distance": distance,
                             "outlier": outlier}, index=features.index)
