"""CLTV metrics on the validation window, the naive baselines and the champion rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from customer_intel.modeling.ensemble import poisson_row_deviance
from customer_intel.modeling.rule import ChampionRule, Constraint

METRIC_DIRECTIONS = {  # True: higher is better
    "rmse": False,
    "mae": False,
    "poisson_deviance": False,
    "total_pct_error": False,  # judged by its absolute value
    "spearman": True,
    "top_decile_capture": True,
    "interval_coverage": True,  # informational: should be near the nominal level, not maximal
    "randomised_coverage": True,  # informational: the nominal level (0.8) when the predictive is calibrated
}


def poisson_deviance(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean Poisson deviance; predictions are floored at 1e-6 so a zero forecast is penalised, not undefined."""
    return float(np.mean(poisson_row_deviance(actual, predicted)))


def top_decile_capture(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of all actual holdout purchases made by the 10% of customers ranked highest."""
    actual = np.asarray(actual, dtype=float)
    if actual.sum() <= 0:
        return float("nan")
    top = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")[: max(1, int(np.ceil(0.1 * len(actual))))]
    return float(actual[top].sum() / actual.sum())


def randomised_coverage(actual, interval) -> float:
    """Expected coverage of the randomised interval: 1 strictly inside, the end's weight on an end, 0 outside.

    For a calibrated discrete predictive this is the nominal level, where the closed interval's
    hit rate runs above it (see ``modeling.intervals.Interval``).
    """
    y = np.asarray(actual, dtype=float)
    low, high = np.asarray(interval.low), np.asarray(interval.high)
    inside = ((y > low) & (y < high)).astype(float)
    covered = np.where(y == low, interval.low_weight, np.where(y == high, interval.high_weight, inside))
    return float(np.mean(covered))


def evaluate(actual, predicted, interval=None) -> dict[str, float]:
    """Every metric for one candidate on one holdout (``interval``: a ``modeling.Interval`` or None)."""
    y = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    metrics = {
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
        "poisson_deviance": poisson_deviance(y, p),
        "total_pct_error": float(100 * (p.sum() - y.sum()) / y.sum()) if y.sum() else float("nan"),
        "spearman": float(spearmanr(p, y).statistic) if np.std(p) > 0 else 0.0,
        "top_decile_capture": top_decile_capture(y, p),
        "interval_coverage": float("nan"),
        "randomised_coverage": float("nan"),
    }
    if interval is not None:
        metrics["interval_coverage"] = float(np.mean((y >= np.asarray(interval.low)) & (y <= np.asarray(interval.high))))
        metrics["randomised_coverage"] = randomised_coverage(y, interval)
    return metrics


def rate_baseline(features: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """Naive forecast: the customer's own repeat-purchase rate x / T, times the horizon (0 when T = 0)."""
    rate = features["frequency"] / features["T"].where(features["T"] > 0)
    return (rate.fillna(0) * horizon_days).to_numpy(dtype=float)


BASELINES = ("baseline_zero", "baseline_rate")

MAX_ABS_TOTAL_ERROR_PCT = 10.0  # a money-facing forecast may not miss the validation window's total by more

# Poisson deviance is a proper scoring rule for counts: it rewards the right mean, where RMSE
# rewards shrinking heavy buyers. A champion must beat both naive baselines on it, forecast the
# validation window's total within the bias bound, and be the simplest candidate within one
# standard error of the best (probabilistic before ML before an ensemble of them).
CLTV_RULE = ChampionRule(
    metric="poisson_deviance",
    higher_is_better=False,
    baselines=BASELINES,
    tie_breakers=(("rmse", False),),
    tolerance=0.02,
    constraints=(Constraint("total_pct_error", maximum=MAX_ABS_TOTAL_ERROR_PCT, absolute=True),),
    metric_label="mean Poisson deviance",
    rationale="a proper scoring rule for counts",
    simplicity=("probabilistic", "ml", "ensemble"),
)


def configure_cltv_rule(rule: ChampionRule, max_abs_total_error_pct: float | None = None) -> ChampionRule:
    """The CLTV rule with another bias bound (|total_pct_error| on the validation window, in percent)."""
    if max_abs_total_error_pct is None:
        return rule
    if max_abs_total_error_pct <= 0:
        raise ValueError(f"max_abs_total_error_pct must be positive, got {max_abs_total_error_pct}")
    others = tuple(c for c in rule.constraints if c.metric != "total_pct_error")
    return dataclasses.replace(rule, constraints=(*others, Constraint("total_pct_error", maximum=float(max_abs_total_error_pct), absolute=True)))
