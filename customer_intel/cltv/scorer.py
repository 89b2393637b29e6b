"""What scoring needs from a training run: the champion plus the probabilistic model behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.cltv.ml import FeatureMatrix, predict_with_interval, stack_features

SCORE_COLUMNS = ["p_alive", "expected_purchases", "purchases_low", "purchases_high", "expected_spend_per_purchase",
                 "expected_value", "value_low", "value_high", "cltv"]


@dataclass
class CLTVScorer:
    """Scores customers from their features (the scoring-time output of the one feature builder).

    P(alive), intervals and spend always come from ``probabilistic``; when the champion is an ML
    regressor, its point forecast replaces expected purchases and value and CLTV scale with it.
    """

    champion: str
    probabilistic: "object"  # ProbabilisticCLTV
    horizon_days: int
    regressor: tuple[FeatureMatrix, object] | None = None
    training_days: int = 0

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        prediction = self.probabilistic.predict(features, self.horizon_days)
        out = prediction[[c for c in SCORE_COLUMNS if c in prediction.columns]].copy()
        if self.regressor is not None:
            matrix, estimator = self.regressor
            stacked = stack_features(features, prediction["p_alive"].to_numpy(), prediction["expected_purchases"].to_numpy())
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


def scorer_for(name: str, comparison) -> CLTVScorer | None:
    """The deployable scorer of one candidate of a Comparison (None for the naive baselines)."""
    from customer_intel.cltv.compare import BASELINES
    from customer_intel.cltv.probabilistic import TRANSACTION_MODELS

    if name in BASELINES or name not in comparison.models:
        return None
    if name in TRANSACTION_MODELS:
        return CLTVScorer(champion=name, probabilistic=comparison.models[name], horizon_days=comparison.horizon_days)
    return CLTVScorer(champion=name, probabilistic=comparison.models["bgnbd"], horizon_days=comparison.horizon_days,
                      regressor=comparison.models[name], training_days=comparison.training_days)
