"""Churn metrics: discrimination (ROC AUC with a bootstrap interval, PR AUC), calibration (Brier, log loss,
ECE) and the marketer's numbers (lift and capture in the top decile)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

EPS = 1e-6


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)


def brier_rows(y, p) -> np.ndarray:
    """Per-row squared error of the probability: its mean is the Brier score."""
    return (np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2


def log_loss_rows(y, p) -> np.ndarray:
    y, p = np.asarray(y, dtype=float), _clip(p)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean probability| over ``bins`` equal-width probability bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        rows = which == b
        total += rows.sum() * abs(y[rows].mean() - p[rows].mean())
    return float(total / max(len(y), 1))


def calibration_bins(y, p, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean probability, observed rate, rows) per non-empty equal-width bin: the calibration curve."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    present = np.unique(which)
    return (np.array([p[which == b].mean() for b in present]), np.array([y[which == b].mean() for b in present]),
            np.array([(which == b).sum() for b in present]))


def top_share(y, p, share: float = 0.1) -> tuple[float, float]:
    """(lift, capture) of the ``share`` of customers with the highest risk: churn rate there over the base rate, and the share of churners there."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n = max(int(np.ceil(share * len(y))), 1)
    top = np.argsort(-p, kind="stable")[:n]
    base = y.mean()
    return (float(y[top].mean() / base) if base > 0 else np.nan, float(y[top].sum() / y.sum()) if y.sum() > 0 else np.nan)


def auc_interval(y, p, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC (customers resampled with replacement)."""
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            values.append(roc_auc_score(y[rows], p[rows]))
    if not values:
        return np.nan, np.nan
    return float(np.quantile(values, (1 - level) / 2)), float(np.quantile(values, 1 - (1 - level) / 2))


def churn_scores(y, p, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Every churn metric of probabilities ``p`` for labels ``y`` (1 = churned in the window)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if not np.isfinite(p).all():
        return {"roc_auc": np.nan, "brier": np.nan, "customers_without_prediction": int((~np.isfinite(p)).sum())}
    low, high = auc_interval(y, p, n_boot=n_boot, seed=seed)
    lift, capture = top_share(y, p)
    return {
        "brier": float(brier_rows(y, p).mean()),
        "log_loss": float(log_loss_rows(y, p).mean()),
        "ece": expected_calibration_error(y, p),
        "roc_auc": float(roc_auc_score(y, p)),
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "pr_auc": float(average_precision_score(y, p)),
        "top_decile_lift": lift,
        "top_decile_capture": capture,
        "churn_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
        "customers_without_prediction": 0,
    }
