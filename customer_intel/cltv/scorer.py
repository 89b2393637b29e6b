"""The registered CLTV scorer: the champion plus the probabilistic model behind it.

Its module path is part of every registered CLTV model (MLflow pickles it by reference): keep
``customer_intel.cltv.scorer.CLTVScorer`` importable, and give new fields defaults, so versions
registered by earlier code still load and score (tested against a registry they wrote).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.cltv.ml import FeatureMatrix, predict_with_interval, stack_features
from customer_intel.modeling.scorer import ScorerInfo

SCORE_COLUMNS = ("p_alive", "expected_purchases", "purchases_low", "purchases_high", "expected_spend_per_purchase",
                 "expected_value", "value_low", "value_high", "cltv")


@dataclass
class CLTVScorer:
    """Scores customers from their features (the scoring-time output of the one feature builder).

    P(alive), intervals and spend always come from ``probabilistic``; when the champion is an ML
    regressor, its point forecast replaces expected purchases and value and CLTV scale with it.
    ``cutoff``: the last day of data the models saw (None for versions registered before it was kept).
    ``stack_horizon_days``: the horizon of the BG/NBD outputs the regressor was trained on as inputs
    (None: ``horizon_days``, as for every version fitted at its own horizon); ``at_horizon`` keeps it,
    so another horizon only rescales the regressor's output instead of feeding it inputs it never saw.
    """

    champion: str
    probabilistic: object  # ProbabilisticCLTV
    horizon_days: int
    regressor: tuple[FeatureMatrix, object] | None = None
    training_days: int = 0
    cutoff: str | None = None
    code_version: str = "unknown"
    stack_horizon_days: int | None = None

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("cltv", self.champion, self.cutoff, int(self.horizon_days), self.code_version)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return SCORE_COLUMNS

    def at_horizon(self, horizon_days: int) -> CLTVScorer:
        """The same models forecasting another horizon (ML forecasts scale with it, as at training)."""
        stack = self.stack_horizon_days if self.stack_horizon_days is not None else self.horizon_days
        return dataclasses.replace(self, horizon_days=int(horizon_days), stack_horizon_days=int(stack))

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        prediction = self.probabilistic.predict(features, self.horizon_days)
        out = prediction[[c for c in SCORE_COLUMNS if c in prediction.columns]].copy()
        if self.regressor is not None:
            matrix, estimator = self.regressor
            stack_horizon = self.stack_horizon_days if self.stack_horizon_days is not None else self.horizon_days
            if stack_horizon == self.horizon_days:
                stacked = stack_features(features, prediction["p_alive"].to_numpy(), prediction["expected_purchases"].to_numpy())
            else:
                stacked = stack_features(features, *self.probabilistic.point_predictions(features, stack_horizon))
            scale = self.horizon_days / max(self.training_days, 1)
            point, interval = predict_with_interval(estimator, matrix.transform(stacked), scale=scale)
            ratio = np.divide(point, prediction["expected_purchases"].to_numpy(), out=np.ones(len(point)), where=prediction["expected_purchases"].to_numpy() > 1e-9)
            out["expected_purchases"] = point
            out["expected_value"] = point * out["expected_spend_per_purchase"]
            out["cltv"] = out["cltv"] * ratio
            if interval is not None:
                out["purchases_low"], out["purchases_high"] = interval.low, interval.high
        out.index = features.index
        return out
