"""Ensembles and the noise of a comparison: non-negative weights fitted on the validation window,
cross-fitted so the ensemble is judged on rows its weights never saw, and paired bootstrap
intervals of each candidate's per-row loss against the champion.

Pure numpy/scipy; a family opts in with an ``EnsembleSpec`` (which members, which loss, how the
fitted members become one scorer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from customer_intel.modeling.candidate import FittedCandidate, Prediction

ENSEMBLE_KIND = "ensemble"


def poisson_row_deviance(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-row Poisson deviance (predictions floored at 1e-6): its mean is the mean Poisson deviance."""
    mu = np.maximum(np.asarray(predicted, dtype=float), 1e-6)
    y = np.asarray(actual, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2 * (term - (y - mu))


def fit_poisson_weights(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Non-negative weights ``w`` minimising the mean Poisson deviance of ``forecasts @ w`` (no intercept).

    ``forecasts``: one column per member. Convex in ``w`` (the deviance is convex in the mean and
    the mean is linear in ``w``); solved by L-BFGS-B from equal weights that sum to one.
    """
    X = np.asarray(forecasts, dtype=float)
    y = np.asarray(actual, dtype=float)
    n, k = X.shape

    def objective(w):
        mean = X @ w
        mu = np.maximum(mean, 1e-6)
        return np.mean(poisson_row_deviance(y, mean)), 2 * X.T @ (1 - y / mu) / n

    result = minimize(objective, np.full(k, 1.0 / k), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * k,
                      options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9})
    weights = np.where(result.x < 1e-6, 0.0, result.x)
    return weights


def cross_fitted(forecasts: np.ndarray, actual: np.ndarray, folds: int = 5, seed: int = 0,
                 fit: Callable[[np.ndarray, np.ndarray], np.ndarray] = fit_poisson_weights) -> np.ndarray:
    """Out-of-fold ensemble forecasts: each row predicted with weights fitted on the other folds."""
    n = len(actual)
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n)
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        out[part] = forecasts[part] @ fit(forecasts[rest], actual[rest])
    return out


@dataclass
class EnsembleSpec:
    """How a family builds its ensemble candidate.

    ``accepts(kind)``: whether a candidate of that kind may be a member (baselines never are);
    ``to_scorer(member scorers, weights, members' fits)``: the deployable scorer of the weighted
    members (None: not registrable); ``fit``: the weight fit (default non-negative Poisson).
    """

    name: str = "ensemble"
    accepts: Callable[[str], bool] = lambda kind: kind != "baseline"
    to_scorer: Callable[[dict, dict[str, float]], Any] | None = None
    fit: Callable[[np.ndarray, np.ndarray], np.ndarray] = fit_poisson_weights
    folds: int = 5


@dataclass
class FittedEnsemble:
    """Weighted members (each fitted at the same origin); members with weight 0 are dropped."""

    spec: EnsembleSpec
    weights: dict[str, float]
    members: dict[str, FittedCandidate] = field(default_factory=dict)

    def predict(self, frame) -> Prediction:
        values = sum(w * np.asarray(self.members[name].predict(frame).values, dtype=float) for name, w in self.weights.items())
        return Prediction(np.asarray(values, dtype=float))

    def params(self) -> dict:
        return {f"weight_{name}": round(float(w), 6) for name, w in self.weights.items()}

    def to_scorer(self):
        if self.spec.to_scorer is None:
            return None
        return self.spec.to_scorer({name: self.members[name].to_scorer() for name in self.weights}, dict(self.weights))

    def at(self, members: dict[str, FittedCandidate]) -> FittedEnsemble:
        """The same weights over the members fitted at another origin (test, refit)."""
        return FittedEnsemble(self.spec, dict(self.weights), {name: members[name] for name in self.weights})


@dataclass(frozen=True)
class Noise:
    """Each candidate's mean per-row loss minus the champion's, its standard error and a paired bootstrap CI."""

    difference: dict[str, float]
    standard_error: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    level: float = 0.95
    resamples: int = 1000


def paired_noise(losses: dict[str, np.ndarray], reference: str, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Noise:
    """Paired differences ``loss(candidate) - loss(reference)`` per row: mean, SE and a percentile bootstrap CI
    (the same resampled rows for every candidate)."""
    base = np.asarray(losses[reference], dtype=float)
    n = len(base)
    sizes = np.diff(np.r_[0:resamples:100, resamples])

    def chunks():  # the same rows for every candidate, drawn 100 resamples at a time (bounded memory)
        rng = np.random.default_rng(seed)
        for size in sizes:
            yield rng.integers(0, max(n, 1), size=(size, n), dtype=np.int32)
    tail = (1 - level) / 2
    diff, se, low, high = {}, {}, {}, {}
    for name, loss in losses.items():
        d = np.asarray(loss, dtype=float) - base
        if not np.isfinite(d).all() or n == 0:
            diff[name] = se[name] = low[name] = high[name] = float("nan")
            continue
        means = np.concatenate([d[index].mean(axis=1) for index in chunks()])
        diff[name] = float(d.mean())
        se[name] = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        low[name], high[name] = (float(v) for v in np.quantile(means, [tail, 1 - tail]))
    return Noise(diff, se, low, high, level, resamples)
