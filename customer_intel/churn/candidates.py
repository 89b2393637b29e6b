"""The churn candidates: recency alone, 1 - P(alive) (the trap, as a baseline), BG/NBD's probability of no
purchase, a standardised logistic regression, LightGBM, and a logistic regression stacked on BG/NBD.

Each is a ``modeling.Candidate``. The classifiers train time-shifted on the split's ``fit`` rows
(features as of an earlier day, label in the window after it) and predict the next part; BG/NBD
is fitted on the features of the rows it predicts (features only, no label). Every prediction is
P(no purchase in the split's horizon) with the window correction of ``model.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.churn.counterfactual import DEFAULT_ACTIONABLE, Actionable, actionable_list
from customer_intel.churn.frames import LABEL
from customer_intel.churn.model import BGNBD_INPUTS, CALIBRATIONS, ChurnModel, LinearInputs, feature_columns, fit_bgnbd_params
from customer_intel.churn.scorer import REASONS_FOR, ChurnScorer
from customer_intel.modeling.candidate import CandidateFitError, CandidateSkipped, Prediction
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.split import FIT, TimeSplit

# name -> (model kind, lifecycle kind: the rule's simplicity order reads it)
CANDIDATES = {
    "recency": ("recency", "baseline"),
    "one_minus_p_alive": ("p_alive", "baseline"),
    "bgnbd": ("bgnbd", "probabilistic"),
    "logistic": ("logistic", "linear"),
    "stacked": ("stacked", "stacked"),
    "lightgbm": ("lightgbm", "gbm"),
}
BACKGROUND_ROWS = 100


def _estimator(kind: str, seed: int, n_jobs: int):
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=50, subsample=0.8, subsample_freq=1,
                              colsample_bytree=0.8, reg_lambda=1.0, n_jobs=n_jobs, random_state=seed, verbose=-1)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000)


@dataclass
class ScoringOptions:
    """What the registered scorer does beyond the probability (set by the models config)."""

    threshold: float = 0.5
    actionable: tuple[Actionable, ...] = field(default_factory=lambda: tuple(actionable_list(DEFAULT_ACTIONABLE)))
    reasons_for: str = "at_risk"
    counterfactuals: bool = True


@dataclass
class ChurnCandidate:
    name: str
    model_kind: str
    kind: str
    calibration: str = "window"
    seed: int = 0
    n_jobs: int = 2
    options: ScoringOptions = field(default_factory=ScoringOptions)

    def fit(self, split: TimeSplit) -> FittedChurn:
        target = split.validation
        try:
            bgnbd = fit_bgnbd_params(target)
        except (RuntimeError, ValueError) as exc:
            raise CandidateFitError(f"BG/NBD at {split.cutoff.date()} on {len(target):,} customers: {exc}") from exc
        horizon = split.horizon_days
        if self.model_kind in ("bgnbd", "p_alive"):
            sample = target[list(BGNBD_INPUTS)].astype(float).sample(min(BACKGROUND_ROWS, len(target)), random_state=self.seed)
            model = ChurnModel(self.model_kind, horizon, horizon, "none", bgnbd=bgnbd, background=sample.to_numpy())
            return FittedChurn(self, model, split)
        if FIT not in split.parts or not len(split.fit):
            raise CandidateSkipped("no fit rows before the cutoff: history too short for a time-shifted label")
        rows = split.fit
        y = rows[LABEL].to_numpy(dtype=int)
        if len(np.unique(y)) < 2:
            raise CandidateSkipped(f"the fit rows ({split.cutoff_of(FIT).date()}) have one class only: nothing to learn")
        train_bgnbd = None
        if self.model_kind == "stacked":
            try:
                train_bgnbd = fit_bgnbd_params(rows)
            except (RuntimeError, ValueError) as exc:
                raise CandidateFitError(f"BG/NBD at the fit rows' day: {exc}") from exc
        columns = ["recency"] if self.model_kind == "recency" else feature_columns(rows)
        inputs = LinearInputs.fit(rows, columns)
        # recency alone means recency alone: no correction that reads frequency and tenure
        calibration = "none" if self.model_kind == "recency" else self.calibration
        model = ChurnModel(self.model_kind, horizon, split.horizon_of(FIT), calibration, bgnbd=bgnbd, train_bgnbd=train_bgnbd,
                           inputs=inputs, estimator=_estimator(self.model_kind, self.seed, self.n_jobs))
        X = model.design(rows, params=train_bgnbd)
        model.estimator.fit(X, y)
        # SHAP's reference: customers of the day the model answers for (the training rows are an earlier day: their tenure differs)
        picked = np.sort(np.random.default_rng(self.seed).choice(len(target), size=min(BACKGROUND_ROWS, len(target)), replace=False))
        model.background = model.design(target.iloc[picked])
        return FittedChurn(self, model, split)


@dataclass
class FittedChurn:
    candidate: ChurnCandidate
    model: ChurnModel
    split: TimeSplit

    def predict(self, frame: pd.DataFrame) -> Prediction:
        return Prediction(self.model.proba(frame))

    def params(self) -> dict:
        return {"candidate": self.candidate.name, **self.model.params(), "cutoff": str(self.split.cutoff.date())}

    def to_scorer(self) -> ChurnScorer | None:
        if self.candidate.kind == "baseline":
            return None
        o = self.candidate.options
        return ChurnScorer(self.candidate.name, self.model, threshold=o.threshold, actionable=tuple(o.actionable), reasons_for=o.reasons_for,
                           counterfactuals=o.counterfactuals, cutoff=str(self.split.cutoff.date()), code_version=code_version())


def churn_candidates(include: list[str] | None = None, calibration: str = "window", seed: int = 0, n_jobs: int = 2,
                     risk_threshold: float = 0.5, actionable: list[str] | None = None, reasons_for: str = "at_risk",
                     counterfactuals: bool = True) -> list[ChurnCandidate]:
    """The candidates named in ``include`` (default all; the two baselines always), calibrated by ``calibration``."""
    unknown = sorted(set(include or []) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"unknown churn candidates {unknown}; choose from {', '.join(CANDIDATES)}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}; got {calibration!r}")
    if not 0 < risk_threshold < 1:
        raise ValueError(f"risk_threshold must lie in (0, 1); got {risk_threshold}")
    if reasons_for not in REASONS_FOR:
        raise ValueError(f"reasons_for must be one of {', '.join(REASONS_FOR)}; got {reasons_for!r}")
    options = ScoringOptions(risk_threshold, tuple(actionable_list(actionable if actionable is not None else DEFAULT_ACTIONABLE)),
                             reasons_for, counterfactuals)
    names = [n for n in CANDIDATES if include is None or n in include or CANDIDATES[n][1] == "baseline"]
    return [ChurnCandidate(n, *CANDIDATES[n], calibration=calibration, seed=seed, n_jobs=n_jobs, options=options) for n in names]
