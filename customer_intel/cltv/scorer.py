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

from customer_intel.cltv.conformal import conformal_interval
from customer_intel.cltv.ml import FeatureMatrix, horizon_scale, predict_with_interval, stack_features
from customer_intel.cltv.probabilistic import contain_point
from customer_intel.modeling.intervals import Interval
from customer_intel.modeling.scorer import ScorerInfo

SCORE_COLUMNS = ("p_alive", "expected_purchases", "purchases_low", "purchases_high", "expected_spend_per_purchase",
                 "expected_value", "value_low", "value_high", "cltv")


class _CLTVScorerInfo:
    """What every CLTV scorer says about itself (its fields: champion, cutoff, horizon_days, code_version)."""

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("cltv", self.champion, self.cutoff, int(self.horizon_days), self.code_version)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return SCORE_COLUMNS


@dataclass
class CLTVScorer(_CLTVScorerInfo):
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
    horizon_scaling: str = "linear"  # how the regressor's window reaches the horizon (versions before it: linear)
    conformal: tuple[float, float] | None = None  # the purchase band around the point (None: the posterior's interval)

    def at_horizon(self, horizon_days: int) -> CLTVScorer:
        """The same models forecasting another horizon (ML forecasts scale with it, as at training)."""
        stack = self.stack_horizon_days if self.stack_horizon_days is not None else self.horizon_days
        return dataclasses.replace(self, horizon_days=int(horizon_days), stack_horizon_days=int(stack))

    def _regressor_point(self, features: pd.DataFrame, expected: np.ndarray, p_alive: np.ndarray, with_interval: bool = True):
        """(point, interval or None) of the regressor over ``horizon_days``."""
        matrix, estimator = self.regressor
        stack_horizon = self.stack_horizon_days if self.stack_horizon_days is not None else self.horizon_days
        inputs = features[[c for c in matrix.columns if c in features.columns]]  # stack onto the model's columns, not a copy of them all
        if stack_horizon == self.horizon_days:
            stacked = stack_features(inputs, p_alive, expected)
        else:
            stacked = stack_features(inputs, *self.probabilistic.point_predictions(features, stack_horizon))
        scale = horizon_scale(self.probabilistic, features, self.horizon_days, max(self.training_days, 1), self.horizon_scaling, expected)
        ids = features["customer_id"] if "customer_id" in features.columns else None
        return predict_with_interval(estimator, matrix.transform(stacked), scale=scale, with_interval=with_interval, customer_ids=ids)

    def point(self, features: pd.DataFrame) -> np.ndarray:
        """Expected purchases over the horizon only (no posterior simulation): what an ensemble combines."""
        p_alive, expected = self.probabilistic.point_predictions(features, self.horizon_days)
        return expected if self.regressor is None else self._regressor_point(features, expected, p_alive, with_interval=False)[0]

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        prediction = self.probabilistic.predict(features, self.horizon_days)
        out = prediction[[c for c in SCORE_COLUMNS if c in prediction.columns]].copy()
        if self.regressor is not None:
            base = prediction["expected_purchases"].to_numpy()
            point, interval = self._regressor_point(features, base, prediction["p_alive"].to_numpy())
            ratio = np.divide(point, base, out=np.ones(len(point)), where=base > 1e-9)
            out["expected_purchases"] = point
            out["expected_value"] = point * out["expected_spend_per_purchase"]
            out["cltv"] = out["cltv"] * ratio
            if interval is not None:
                out["purchases_low"], out["purchases_high"] = interval.low, interval.high
        if self.conformal is not None:
            apply_band(out, self.conformal)
        elif self.regressor is not None:  # a version registered before the band: BG/NBD's window, widened to reach the point
            ones = np.ones(len(out))
            widened = contain_point(Interval(out["purchases_low"].to_numpy(), out["purchases_high"].to_numpy(), ones, ones),
                                    out["expected_purchases"].to_numpy())
            out["purchases_low"], out["purchases_high"] = widened.low, widened.high
            out["value_low"] = np.minimum(out["value_low"], out["expected_value"])
            out["value_high"] = np.maximum(out["value_high"], out["expected_value"])
        out.index = features.index
        return _whole_days_as_float(out)


def _whole_days_as_float(out: pd.DataFrame) -> pd.DataFrame:
    """Purchase bounds are whole days published as float64 whatever made them (posterior draws are
    integers, conformal bands floats, a customer without a forecast NaN): one schema for every champion."""
    out["purchases_low"] = out["purchases_low"].astype("float64")
    out["purchases_high"] = out["purchases_high"].astype("float64")
    return out


def apply_band(out: pd.DataFrame, band: tuple[float, float]) -> None:
    """Purchases and value intervals from the conformal band around the point (value: the band times spend)."""
    interval = conformal_interval(out["expected_purchases"].to_numpy(), band)
    out["purchases_low"], out["purchases_high"] = interval.low, interval.high
    out["value_low"] = interval.low * out["expected_spend_per_purchase"]
    out["value_high"] = interval.high * out["expected_spend_per_purchase"]


@dataclass
class CLTVEnsembleScorer(_CLTVScorerInfo):
    """A weighted sum of member scorers' expected purchases (weights fitted on the validation window).

    P(alive), spend per purchase and the discounted value's timing come from the first
    probabilistic member (BG/NBD or MBG/NBD); value and CLTV scale with the ensemble's point, and the purchase and
    value intervals are the conformal band calibrated on the ensemble's out-of-fold validation
    forecasts, so every published interval contains its point.
    """

    champion: str
    members: tuple[tuple[str, float, CLTVScorer], ...]
    horizon_days: int
    cutoff: str | None = None
    code_version: str = "unknown"
    conformal: tuple[float, float] | None = None

    @property
    def weights(self) -> dict[str, float]:
        return {name: weight for name, weight, _ in self.members}

    def at_horizon(self, horizon_days: int) -> CLTVEnsembleScorer:
        members = tuple((name, weight, scorer.at_horizon(horizon_days)) for name, weight, scorer in self.members)
        return dataclasses.replace(self, members=members, horizon_days=int(horizon_days))

    def _base(self) -> CLTVScorer:
        return next((scorer for _, _, scorer in self.members if scorer.regressor is None), self.members[0][2])

    def point(self, features: pd.DataFrame) -> np.ndarray:
        return sum(weight * np.asarray(scorer.point(features), dtype=float) for _, weight, scorer in self.members)

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        model = self._base().probabilistic
        p_alive, expected = model.point_predictions(features, self.horizon_days)
        point = self.point(features)
        spend = model.expected_spend_per_purchase(features)
        ratio = np.divide(point, expected, out=np.ones(len(point)), where=expected > 1e-9)
        out = pd.DataFrame({"p_alive": p_alive, "expected_purchases": point}, index=features.index)
        out["purchases_low"], out["purchases_high"] = point, point
        out["expected_spend_per_purchase"] = spend
        out["expected_value"] = point * spend
        out["value_low"], out["value_high"] = out["expected_value"], out["expected_value"]
        out["cltv"] = model.discounted_value(features, self.horizon_days) * ratio
        if self.conformal is not None:
            apply_band(out, self.conformal)
        return _whole_days_as_float(out[list(SCORE_COLUMNS)].copy())
