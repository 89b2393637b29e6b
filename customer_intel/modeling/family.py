"""``ModelFamily``: everything the shared lifecycle needs to know about one family of models.

A family (CLTV, segmentation, churn, uplift, embeddings) is this spec plus its domain code:
how to split its training data in time, which candidates to fit, how to score a prediction, how
the champion is chosen and which columns its scorer writes. ``customer_intel.assets.factory``
turns a spec into the family's Dagster assets; nothing else about the lifecycle is per family.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import Candidate, Prediction
from customer_intel.modeling.card import CardHooks
from customer_intel.modeling.comparison import Comparison, Metrics, compare_candidates
from customer_intel.modeling.ensemble import EnsembleSpec
from customer_intel.modeling.rule import ChampionRule
from customer_intel.modeling.scorer import Scorer
from customer_intel.modeling.split import TimeSplit

REGISTERED_MODEL_PREFIX = "customer_intel_"


class FamilyInputError(ValueError):
    """The upstream tables cannot make this family's split (e.g. CLTV without transactions)."""


class FamilyNotApplicable(FamilyInputError):
    """The family has nothing to learn from in this deployment (e.g. uplift without any campaign table): its training
    assets are skipped, not failed, and its daily scores stay null."""


class CandidateConfigError(ValueError):
    """The configuration names a candidate, or a hyperparameter, the family does not have."""


@dataclass(frozen=True)
class ModelFamily:
    """The spec of one model family.

    - ``build_split(inputs, **frame_params)``: the family's ``TimeSplit`` from the upstream tables
      (``inputs``: asset name -> DataFrame) and the training-frame parameters (cutoff, horizon, ...);
    - ``candidates(**model_params)``: the unfitted candidates, baselines included;
    - ``metrics(split, prediction)``: every metric of one prediction of the validation rows;
    - ``evaluate_scorer(scorer, split)``: a registered scorer's prediction of the same rows, at this
      split's horizon (the gate compares like with like);
    - ``score_columns``: what the scorer's ``score`` returns (the daily columns, before the prefix);
    - ``pip_requirements``: what a scorer needs to load outside this repository;
    - ``target_columns``: columns of the split's rows a scorer never sees (the logged input
      example and signature leave them out);
    - ``plots(comparison)``: Markdown plots for the comparison's metadata (optional);
    - ``ensemble``: an ``EnsembleSpec`` when a weighted ensemble of the candidates competes too;
      ``target``: the validation column its weights are fitted to;
    - ``row_loss(split, prediction)``: the per-row loss whose mean is the rule's metric (for the
      paired bootstrap intervals and the one-standard-error preference for simpler models);
    - ``calibrate(fitted, validation split, validation prediction)``: what a candidate refitted at a
      later origin keeps from its validation forecasts (e.g. a conformal interval);
    - ``rule_params`` / ``configure_rule(rule, **params)``: launchpad fields that tune the rule
      (e.g. a bias bound); one the candidates also take (segmentation's k range) reaches both;
      ``rule_params_for(split)``: the values a split implies for those left unset (e.g. the
      embeddings judge lookalikes only when the split holds a campaign); the comparison records
      the values used (``Comparison.rule_params``), and the gate rebuilds the same rule from them;
    - ``row_loss`` may take the rule as ``rule=`` when its loss depends on the rule's metric;
    - ``score_frame(features, **score_inputs, as_of=day)``: the frame its scorer reads, from the day's
      features and the extra upstream tables its spec names (e.g. embeddings' token bags from the
      transactions); default: the features as they are;
    - ``column_prefix``: the prefix of its columns in ``scored_customers`` (default the name);
      ``has_horizon``: whether its scores cover a window (a ``<prefix>_horizon_days`` column);
    - ``card``: what the family adds to its model card (``modeling.card.CardHooks``: the champion's features,
      calibration, its metric on a subset of rows, intended use and misuse).
    """

    name: str
    description: str
    rule: ChampionRule
    build_split: Callable[..., TimeSplit]
    candidates: Callable[..., list[Candidate]]
    metrics: Metrics
    evaluate_scorer: Callable[[Scorer, TimeSplit], Prediction]
    score_columns: tuple[str, ...]
    target_columns: tuple[str, ...] = ()
    pip_requirements: tuple[str, ...] = ("customer_intel", "pandas<3", "scikit-learn")
    plots: Callable[[Comparison], dict[str, str]] | None = None
    needs_transactions: bool = True
    legacy_split_columns: tuple[str, str] | None = None  # (as-of, window) columns of frames written before TimeSplit's own
    ensemble: EnsembleSpec | None = None
    target: str | None = None
    row_loss: Callable[[TimeSplit, Prediction], np.ndarray] | None = None
    calibrate: Callable | None = None
    rule_params: tuple[str, ...] = ()
    configure_rule: Callable[..., ChampionRule] | None = None
    rule_params_for: Callable[[TimeSplit], dict] | None = None
    column_prefix: str | None = None
    has_horizon: bool = True
    score_frame: Callable[..., pd.DataFrame] | None = None
    card: CardHooks | None = None

    @property
    def prefix(self) -> str:
        return self.column_prefix or self.name

    def split_from_frame(self, frame: pd.DataFrame) -> TimeSplit:
        """The family's training frame as a ``TimeSplit`` (frames written before the shared lifecycle included)."""
        cutoff_column, horizon_column = self.legacy_split_columns or (None, None)
        return TimeSplit.from_frame(frame, cutoff_column=cutoff_column, horizon_column=horizon_column)

    @property
    def registered_model(self) -> str:
        """The MLflow registry name: ``customer_intel_<family>``."""
        return REGISTERED_MODEL_PREFIX + self.name

    def split(self, inputs: Mapping[str, pd.DataFrame], **frame_params) -> TimeSplit:
        return self.build_split(inputs, **frame_params)

    def build_candidates(self, allowed: list[str] | None = None, **model_params) -> list[Candidate]:
        """The family's candidates for ``model_params``; ``allowed`` must name some of them.

        Raises ``CandidateConfigError`` with what to choose from, before anything is fitted.
        """
        try:
            candidates = self.candidates(**model_params)
        except ValueError as exc:
            raise CandidateConfigError(str(exc)) from exc
        names = [c.name for c in candidates] + ([self.ensemble.name] if self.ensemble is not None else [])
        unknown = sorted(set(allowed or []) - set(names))
        if unknown:
            raise CandidateConfigError(f"unknown candidates {unknown}; choose from {names}")
        return candidates

    def rule_for(self, **rule_params) -> ChampionRule:
        """The family's rule, tuned by its ``rule_params`` (the defaults when none are given)."""
        given = {k: v for k, v in rule_params.items() if v is not None}
        if self.configure_rule is None or not given:
            return self.rule
        try:
            return self.configure_rule(self.rule, **given)
        except ValueError as exc:  # a value the rule does not take: the user's to fix, before anything is fitted
            raise CandidateConfigError(str(exc)) from exc

    def rule_for_split(self, split: TimeSplit, **rule_params) -> tuple[ChampionRule, dict]:
        """(the rule, the params that made it): ``rule_params`` given, else what ``split`` implies (``rule_params_for``)."""
        params = {**(self.rule_params_for(split) if self.rule_params_for is not None else {}),
                  **{k: v for k, v in rule_params.items() if v is not None}}
        return self.rule_for(**params), params

    def compare(self, split: TimeSplit, *, allowed: list[str] | None = None, log=print, **model_params) -> Comparison:
        """Every candidate on ``split``, champion by the family's rule among ``allowed`` (default all)."""
        shared = set(inspect.signature(self.candidates).parameters)
        given = {k: (model_params.get if k in shared else model_params.pop)(k) for k in self.rule_params if k in model_params}
        rule, params = self.rule_for_split(split, **given)
        seed = int(model_params.get("seed", 0) or 0)
        comparison = compare_candidates(self.build_candidates(allowed, **model_params), split, rule, self.metrics,
                                        allowed=allowed, log=log, ensemble=self.ensemble, row_loss=self.row_loss_for(rule),
                                        target=self.target, calibrate=self.calibrate, seed=seed)
        comparison.rule_params = params
        return comparison

    def row_loss_for(self, rule: ChampionRule):
        """``row_loss`` for ``rule`` (bound to it when it takes the rule)."""
        if self.row_loss is None or "rule" not in inspect.signature(self.row_loss).parameters:
            return self.row_loss
        return functools.partial(self.row_loss, rule=rule)

    def input_example(self, split: TimeSplit, rows: int = 5) -> pd.DataFrame:
        """A few validation rows as the scorer sees them in production: no targets, and no timestamp
        columns (the as-of day is implied by the features, and an MLflow schema holds only naive
        datetimes, which would refuse the feature builder's UTC ``as_of``). The logged signature is
        inferred from it, and ``pyfunc.predict`` hands the scorer only the signature's columns: a
        scorer must not need a timestamp column."""
        frame = split.validation.head(rows)
        dropped = [c for c in frame.columns if c in self.target_columns or pd.api.types.is_datetime64_any_dtype(frame[c])]
        return frame.drop(columns=dropped).reset_index(drop=True)

    def score_incumbent(self, scorer: Scorer, split: TimeSplit) -> dict[str, float]:
        """The registered scorer's metrics on this split's validation rows (the gate's reference)."""
        return self.metrics(split, self.evaluate_scorer(scorer, split))
