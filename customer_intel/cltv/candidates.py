"""The CLTV candidates: naive baselines, the probabilistic models, and time-shifted ML regressors.

Each is a ``modeling.Candidate``: ``fit(split)`` sees only data up to the split's cutoff and
returns a fitted candidate that forecasts repeat purchase days over the validation horizon and
knows the ``CLTVScorer`` it would be registered as.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from customer_intel.cltv.conformal import Calibrated, conformal_quantiles
from customer_intel.cltv.evaluation import rate_baseline
from customer_intel.cltv.frames import TARGET
from customer_intel.cltv.ml import (
    HORIZON_SCALINGS,
    STACKED,
    FeatureMatrix,
    candidate_regressors,
    horizon_scale,
    predict_with_interval,
    stack_features,
)
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS, CLTVFitError, ProbabilisticCLTV
from customer_intel.cltv.scorer import CLTVEnsembleScorer, CLTVScorer
from customer_intel.modeling.candidate import CandidateFitError, CandidateSkipped, Prediction, flat_params
from customer_intel.modeling.intervals import Interval
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.split import FIT, VALIDATION, TimeSplit


def _split_params(split: TimeSplit) -> dict:
    return {"cutoff": str(split.cutoff.date()), "horizon_days": split.horizon_days}


# -- naive baselines ------------------------------------------------------------------------------

@dataclass
class NaiveBaseline:
    """A forecast with nothing to learn: ``forecast(features, horizon_days)``. Never registered."""

    name: str
    forecast: Callable[[pd.DataFrame, int], np.ndarray]
    kind: str = "baseline"

    def fit(self, split: TimeSplit) -> _FittedBaseline:
        return _FittedBaseline(self, split)


@dataclass
class _FittedBaseline:
    baseline: NaiveBaseline
    split: TimeSplit

    def predict(self, frame: pd.DataFrame) -> Prediction:
        return Prediction(np.asarray(self.baseline.forecast(frame, self.split.horizon_days), dtype=float))

    def params(self) -> dict:
        return _split_params(self.split)

    def to_scorer(self) -> None:
        return None


def _zero(frame: pd.DataFrame, horizon_days: int) -> np.ndarray:
    return np.zeros(len(frame))


def naive_baselines() -> list[NaiveBaseline]:
    return [NaiveBaseline("baseline_zero", _zero), NaiveBaseline("baseline_rate", rate_baseline)]


# -- probabilistic models -------------------------------------------------------------------------

class ProbabilisticFits:
    """Each probabilistic model fitted once per (split, part): the BG/NBD candidate and every stacked
    regressor of a comparison share the same BG/NBD fit at the cutoff (a failure is remembered too)."""

    def __init__(self, time_unit_days: float = 7.0):
        self.time_unit_days = time_unit_days
        self._fits: dict = {}

    def fit(self, model: str, split: TimeSplit, part: str) -> ProbabilisticCLTV:
        key = (model, id(split), part)
        if key not in self._fits:
            try:
                fitted = ProbabilisticCLTV(model, time_unit_days=self.time_unit_days).fit(split.part(part))
            except CLTVFitError as exc:
                fitted = exc
            self._fits[key] = (split, fitted)  # the split is kept so its id is not reused while cached
        fitted = self._fits[key][1]
        if isinstance(fitted, CLTVFitError):
            raise CandidateFitError(str(fitted)) from fitted
        return fitted


@dataclass
class ProbabilisticCandidate:
    """BG/NBD, Pareto/NBD or MBG/NBD with Gamma-Gamma spend, fitted on the features as of the cutoff."""

    name: str
    fits: ProbabilisticFits
    seed: int = 0
    kind: str = "probabilistic"

    def fit(self, split: TimeSplit) -> FittedProbabilistic:
        return FittedProbabilistic(self, self.fits.fit(self.name, split, VALIDATION), split)


@dataclass
class FittedProbabilistic:
    candidate: ProbabilisticCandidate
    model: ProbabilisticCLTV
    split: TimeSplit

    def predict(self, frame: pd.DataFrame) -> Prediction:
        prediction = self.model.predict(frame, self.split.horizon_days, seed=self.candidate.seed)
        return Prediction(prediction["expected_purchases"].to_numpy(), Interval.from_columns(prediction, "purchases"))

    def params(self) -> dict:
        return {**_split_params(self.split), "time_unit_days": self.model.time_unit_days,
                **{f"param_{k}": v for k, v in self.model.params_.items()},
                **{f"spend_param_{k}": v for k, v in self.model.spend_params_.items()}}

    def to_scorer(self) -> CLTVScorer:
        return CLTVScorer(champion=self.candidate.name, probabilistic=self.model, horizon_days=self.split.horizon_days,
                          cutoff=str(self.split.cutoff.date()), code_version=code_version())


# -- time-shifted ML regressors stacked on BG/NBD -------------------------------------------------

class StackingBase:
    """What every stacked regressor of one comparison shares, built once per split.

    BG/NBD as of the cutoff (it stacks the validation rows and is the scorer's probabilistic
    part; the same fit as the ``bgnbd`` candidate's), BG/NBD as of the fit rows' own as-of day
    (it stacks the training rows: nothing from after that day), and the feature matrix with the
    training target. The first regressor's ``fit_seconds`` includes the fit-rows BG/NBD.
    """

    def __init__(self, fits: ProbabilisticFits):
        self.fits = fits
        self._split: TimeSplit | None = None
        self._fitted: tuple | None = None

    def for_split(self, split: TimeSplit):
        """(bgnbd at the cutoff, feature matrix, X_fit, y_fit, training window in days)."""
        if self._split is split:
            return self._fitted
        window = split.horizon_of(FIT) if FIT in split.parts else 0
        if window <= 0 or split.fit.empty:
            raise CandidateSkipped("no history for a time-shifted training window before the cutoff")
        try:
            at_cutoff = self.fits.fit("bgnbd", split, VALIDATION)
            stacker = self.fits.fit("bgnbd", split, FIT)
        except CandidateFitError as exc:
            raise CandidateFitError(f"BG/NBD, which the ML candidates stack on, failed: {exc}") from exc
        # the training rows' stacked inputs cover the horizon, as the validation rows' do
        training = stack_features(split.fit, *stacker.point_predictions(split.fit, split.horizon_days))
        matrix = FeatureMatrix.fit(training)
        assert set(STACKED) <= set(matrix.columns)
        self._split = split
        self._fitted = (at_cutoff, matrix, matrix.transform(training), training[TARGET].to_numpy(dtype=float), window)
        return self._fitted


@dataclass
class StackedRegressorCandidate:
    """An ML regressor trained time-shifted: features as of ``cutoff - window``, target in the window
    before the cutoff, BG/NBD's P(alive) and expected purchases stacked in; its forecasts are
    scaled from the window to the horizon."""

    name: str
    estimator: object
    base: StackingBase
    seed: int = 0
    horizon_scaling: str = "bgnbd_ratio"  # how the training window's forecast reaches the horizon (ml.horizon_scale)
    kind: str = "ml (time-shifted, stacked)"

    def fit(self, split: TimeSplit) -> FittedRegressor:
        at_cutoff, matrix, X, y, window = self.base.for_split(split)
        # a fresh copy: fitting another split never rewrites this one (safe=False: any estimator with fit/predict)
        estimator = clone(self.estimator, safe=False).fit(X, y)
        return FittedRegressor(self, estimator, at_cutoff, matrix, window, split)


@dataclass
class FittedRegressor:
    candidate: StackedRegressorCandidate
    estimator: object
    at_cutoff: ProbabilisticCLTV
    matrix: FeatureMatrix
    window_days: int
    split: TimeSplit

    def predict(self, frame: pd.DataFrame) -> Prediction:
        horizon = self.split.horizon_days
        p_alive, expected = self.at_cutoff.point_predictions(frame, horizon)
        scale = horizon_scale(self.at_cutoff, frame, horizon, self.window_days, self.candidate.horizon_scaling, expected)
        point, interval = predict_with_interval(self.estimator, self.matrix.transform(stack_features(frame, p_alive, expected)),
                                                scale=scale, seed=self.candidate.seed)
        return Prediction(point, interval)

    def params(self) -> dict:
        return {**_split_params(self.split), "training_window_days": self.window_days, "horizon_scaling": self.candidate.horizon_scaling,
                **flat_params(self.estimator.get_params(), "estimator.")}

    def to_scorer(self) -> CLTVScorer:
        return CLTVScorer(champion=self.candidate.name, probabilistic=self.at_cutoff, horizon_days=self.split.horizon_days,
                          regressor=(self.matrix, self.estimator), training_days=self.window_days,
                          cutoff=str(self.split.cutoff.date()), code_version=code_version(),
                          stack_horizon_days=self.split.horizon_days, horizon_scaling=self.candidate.horizon_scaling)


def ensemble_scorer(members: dict[str, CLTVScorer], weights: dict[str, float]) -> CLTVEnsembleScorer:
    """The registered ensemble: the members' scorers (fitted at one origin) and their weights."""
    first = next(iter(members.values()))
    return CLTVEnsembleScorer(champion="ensemble", members=tuple((name, float(weights[name]), members[name]) for name in weights),
                              horizon_days=first.horizon_days, cutoff=first.cutoff, code_version=code_version())


def calibrate(fitted, validation: TimeSplit, prediction: Prediction):
    """An ML or ensemble candidate refitted at a later origin keeps the conformal band of its validation
    forecasts (so its published interval agrees with its point); a probabilistic model keeps its posterior."""
    if isinstance(fitted, FittedProbabilistic | _FittedBaseline):
        return fitted
    band = conformal_quantiles(validation.validation[TARGET].to_numpy(dtype=float), np.asarray(prediction.values, dtype=float))
    return Calibrated(fitted, band)


DEFAULT_TRANSACTION_MODELS = ("bgnbd", "mbgnbd")  # Pareto/NBD is opt-in: 37 s of a 112 s comparison, weight 0 in every ensemble measured


def cltv_candidates(time_unit_days: float = 7.0, include_ml: bool = True, regressors: dict | list[str] | None = None,
                    seed: int = 0, horizon_scaling: str = "bgnbd_ratio", transaction_models: list[str] | None = None) -> list:
    """Baselines, the probabilistic models (``transaction_models``, default BG/NBD and MBG/NBD) and
    (``include_ml``) the stacked regressors, each reaching the horizon by ``horizon_scaling``.

    ``regressors``: a name -> estimator mapping, or names from ``candidate_regressors`` (default: all seven).
    """
    fits = ProbabilisticFits(time_unit_days)
    models = list(DEFAULT_TRANSACTION_MODELS if transaction_models is None else transaction_models)
    unknown = sorted(set(models) - set(TRANSACTION_MODELS))
    if unknown or not models:
        raise ValueError(f"unknown transaction models {unknown}; choose one or more of {list(TRANSACTION_MODELS)}")
    candidates: list = [*naive_baselines(), *(ProbabilisticCandidate(name, fits, seed) for name in models)]
    if include_ml:
        available = candidate_regressors(seed)
        if regressors is None:
            chosen = available
        elif isinstance(regressors, dict):
            chosen = regressors
        else:
            unknown = sorted(set(regressors) - set(available))
            if unknown:
                raise ValueError(f"unknown regressors {unknown}; choose from {sorted(available)}")
            chosen = {name: available[name] for name in regressors}
        base = StackingBase(fits)
        if horizon_scaling not in HORIZON_SCALINGS:
            raise ValueError(f"unknown horizon_scaling {horizon_scaling!r}; choose from {list(HORIZON_SCALINGS)}")
        candidates += [StackedRegressorCandidate(name, estimator, base, seed, horizon_scaling) for name, estimator in chosen.items()]
    return candidates
