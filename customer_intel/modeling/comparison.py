"""``compare_candidates``: every candidate of a family fitted on one split and judged on its validation part."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import Candidate, CandidateFitError, CandidateSkipped, FittedCandidate, Prediction
from customer_intel.modeling.rule import ChampionRule
from customer_intel.modeling.split import TimeSplit

Metrics = Callable[[TimeSplit, Prediction], dict[str, float]]  # a family's metrics on the validation part


@dataclass
class Comparison:
    """One row per candidate (``kind``, the family's metrics, ``fit_seconds``) and the champion the rule picked."""

    table: pd.DataFrame
    champion: str
    rule: ChampionRule
    split: TimeSplit
    fitted: dict[str, FittedCandidate] = field(default_factory=dict)
    predictions: dict[str, Prediction] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # candidate -> why it could not be fitted
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it does not apply to this split

    def markdown(self, floatfmt: str = ".3f") -> str:
        shown = self.table.copy()
        shown.insert(0, "champion", np.where(shown.index == self.champion, "✔", ""))
        return shown.to_markdown(floatfmt=floatfmt)

    def scorer(self, name: str):
        """The deployable scorer of one candidate (None for baselines and candidates that failed)."""
        fitted = self.fitted.get(name)
        return None if fitted is None else fitted.to_scorer()


def _rows_without_prediction(prediction: Prediction) -> int:
    values = np.asarray(prediction.values)
    if values.dtype.kind != "f":
        return 0
    return int(np.isnan(values).reshape(len(values), -1).any(axis=1).sum())


def compare_candidates(candidates: Iterable[Candidate], split: TimeSplit, rule: ChampionRule, metrics: Metrics, *,
                       allowed: list[str] | None = None, log: Callable[[str], None] = print) -> Comparison:
    """Fit each candidate on ``split`` (data up to its cutoff), predict the validation rows, score
    them with ``metrics`` and pick the champion with ``rule`` among ``allowed`` (default: all).

    A candidate that raises ``CandidateFitError`` is recorded in ``failures`` (``CandidateSkipped``:
    in ``skipped``) and left out of the table; the others go on.
    """
    rows, fitted, predictions, failures, skipped = {}, {}, {}, {}, {}
    for candidate in candidates:
        started = time.perf_counter()
        try:
            model = candidate.fit(split)
            prediction = model.predict(split.validation)
        except CandidateSkipped as exc:
            skipped[candidate.name] = str(exc)
            log(f"{candidate.name} skipped: {exc}")
            continue
        except CandidateFitError as exc:
            failures[candidate.name] = str(exc)
            log(f"{candidate.name} failed: {exc}")
            continue
        seconds = time.perf_counter() - started
        missing = _rows_without_prediction(prediction)
        if missing:
            log(f"{candidate.name}: no prediction for {missing:,} rows; its metrics are undefined")
        fitted[candidate.name], predictions[candidate.name] = model, prediction
        rows[candidate.name] = {"kind": candidate.kind, **metrics(split, prediction), "fit_seconds": round(seconds, 2)}
        if candidate.kind != "baseline":
            log(f"{candidate.name}: fitted in {seconds:.1f} s")
    if not rows:
        raise CandidateFitError("no candidate could be fitted: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    champion = rule.pick(table, allowed)
    return Comparison(table=table, champion=champion, rule=rule, split=split, fitted=fitted, predictions=predictions,
                      failures=failures, skipped=skipped)
