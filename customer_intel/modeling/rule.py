"""``ChampionRule``: how a family picks its champion on the validation part, and gates it against the incumbent."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class NoChampionError(ValueError):
    """No candidate satisfies the rule (none beats the baselines, or none meets the constraints).

    Raised by ``compare_candidates``, it carries the comparison ``table`` that shows why (else None).
    """

    table = None


@dataclass(frozen=True)
class Constraint:
    """A bound a champion's metric must respect, whatever its score: e.g. ``abs(total_pct_error) <= 20``."""

    metric: str
    minimum: float | None = None
    maximum: float | None = None
    absolute: bool = False  # bound |metric| instead of the metric

    def holds(self, value: float) -> bool:
        if value is None or not math.isfinite(float(value)):
            return False
        value = abs(value) if self.absolute else value
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)

    def describe(self) -> str:
        name = f"|{self.metric}|" if self.absolute else self.metric
        bounds = [f"{name} >= {self.minimum:g}"] if self.minimum is not None else []
        bounds += [f"{name} <= {self.maximum:g}"] if self.maximum is not None else []
        return " and ".join(bounds)


def _label(metric: str) -> str:
    return {"rmse": "RMSE", "mae": "MAE", "auc": "AUC"}.get(metric, metric.replace("_", " "))


@dataclass(frozen=True)
class ChampionRule:
    """The champion is the best candidate by ``metric`` on the validation part, among those that beat
    every baseline on it and meet every constraint; ties are broken by ``tie_breakers`` in order.

    ``tolerance``: how much worse (relative to the incumbent's value) a new champion may be on this
    run's validation part and still replace the registered one.
    """

    metric: str
    higher_is_better: bool = False
    baselines: tuple[str, ...] = ()
    tie_breakers: tuple[tuple[str, bool], ...] = ()  # (metric, higher_is_better)
    tolerance: float = 0.02
    constraints: tuple[Constraint, ...] = ()
    metric_label: str = ""  # how describe() names the metric, e.g. "mean Poisson deviance"
    rationale: str = ""  # why this metric, e.g. "a proper scoring rule for counts"
    part: str = field(default="validation")
    # kinds from simplest to most complex (by prefix): with per-row losses, the simplest eligible
    # candidate within one standard error of the best (paired differences) is champion
    simplicity: tuple[str, ...] = ()

    def describe(self) -> str:
        """The rule as one sentence: shown in the UI, the comparison metadata and MLflow."""
        label = self.metric_label or self.metric
        sentence = f"{'highest' if self.higher_is_better else 'lowest'} {label} on the {self.part} window"
        if self.rationale:
            sentence += f" ({self.rationale})"
        if self.baselines:
            sentence += ", among candidates that beat every naive baseline on it"
        if self.constraints:
            sentence += (" and" if self.baselines else ", among candidates with") + " " + ", ".join(c.describe() for c in self.constraints)
        if self.tie_breakers:
            sentence += "; ties broken by " + ", then ".join(_label(m) for m, _ in self.tie_breakers)
        if self.simplicity:
            sentence += ("; the simplest candidate within one standard error of the best (paired per-customer differences) "
                         f"wins, in the order {' < '.join(self.simplicity)}")
        return sentence

    def complexity(self, kind: str) -> int:
        """A kind's rank in ``simplicity`` (by prefix; unknown kinds rank last)."""
        return next((i for i, k in enumerate(self.simplicity) if str(kind).startswith(k)), len(self.simplicity))

    def _better_first(self, table: pd.DataFrame) -> pd.DataFrame:
        keys = [(self.metric, self.higher_is_better), *self.tie_breakers]
        return table.sort_values([m for m, _ in keys], ascending=[not hib for _, hib in keys], kind="stable")

    def beats(self, value: float, reference: float) -> bool:
        if not math.isfinite(value):
            return False
        return value > reference if self.higher_is_better else value < reference

    def eligible(self, table: pd.DataFrame, allowed: list[str] | None = None) -> pd.DataFrame:
        """The candidates that may win: not a baseline, in ``allowed`` (default all), better than the
        best baseline, and within every constraint."""
        values = table[self.metric].astype(float)
        rows = table.drop(index=[b for b in self.baselines if b in table.index])
        if allowed is not None:
            rows = rows.loc[[name for name in rows.index if name in allowed]]
        present = [b for b in self.baselines if b in table.index]
        if present:
            best = values.loc[present].max() if self.higher_is_better else values.loc[present].min()
            rows = rows.loc[[self.beats(float(values.loc[name]), best) for name in rows.index]]
        else:
            rows = rows.loc[[math.isfinite(float(values.loc[name])) for name in rows.index]]
        for constraint in self.constraints:
            rows = rows.loc[[constraint.holds(float(v)) for v in rows[constraint.metric]]]
        return rows

    def pick(self, table: pd.DataFrame, allowed: list[str] | None = None, losses: dict | None = None) -> str:
        """The champion's name in a comparison table indexed by candidate (one row each, the rule's metrics as columns).

        ``losses`` (candidate -> per-row loss whose mean is the metric, or minus it for a metric where
        higher is better; lower is better): with the
        rule's ``simplicity``, the simplest eligible candidate whose mean paired difference to the
        best is within one standard error of it wins (ties by the metric).
        """
        rows = self.eligible(table, allowed)
        if rows.empty:
            present = [b for b in self.baselines if b in table.index]
            if present:
                scores = table.loc[present, self.metric].astype(float)
                best = scores.max() if self.higher_is_better else scores.min()
                what = f"beats the naive baselines ({best:.4f} {self.metric})"
            else:
                what = f"has a finite {self.metric}"
            if self.constraints:
                what += " and meets " + ", ".join(c.describe() for c in self.constraints)
            raise NoChampionError(f"no candidate {what}")
        ordered = self._better_first(rows)
        best = str(ordered.index[0])
        if not self.simplicity or losses is None or best not in losses:  # losses are lower-is-better whatever the metric
            return best
        within = []
        for name in ordered.index:
            if name not in losses:
                continue
            d = np.asarray(losses[name], dtype=float) - np.asarray(losses[best], dtype=float)
            if name == best or (np.isfinite(d).all() and len(d) > 1 and d.mean() <= d.std(ddof=1) / np.sqrt(len(d))):
                within.append(name)
        kinds = table["kind"] if "kind" in table else pd.Series("", index=table.index)
        return min(within, key=lambda name: (self.complexity(kinds.loc[name]), within.index(name)))

    def limit(self, incumbent_value: float, tolerance: float | None = None) -> float:
        """The worst value a new champion may have against an incumbent that scored ``incumbent_value``."""
        slack = abs(incumbent_value) * (self.tolerance if tolerance is None else tolerance)
        return incumbent_value - slack if self.higher_is_better else incumbent_value + slack


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    new_value: float
    incumbent_value: float
    limit: float
    description: str


def incumbent_not_worse(rule: ChampionRule, new: dict[str, float], incumbent: dict[str, float],
                        tolerance: float | None = None, new_name: str = "the new champion",
                        incumbent_name: str = "the registered champion") -> GateDecision:
    """May the new champion replace the incumbent? Both were scored on the same validation rows
    (the caller guarantees it: same cutoff, same horizon). Within ``tolerance`` of the incumbent's
    value it may; the constraints of the rule hold for it too."""
    new_value, incumbent_value = float(new[rule.metric]), float(incumbent[rule.metric])
    limit = rule.limit(incumbent_value, tolerance) if math.isfinite(incumbent_value) else math.inf * (-1 if rule.higher_is_better else 1)
    within = math.isfinite(new_value) and (new_value >= limit if rule.higher_is_better else new_value <= limit)
    broken = [c.describe() for c in rule.constraints if not c.holds(new.get(c.metric, float("nan")))]
    passed = within and not broken
    if passed:
        description = f"{new_name} ({rule.metric} {new_value:.4f}) is within the tolerance of {incumbent_name} ({incumbent_value:.4f}; limit {limit:.4f})"
    elif broken:
        description = f"{new_name} breaks the rule's constraints: {', '.join(broken)}"
    else:
        description = (f"{new_name} ({rule.metric} {new_value:.4f}) is worse than {incumbent_name} ({incumbent_value:.4f}) "
                       f"beyond the tolerance (limit {limit:.4f})")
    return GateDecision(passed, new_value, incumbent_value, limit, description)
