"""Uplift metrics on randomised data: Qini and uplift curves, their normalised areas, uplift at k, and the noise.

Conventions (those of scikit-uplift, ``sklift.metrics``; ``customer_intel_tests/uplift/test_metrics.py``
checks equality with it):

- rows are sorted by predicted uplift, highest first; a curve point is taken at each distinct
  score (ties move together), plus the origin;
- Qini curve at the top ``n`` rows: ``Y_t(n) - Y_c(n) * N_t(n) / N_c(n)`` (incremental responses,
  the control responses rescaled to the treated count; 0 while no control row is included);
- uplift curve: ``(Y_t(n) / N_t(n) - Y_c(n) / N_c(n)) * n``;
- **normalised Qini coefficient** (``qini_auc_score``, negative effects allowed): (area under the
  model's Qini curve - area under the random line) / (the same for the perfect curve, which ranks
  treated responders first and control responders last). 0 is random, 1 perfect;
- **AUUC** (``uplift_auc_score``): the same normalisation of the uplift curve;
- uplift at k (``uplift_at_k``, strategy "overall"): the treated minus the control response rate
  among the top ``k`` share of all rows.

The noise: a bootstrap interval over rows, and the **random band**: the 2.5-97.5% range of the
Qini coefficient of random orderings of the same rows (a model inside it ranks no better than chance).
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP = 200
TOP_SHARES = (0.1, 0.2, 0.3)


def _sorted(y, score, t):
    y, score, t = np.asarray(y, dtype=float), np.asarray(score, dtype=float), np.asarray(t, dtype=float)
    order = np.argsort(score, kind="mergesort")[::-1]
    y, t, score = y[order], t[order], score[order]
    thresholds = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    return y, t, thresholds


def _curve_start(x, values):
    if x.size == 0 or values[0] != 0 or x[0] != 0:
        x, values = np.r_[0, x], np.r_[0, values]
    return x, values


def _cumulative(y, score, t):
    """At each distinct score, highest first: rows targeted, treated rows, control rows, treated and control responders."""
    y, t, idx = _sorted(y, score, t)
    n = (idx + 1).astype(float)
    n_t = np.cumsum(t)[idx]
    return n, n_t, n - n_t, np.cumsum(y * t)[idx], np.cumsum(y * (1 - t))[idx]


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def qini_curve(y, score, t) -> tuple[np.ndarray, np.ndarray]:
    """(number of rows targeted, incremental responses) at each distinct score, from the origin."""
    n, n_t, n_c, y_t, y_c = _cumulative(y, score, t)
    return _curve_start(n, y_t - y_c * _ratio(n_t, n_c))


def uplift_curve(y, score, t) -> tuple[np.ndarray, np.ndarray]:
    """(number of rows targeted, (treated rate - control rate) x rows) at each distinct score, from the origin."""
    n, n_t, n_c, y_t, y_c = _cumulative(y, score, t)
    return _curve_start(n, (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * n)


def _area(x, values) -> float:
    return float(np.trapezoid(values, x))


def _normalised(curve, y, score, t, perfect_score) -> float:
    x, v = curve(y, score, t)
    xp, vp = curve(y, perfect_score, t)
    baseline = _area(np.array([0.0, xp[-1]]), np.array([0.0, vp[-1]]))
    perfect = _area(xp, vp) - baseline
    return (_area(x, v) - baseline) / perfect if perfect != 0 else float("nan")


def qini_coefficient(y, score, t) -> float:
    """The normalised Qini coefficient (= ``sklift.metrics.qini_auc_score(y, score, t)``)."""
    y, t = np.asarray(y, dtype=float), np.asarray(t, dtype=float)
    return _normalised(qini_curve, y, score, t, y * t - y * (1 - t))


def auuc(y, score, t) -> float:
    """The normalised area under the uplift curve (= ``sklift.metrics.uplift_auc_score(y, score, t)``)."""
    y, t = np.asarray(y, dtype=float), np.asarray(t, dtype=float)
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return _normalised(uplift_curve, y, score, t, 2 * (y == t) + summand)


def uplift_at_k(y, score, t, k: float) -> float:
    """Treated minus control response rate among the top ``k`` share of rows (= sklift's ``uplift_at_k``, strategy overall)."""
    y, score, t = np.asarray(y, dtype=float), np.asarray(score, dtype=float), np.asarray(t, dtype=float)
    n_top = int(len(y) * k)
    top = np.argsort(-score, kind="mergesort")[:n_top]
    treated, control = top[t[top] == 1], top[t[top] == 0]
    if not len(treated) or not len(control):
        return float("nan")
    return float(y[treated].mean() - y[control].mean())


def bootstrap_qini(y, score, t, n_boot: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the Qini coefficient (rows resampled, stratified by treatment)."""
    y, score, t = np.asarray(y, dtype=float), np.asarray(score, dtype=float), np.asarray(t, dtype=float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(t == 1), np.flatnonzero(t == 0)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=g.size) for g in groups])
        values.append(qini_coefficient(y[idx], score[idx], t[idx]))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def random_band(y, t, n_perm: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """The 2.5-97.5% range of the Qini coefficient of random orderings of these rows."""
    y, t = np.asarray(y, dtype=float), np.asarray(t, dtype=float)
    rng = np.random.default_rng(seed + 1)
    values = [qini_coefficient(y, rng.random(len(y)), t) for _ in range(n_perm)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def uplift_scores(y, score, t, *, n_boot: int = BOOTSTRAP, seed: int = 0, noise: bool = True) -> dict[str, float]:
    """Every reported metric of one ranking of randomised rows."""
    out = {"qini": qini_coefficient(y, score, t), "auuc": auuc(y, score, t)}
    for k in TOP_SHARES:
        out[f"uplift_at_{int(k * 100)}"] = uplift_at_k(y, score, t, k)
    if noise:
        out["qini_ci_low"], out["qini_ci_high"] = bootstrap_qini(y, score, t, n_boot, seed)
        out["random_band_low"], out["random_band_high"] = random_band(y, t, n_boot, seed)
    return out


def transformed_outcome(y, t, propensity: float) -> np.ndarray:
    """``y (t - e) / (e (1 - e))``: its expectation given the features is the effect (randomised assignment, share ``e``)."""
    y, t = np.asarray(y, dtype=float), np.asarray(t, dtype=float)
    return y * (t - propensity) / (propensity * (1 - propensity))


def targeted_share(true_effect, score, share: float) -> float:
    """The true incremental responses of targeting the top ``share`` by ``score``, as a share of the oracle's (top by truth)."""
    true_effect, score = np.asarray(true_effect, dtype=float), np.asarray(score, dtype=float)
    n = int(round(share * len(true_effect)))
    chosen = np.argsort(-score, kind="mergesort")[:n]
    oracle = np.sort(true_effect)[::-1][:n].sum()
    return float(true_effect[chosen].sum() / oracle) if oracle else float("nan")
