"""Conformal purchase intervals: a band around any point forecast, calibrated on validation residuals.

An ML or ensemble forecast has no predictive distribution of its own that agrees with its point
(NGBoost's Poisson is the only one, and the BG/NBD posterior describes another forecast). The
band ``point + q * sqrt(point + 1)``, with ``q`` the split-conformal quantiles of the normalised
residuals ``(y - point) / sqrt(point + 1)`` on the validation window, holds the nominal share of
customers there, widens with the forecast as a count's spread does, and always contains its
point (the lower quantile is at most 0, the upper at least 0; bounds are whole purchase days).
Its coverage is reported on the test window, which it never saw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from customer_intel.modeling.candidate import Prediction
from customer_intel.modeling.intervals import Interval

COVERAGE = 0.8


def _scale(point: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(point, 0.0) + 1.0)


def conformal_quantiles(actual, point, coverage: float = COVERAGE) -> tuple[float, float]:
    """(q_low, q_high) of the normalised residuals: split-conformal levels (n + 1 finite-sample correction)."""
    y, mu = np.asarray(actual, dtype=float), np.asarray(point, dtype=float)
    keep = np.isfinite(y) & np.isfinite(mu)
    r = (y[keep] - mu[keep]) / _scale(mu[keep])
    n = len(r)
    if n == 0:
        raise ValueError("no validation rows to calibrate a conformal band on")
    tail = (1 - coverage) / 2
    low_level = max(0.0, np.floor(tail * (n + 1)) / n)
    high_level = min(1.0, np.ceil((1 - tail) * (n + 1)) / n)
    return float(min(np.quantile(r, low_level), 0.0)), float(max(np.quantile(r, high_level), 0.0))


def conformal_interval(point, band: tuple[float, float]) -> Interval:
    """The band around ``point`` in whole purchase days (closed: both ends always included)."""
    mu = np.maximum(np.asarray(point, dtype=float), 0.0)
    s = _scale(mu)
    low = np.floor(np.maximum(mu + band[0] * s, 0.0))
    high = np.ceil(mu + band[1] * s)
    ones = np.ones(len(mu))
    return Interval(low, high, ones, ones)


@dataclass
class Calibrated:
    """A fitted candidate whose intervals are the conformal band learned on its validation forecasts."""

    inner: object
    band: tuple[float, float]

    def predict(self, frame) -> Prediction:
        values = np.asarray(self.inner.predict(frame).values, dtype=float)
        return Prediction(values, conformal_interval(values, self.band))

    def params(self) -> dict:
        return {**self.inner.params(), "conformal_q_low": self.band[0], "conformal_q_high": self.band[1]}

    def to_scorer(self):
        scorer = self.inner.to_scorer()
        return None if scorer is None else dataclasses.replace(scorer, conformal=self.band)
