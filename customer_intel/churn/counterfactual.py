"""Counterfactuals: the smallest change in actionable features that brings a customer's churn risk below the threshold.

A small exhaustive search, verified against the model: every combination of allowed steps
(``Actionable``: a column, a direction, a step and a bound) is applied to the at-risk rows, the
rows are re-scored by the model itself, and each customer gets the cheapest combination (fewest
steps; then the lowest risk) that crosses the threshold.

A changed row must be one the feature builder could produce. The purchase history is changed only
through the **event** ``purchases``: k purchase days from now at the customer's usual spend per
day, the last one today, so recency becomes 0, ``t_x`` becomes ``T``, frequency and the last 90
days' purchase days grow by k, spend to date and in the last 90 days by k times ``monetary``
(spend per day, ticket and refund share unchanged). The history's own columns (recency,
frequency, t_x, spend, ...) cannot be listed directly; a profile column (online visits) moves
alone. Tenure (``T``) and age never change.

Why not dice-ml: it installs with this stack, but it perturbs features independently (a row with
recency lowered and t_x unchanged is a customer that cannot exist) and it searches one query at a
time in Python, where this search is vectorised over every at-risk customer at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.features.rfm import TREND_WINDOW_DAYS

NEVER_ACTIONABLE = ("T", "age", "Age", "tenure", "customer_id", "as_of")
PURCHASES = "purchases"  # the event: k more purchase days, the last one today
HISTORY = ("recency", "frequency", "t_x", "monetary", "monetary_value", "total_spend", f"spend_{TREND_WINDOW_DAYS}d",
           f"spend_prev_{TREND_WINDOW_DAYS}d", "spend_trend", f"purchase_days_{TREND_WINDOW_DAYS}d", "avg_ticket", "refund_share")
# what the purchases event moves (read by the scorer to keep the columns it needs)
COUPLED = {PURCHASES: [(c, 1.0) for c in ("recency", "t_x", "frequency", f"purchase_days_{TREND_WINDOW_DAYS}d", "total_spend",
                                          f"spend_{TREND_WINDOW_DAYS}d", "spend_trend", "T", "monetary")]}
UNITS = {PURCHASES: ("purchase", "purchases"), "frequency": ("repeat purchase day", "repeat purchase days"), "Total_visits_online": ("online visit", "online visits"),
         "Total_visits_bank": ("branch visit", "branch visits")}


class CounterfactualConfigError(ValueError):
    """An actionable list names a column that may not change (tenure, age) or has an impossible bound."""


@dataclass(frozen=True)
class Actionable:
    """``column`` may move in ``direction`` ("increase" or "decrease") in steps of ``step``, at most ``max_change`` in all."""

    column: str
    direction: str
    step: float
    max_change: float

    def __post_init__(self):
        if self.column in NEVER_ACTIONABLE:
            raise CounterfactualConfigError(f"{self.column!r} is not actionable: tenure, age and identifiers never change in a counterfactual")
        if self.column in HISTORY:
            raise CounterfactualConfigError(f"{self.column!r} is part of the purchase history: change it through the event "
                                            f"'{PURCHASES}' (e.g. {PURCHASES}:increase:1:3), so the other history columns move with it")
        if self.column == PURCHASES and self.direction != "increase":
            raise CounterfactualConfigError(f"{PURCHASES} can only increase (future purchases)")
        if self.direction not in ("increase", "decrease"):
            raise CounterfactualConfigError(f"{self.column}: direction must be increase or decrease; got {self.direction!r}")
        if not (self.step > 0 and self.max_change >= self.step):
            raise CounterfactualConfigError(f"{self.column}: need step > 0 and max_change >= step; got {self.step}, {self.max_change}")

    @property
    def levels(self) -> int:
        return int(self.max_change // self.step)

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "increase" else -1.0

    @classmethod
    def parse(cls, text: str) -> Actionable:
        """``column:direction:step:max_change``, e.g. ``purchases:increase:1:3``."""
        try:
            column, direction, step, max_change = text.split(":")
            return cls(column, direction, float(step), float(max_change))
        except ValueError as exc:
            if isinstance(exc, CounterfactualConfigError):
                raise
            raise CounterfactualConfigError(f"actionable {text!r}: expected column:direction:step:max_change, "
                                            "e.g. purchases:increase:1:3") from exc


DEFAULT_ACTIONABLE = ("purchases:increase:1:3", "Total_visits_online:increase:1:3")


def actionable_list(specs) -> list[Actionable]:
    return [s if isinstance(s, Actionable) else Actionable.parse(s) for s in specs]


def apply_change(frame: pd.DataFrame, changes: dict[str, np.ndarray | float]) -> pd.DataFrame:
    """``frame`` after the changes: ``purchases`` as the event of the module docstring, any other column moved by its (signed) change."""
    out = frame.copy()
    for column, delta in changes.items():
        delta = np.asarray(delta, dtype=float) * np.ones(len(out))
        if column != PURCHASES:
            out[column] = np.maximum(out[column].to_numpy(dtype=float) + delta, 0.0)
            continue
        k, bought = delta, delta > 0
        spend = out["monetary"].to_numpy(dtype=float) * k if "monetary" in out.columns else 0.0
        recent = f"spend_{TREND_WINDOW_DAYS}d"
        if "recency" in out.columns:
            out["recency"] = np.where(bought, 0.0, out["recency"].to_numpy(dtype=float))
        if "t_x" in out.columns:
            out["t_x"] = np.where(bought, out["T"].to_numpy(dtype=float), out["t_x"].to_numpy(dtype=float))
        for name in ("frequency", f"purchase_days_{TREND_WINDOW_DAYS}d"):
            if name in out.columns:
                out[name] = out[name].to_numpy(dtype=float) + k
        for name in ("total_spend", recent):
            if name in out.columns:
                out[name] = out[name].to_numpy(dtype=float) + spend
        if "spend_trend" in out.columns and recent in out.columns and f"spend_prev_{TREND_WINDOW_DAYS}d" in out.columns:
            now, before = out[recent].to_numpy(dtype=float), out[f"spend_prev_{TREND_WINDOW_DAYS}d"].to_numpy(dtype=float)
            scale = np.abs(now) + np.abs(before)
            out["spend_trend"] = np.where(scale > 0, (now - before) / np.where(scale > 0, scale, 1.0), 0.0)
        if "monetary_value" in out.columns and "frequency" in out.columns:  # spend per repeat day, same usual spend
            old = out["monetary_value"].to_numpy(dtype=float)
            out["monetary_value"] = np.where(bought & (old == 0), out.get("monetary", pd.Series(old, index=out.index)).to_numpy(dtype=float), old)
    return out


def describe_change(column: str, delta: float, before: float) -> str:
    one, many = UNITS.get(column, (column, column))
    if column == PURCHASES:
        return "a purchase now" if delta == 1 else f"{delta:g} purchases, the last one now"
    return f"{delta:+g} {one if abs(delta) == 1 else many}"


def search(proba: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, threshold: float,
           actions: list[Actionable]) -> pd.DataFrame:
    """For every row: the cheapest verified change below ``threshold`` (columns ``counterfactual``, ``counterfactual_probability``,
    ``counterfactual_steps`` and one ``delta_<column>`` per action). Rows where no allowed change suffices get NaN and say so."""
    n = len(frame)
    before = proba(frame)
    best_cost = np.full(n, np.inf)
    best_p = np.full(n, np.nan)
    best_steps = np.zeros((n, len(actions)), dtype=int)
    grids = [range(a.levels + 1) for a in actions]
    for steps in sorted(itertools.product(*grids), key=lambda s: (sum(s), s)):
        cost = sum(steps)
        if cost == 0:
            continue
        if np.isfinite(best_cost).all() and cost > best_cost.max():
            break
        open_rows = np.flatnonzero(best_cost >= cost)
        if not len(open_rows):
            break
        rows = frame.iloc[open_rows]
        changed = apply_change(rows, {a.column: a.sign * a.step * k for a, k in zip(actions, steps) if k})
        p = proba(changed)
        better = (p < threshold) & ((cost < best_cost[open_rows]) | ((cost == best_cost[open_rows]) & (p < best_p[open_rows])))
        hit = open_rows[better]
        best_cost[hit], best_p[hit] = cost, p[better]
        best_steps[hit] = steps
    out = pd.DataFrame(index=frame.index)
    texts = []
    for i in range(n):
        if not np.isfinite(best_cost[i]):
            texts.append(f"no change within the actionable bounds brings the risk below {threshold:.2f}")
            continue
        parts = [describe_change(a.column, a.sign * a.step * k, np.nan) for a, k in zip(actions, best_steps[i]) if k]
        shown = f"{best_p[i]:.2f}" if round(best_p[i], 2) < threshold else f"{best_p[i]:.3f}"  # never "→ 0.50" at 0.50
        texts.append(f"{' and '.join(parts)} → risk {before[i]:.2f} → {shown}")
    out["counterfactual"] = texts
    out["counterfactual_probability"] = best_p
    out["counterfactual_steps"] = np.where(np.isfinite(best_cost), best_cost, np.nan)
    for j, a in enumerate(actions):
        out[f"delta_{a.column}"] = np.where(np.isfinite(best_cost), a.sign * a.step * best_steps[:, j], np.nan)
    return out
