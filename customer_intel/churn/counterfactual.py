"""Counterfactuals: the smallest change in actionable features that brings a customer's churn risk below the threshold.

A small exhaustive search, verified against the model: every combination of allowed steps
(``Actionable``: a column, a direction, a step and a bound) is applied to the at-risk rows, the
rows are re-scored by the model itself, and each customer gets the cheapest combination (fewest
steps; then the lowest risk) that crosses the threshold. Coupled features move together so a
changed row is one the feature builder could have produced: a purchase sooner (``recency``
down) moves the last purchase later (``t_x`` up by as much); more purchase days (``frequency``
up) add as many to the last 90 days. Tenure (``T``) and age are never actionable.

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
COUPLED = {  # column -> [(other column, multiplier of the change)]
    "recency": [("t_x", -1.0)],
    "frequency": [(f"purchase_days_{TREND_WINDOW_DAYS}d", 1.0)],
}
UNITS = {"frequency": ("repeat purchase day", "repeat purchase days"), "Total_visits_online": ("online visit", "online visits"),
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
        """``column:direction:step:max_change``, e.g. ``recency:decrease:30:180``."""
        try:
            column, direction, step, max_change = text.split(":")
            return cls(column, direction, float(step), float(max_change))
        except ValueError as exc:
            if isinstance(exc, CounterfactualConfigError):
                raise
            raise CounterfactualConfigError(f"actionable {text!r}: expected column:direction:step:max_change, "
                                            "e.g. recency:decrease:30:180") from exc


DEFAULT_ACTIONABLE = ("recency:decrease:30:360", "frequency:increase:1:2", "Total_visits_online:increase:1:3")


def actionable_list(specs) -> list[Actionable]:
    return [s if isinstance(s, Actionable) else Actionable.parse(s) for s in specs]


def apply_change(frame: pd.DataFrame, changes: dict[str, np.ndarray | float]) -> pd.DataFrame:
    """``frame`` with each column moved by its change (signed), coupled columns with it, and physical floors kept."""
    out = frame.copy()
    for column, delta in changes.items():
        delta = np.asarray(delta, dtype=float)
        if column == "recency":  # a purchase cannot be sooner than today
            delta = np.maximum(delta, -out["recency"].to_numpy(dtype=float))
        out[column] = out[column].to_numpy(dtype=float) + delta
        for other, multiplier in COUPLED.get(column, []):
            if other in out.columns:
                out[other] = out[other].to_numpy(dtype=float) + multiplier * delta
    for column in changes:
        out[column] = np.maximum(out[column].to_numpy(dtype=float), 0.0)
    return out


def describe_change(column: str, delta: float, before: float) -> str:
    if column == "recency":
        after = max(before + delta, 0.0)
        return f"last purchase {after:.0f} days ago instead of {before:.0f}" if after > 0 else "a purchase now"
    one, many = UNITS.get(column, (column, column))
    return f"{delta:+g} {one if abs(delta) == 1 else many}"


def search(proba: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, threshold: float,
           actions: list[Actionable]) -> pd.DataFrame:
    """For every row: the cheapest verified change below ``threshold`` (columns ``counterfactual``, ``counterfactual_probability``,
    ``counterfactual_steps`` and one ``delta_<column>`` per action). Rows where no allowed change suffices get NaN and say so."""
    actions = [a for a in actions if a.column in frame.columns]
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
        parts = [describe_change(a.column, a.sign * a.step * k, float(frame[a.column].iloc[i])) for a, k in zip(actions, best_steps[i]) if k]
        texts.append(f"{' and '.join(parts)} → risk {before[i]:.2f} → {best_p[i]:.2f}")
    out["counterfactual"] = texts
    out["counterfactual_probability"] = best_p
    out["counterfactual_steps"] = np.where(np.isfinite(best_cost), best_cost, np.nan)
    for j, a in enumerate(actions):
        out[f"delta_{a.column}"] = np.where(np.isfinite(best_cost), a.sign * a.step * best_steps[:, j], np.nan)
    return out
