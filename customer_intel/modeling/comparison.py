"""``compare_candidates``: every candidate of a family fitted on one split and judged on its validation part."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import Candidate, CandidateFitError, CandidateSkipped, FittedCandidate, Prediction
from customer_intel.modeling.ensemble import ENSEMBLE_KIND, EnsembleSpec, FittedEnsemble, Noise, cross_fitted, paired_noise
from customer_intel.modeling.rule import ChampionRule, NoChampionError
from customer_intel.modeling.split import REFIT, TEST, VALIDATION, TimeSplit

Metrics = Callable[[TimeSplit, Prediction], dict[str, float]]  # a family's metrics on the validation part


@dataclass
class Comparison:
    """One row per candidate (``kind``, the family's metrics on the validation window, ``fit_seconds``;
    with a test part, the same metrics on the test window as ``test_*``; with per-row losses, the
    paired difference to the champion and its bootstrap interval) and the champion the rule picked.

    ``fitted``/``predictions``: at the validation origin (where everything is chosen);
    ``evaluated``: each candidate refitted at the test origin (the models the test columns
    describe; the validation fits when there is no test part); ``production``: the champion's
    recipe refitted at the refit origin on all the data (None without a refit part).
    """

    table: pd.DataFrame
    champion: str
    rule: ChampionRule
    split: TimeSplit
    fitted: dict[str, FittedCandidate] = field(default_factory=dict)
    predictions: dict[str, Prediction] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # candidate -> why it could not be fitted
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it does not apply to this split
    evaluated: dict[str, FittedCandidate] = field(default_factory=dict)
    test_predictions: dict[str, Prediction] = field(default_factory=dict)
    production: FittedCandidate | None = None
    noise: Noise | None = None
    weights: dict[str, float] = field(default_factory=dict)  # the ensemble's, fitted on the validation window
    rule_params: dict = field(default_factory=dict)  # what tuned the rule (ModelFamily.compare: config, else what the split implies)

    def markdown(self, floatfmt: str = ".3f", columns: list[str] | None = None) -> str:
        shown = self.table.copy() if columns is None else self.table[[c for c in columns if c in self.table.columns]].copy()
        shown.insert(0, "champion", np.where(shown.index == self.champion, "✔", ""))
        return shown.to_markdown(floatfmt=floatfmt)

    def scorer(self, name: str, served: bool = True):
        """The scorer of one candidate as evaluated (None for baselines and candidates that failed); ``served=False``:
        the one logged for the record only, when the candidate has a lighter one (``to_logged_scorer``)."""
        fitted = self.evaluated.get(name) or self.fitted.get(name)
        if fitted is None:
            return None
        return fitted.to_logged_scorer() if not served and hasattr(fitted, "to_logged_scorer") else fitted.to_scorer()

    def registers_as_evaluated(self, name: str) -> bool:
        """Whether ``name``'s logged scorer is the one registered: the champion when there is no production refit."""
        return name == self.champion and self.production is None

    def production_scorer(self):
        """What is registered: the champion refitted on all the data, else the champion as evaluated."""
        return self.production.to_scorer() if self.production is not None else self.scorer(self.champion)


def _rows_without_prediction(prediction: Prediction) -> int:
    values = np.asarray(prediction.values)
    if values.dtype.kind != "f":
        return 0
    return int(np.isnan(values).reshape(len(values), -1).any(axis=1).sum())


def _fit_all(candidates: list[Candidate], split: TimeSplit, log, calibrate=None, reference: dict | None = None):
    """Fit each candidate on ``split``, predict its validation part; (fitted, predictions, seconds, failures, skipped)."""
    fitted, predictions, seconds, failures, skipped = {}, {}, {}, {}, {}
    for candidate in candidates:
        started = time.perf_counter()
        try:
            model = candidate.fit(split)
            if calibrate is not None and reference is not None and candidate.name in reference:
                model = calibrate(model, *reference[candidate.name])
            prediction = model.predict(split.validation)
        except CandidateSkipped as exc:
            skipped[candidate.name] = str(exc)
            log(f"{candidate.name} skipped: {exc}")
            continue
        except CandidateFitError as exc:
            failures[candidate.name] = str(exc)
            log(f"{candidate.name} failed: {exc}")
            continue
        seconds[candidate.name] = time.perf_counter() - started
        missing = _rows_without_prediction(prediction)
        if missing:
            log(f"{candidate.name}: no prediction for {missing:,} rows; its metrics are undefined")
        fitted[candidate.name], predictions[candidate.name] = model, prediction
        if candidate.kind != "baseline":
            log(f"{candidate.name}: fitted in {seconds[candidate.name]:.1f} s")
    return fitted, predictions, seconds, failures, skipped


def _ensemble(spec: EnsembleSpec, kinds: dict[str, str], fitted: dict, predictions: dict[str, Prediction], actual: np.ndarray,
              seed: int) -> tuple[FittedEnsemble, Prediction] | None:
    """The ensemble over every acceptable member with finite forecasts: weights on all validation rows,
    judged on its cross-fitted (out-of-fold) forecasts."""
    members = [name for name, kind in kinds.items() if spec.accepts(kind) and name in predictions
               and np.isfinite(np.asarray(predictions[name].values, dtype=float)).all()]
    if len(members) < 2:
        return None
    X = np.column_stack([np.asarray(predictions[name].values, dtype=float) for name in members])
    weights = spec.fit(X, actual)
    if not np.any(weights > 0):
        return None
    oof = cross_fitted(X, actual, folds=spec.folds, seed=seed, fit=spec.fit)
    chosen = {name: float(w) for name, w in zip(members, weights) if w > 0}
    return FittedEnsemble(spec, chosen, {name: fitted[name] for name in chosen}), Prediction(oof)


def _with_noise(table: pd.DataFrame, losses: dict[str, np.ndarray], champion: str, seed: int) -> Noise:
    """Each candidate's paired loss difference to ``champion`` (mean, SE, bootstrap CI) as table columns."""
    noise = paired_noise(losses, champion, seed=seed)
    table["delta_vs_champion"] = pd.Series(noise.difference)
    table["delta_se"] = pd.Series(noise.standard_error)
    table["delta_ci_low"], table["delta_ci_high"] = pd.Series(noise.ci_low), pd.Series(noise.ci_high)
    return noise


def compare_candidates(candidates: Iterable[Candidate], split: TimeSplit, rule: ChampionRule, metrics: Metrics, *,
                       allowed: list[str] | None = None, log: Callable[[str], None] = print, ensemble: EnsembleSpec | None = None,
                       row_loss: Callable[[TimeSplit, Prediction], np.ndarray] | None = None, target: str | None = None,
                       calibrate=None, seed: int = 0) -> Comparison:
    """Fit each candidate at the validation origin (data up to ``split.cutoff``), predict the validation
    rows, score them with ``metrics`` and pick the champion with ``rule`` among ``allowed`` (default: all).

    With ``ensemble``, a weighted ensemble of the other candidates competes too (weights fitted on the
    validation rows, judged out of fold). With ``row_loss``, the rule may prefer a simpler candidate
    within one standard error, and the table carries each candidate's paired bootstrap interval
    against the champion. A test part only reports: every candidate is refitted at the test origin
    (``calibrate(model, validation split, validation prediction)`` hands it what it learned on
    validation, e.g. a conformal band) and scored there. A refit part: the champion's recipe is
    refitted at the refit origin (``production``). A candidate that raises ``CandidateFitError`` is
    recorded in ``failures`` (``CandidateSkipped``: in ``skipped``) and left out; the others go on.
    """
    candidates = list(candidates)
    kinds = {c.name: c.kind for c in candidates}
    at_validation = split.origin(VALIDATION)
    fitted, predictions, seconds, failures, skipped = _fit_all(candidates, at_validation, log)
    if not fitted:
        raise CandidateFitError("no candidate could be fitted: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    weights: dict[str, float] = {}
    if ensemble is not None and target is not None:
        made = _ensemble(ensemble, kinds, fitted, predictions, at_validation.validation[target].to_numpy(dtype=float), seed)
        if made is not None:
            fitted[ensemble.name], predictions[ensemble.name] = made
            kinds[ensemble.name], seconds[ensemble.name] = ENSEMBLE_KIND, 0.0
            weights = made[0].weights
            log(f"{ensemble.name}: weights " + ", ".join(f"{k} {v:.3f}" for k, v in weights.items()))
    rows = {name: {"kind": kinds[name], **metrics(at_validation, predictions[name]), "fit_seconds": round(seconds[name], 2)}
            for name in fitted}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    losses = {name: row_loss(at_validation, p) for name, p in predictions.items()} if row_loss is not None else None
    try:
        champion = rule.pick(table, allowed, losses)
    except NoChampionError as exc:
        exc.table = table  # what every candidate scored: the reader's way to see why none qualified
        raise
    noise = _with_noise(table, losses, champion, seed) if losses is not None else None

    evaluated, test_predictions = dict(fitted), {}
    if TEST in split.parts:
        at_test = split.origin(TEST)
        reference = {name: (at_validation, predictions[name]) for name in predictions}
        again = [c for c in candidates if c.name in fitted]
        evaluated, test_predictions, test_seconds, test_failures, _ = _fit_all(again, at_test, log, calibrate, reference)
        failures.update({name: f"at the test origin: {why}" for name, why in test_failures.items()})
        if weights and all(name in evaluated for name in weights):
            members = fitted[ensemble.name].at(evaluated)
            if calibrate is not None:
                members = calibrate(members, at_validation, predictions[ensemble.name])
            evaluated[ensemble.name], test_predictions[ensemble.name] = members, members.predict(at_test.validation)
        test_rows = {name: metrics(at_test, p) for name, p in test_predictions.items()}
        test_table = pd.DataFrame.from_dict(test_rows, orient="index").add_prefix("test_")
        table = table.join(test_table)
        table["refit_seconds"] = pd.Series({k: round(v, 2) for k, v in test_seconds.items()})
        if champion not in evaluated:  # it could not be refitted where it is reported: the next eligible one wins
            log(f"{champion} failed at the test origin and cannot be champion")
            champion = rule.pick(table, [n for n in (allowed or list(table.index)) if n in evaluated], losses)
            if losses is not None:
                noise = _with_noise(table, losses, champion, seed)

    production = None
    if REFIT in split.parts and champion in evaluated:
        try:
            production = _refit(champion, candidates, fitted, weights, split, at_validation, predictions, calibrate, log, ensemble)
        except CandidateFitError as exc:  # the champion as evaluated at the test origin is still a sound model: register it
            failures[f"{champion} (production refit)"] = str(exc)
            log(f"{exc}; the champion as evaluated at the test origin is registered instead")
    return Comparison(table=table, champion=champion, rule=rule, split=split, fitted=fitted, predictions=predictions,
                      failures=failures, skipped=skipped, evaluated=evaluated, test_predictions=test_predictions,
                      production=production, noise=noise, weights=weights)


def _refit(champion, candidates, fitted, weights, split, at_validation, predictions, calibrate, log, ensemble):
    """The champion's recipe on all the data: the refit origin (an ensemble: each member, same weights)."""
    at_refit = split.origin(REFIT)
    names = list(weights) if ensemble is not None and champion == ensemble.name else [champion]
    reference = {name: (at_validation, predictions[name]) for name in names}
    members, _, _, failures, _ = _fit_all([c for c in candidates if c.name in names], at_refit, log, calibrate, reference)
    if failures or set(members) != set(names):
        raise CandidateFitError(f"the production refit of {champion} failed: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    if champion in members:
        return members[champion]
    refit = fitted[champion].at(members)
    return calibrate(refit, at_validation, predictions[champion]) if calibrate is not None else refit
