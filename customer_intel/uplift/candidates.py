"""The uplift candidates on the shared lifecycle: every learner of ``learners.py``, per offer against its control.

At the validation origin (the train part of a holdout split, no fit part) a candidate is
**cross-fitted**: one model per fold, each fitted on the other folds, so its prediction of the
train part is out of fold and the champion is chosen by cross-validated Qini on the train part
only. At the test origin it is fitted on the whole train part and predicts the held-out
customers; at the refit origin on every labelled row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import CandidateFitError, Prediction
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.split import FIT, TimeSplit
from customer_intel.uplift.frames import UpliftInputError, normalise_check, offer_slug, offers
from customer_intel.uplift.learners import KINDS, LEARNERS
from customer_intel.uplift.model import UpliftModel, fit_uplift_model
from customer_intel.uplift.scorer import DEFAULT_MARGIN, UpliftScorer

DEFAULT_EXCLUDED = ()  # every learner is compared by default


@dataclass
class FittedUplift:
    name: str
    kind: str
    rows: pd.DataFrame  # what the model(s) were fitted on
    horizon_days: int
    seed: int
    full: UpliftModel | None = None
    folds: dict[int, UpliftModel] = field(default_factory=dict)
    margin: float = DEFAULT_MARGIN
    cutoff: str | None = None

    @property
    def model(self) -> UpliftModel:
        """The model fitted on all of this origin's rows (fitted on first use at the validation origin)."""
        if self.full is None:
            self.full = fit_uplift_model(self.name, self.rows, self.horizon_days, self.seed)
            if self.folds:  # what the validation rows taught the folds (the response model's effect map) holds for it too
                self.full.effect_map = next(iter(self.folds.values())).effect_map
        return self.full

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Raw scores per offer (n x offers): out of fold for rows of a fold this candidate was cross-fitted on."""
        in_folds = frame["fold"].isin(list(self.folds)).to_numpy() if self.folds and "fold" in frame.columns else np.zeros(len(frame), bool)
        fitted = self.full or next(iter(self.folds.values()))  # every model of a candidate has the same offers
        values = np.full((len(frame), len(fitted.offers)), np.nan)
        if (~in_folds).any():
            values[~in_folds] = self.model.scores(frame.loc[~in_folds])
        for fold, model in self.folds.items():
            rows = (frame["fold"] == fold).to_numpy() & in_folds
            if rows.any():
                values[rows] = model.scores(frame.loc[rows])
        return Prediction(values)

    def params(self) -> dict:
        model = self.full or next(iter(self.folds.values()), None)
        out = {"learner": self.name, "offers": ",".join(model.offers) if model else "", "features": len(model.columns) if model else 0,
               "cross_fitted_folds": len(self.folds), "seed": self.seed}
        if model is not None:
            first = model.learners[model.offers[0]]
            out.update({f"{k}": v for k, v in first.params().items() if v is not None})
            out.update({f"propensity_{offer_slug(k)}": round(v, 4) for k, v in model.propensity.items()})  # MLflow keys: no '%'
            out.update({f"C_{offer_slug(k)}": learner.C for k, learner in model.learners.items() if getattr(learner, "C", None) is not None})
        return out

    def to_scorer(self) -> UpliftScorer | None:
        return UpliftScorer(self.name, self.model, margin=self.margin, cutoff=self.cutoff, code_version=code_version())


@dataclass
class UpliftCandidate:
    name: str
    kind: str
    seed: int = 0
    margin: float = DEFAULT_MARGIN

    def fit(self, split: TimeSplit) -> FittedUplift:
        try:
            if FIT in split.parts:  # test or refit origin: every fit row, one model
                rows = split.fit
                model = fit_uplift_model(self.name, rows, split.horizon_of(FIT), self.seed)
                return FittedUplift(self.name, self.kind, rows, split.horizon_of(FIT), self.seed, full=model, margin=self.margin,
                                    cutoff=str(split.cutoff_of(FIT).date()))
            rows = split.validation  # the validation origin of a holdout split: cross-fitted on its folds
            folds = sorted(int(f) for f in rows["fold"].unique() if f >= 0)
            if len(folds) < 2:
                raise CandidateFitError(f"{self.name}: the train part has {len(folds)} fold(s); cross-validation needs two")
            for f in folds:  # every fold's training rows must hold each offer's treated and control responders and non-responders
                try:
                    normalise_check(rows.loc[rows["fold"] != f])
                except UpliftInputError as exc:
                    raise CandidateFitError(f"{self.name}: the training rows of fold {f}: {exc}; too few customers for {len(folds)} folds") from exc
                if offers(rows.loc[rows["fold"] != f]) != offers(rows):
                    raise CandidateFitError(f"{self.name}: fold {f}'s training rows lack an offer; too few customers for {len(folds)} folds")
            fitted = {f: fit_uplift_model(self.name, rows.loc[rows["fold"] != f], split.horizon_days, self.seed) for f in folds}
            return FittedUplift(self.name, self.kind, rows, split.horizon_days, self.seed, folds=fitted, margin=self.margin,
                                cutoff=str(split.cutoff.date()))
        except CandidateFitError:
            raise
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise CandidateFitError(f"{self.name}: {exc}") from exc


def uplift_candidates(include: list[str] | None = None, seed: int = 0, quadrant_margin: float = DEFAULT_MARGIN, **_ignored) -> list[UpliftCandidate]:
    """The candidates (``include``: which learners to fit, default all; the response model is always compared: it is the baseline)."""
    unknown = sorted(set(include or []) - set(LEARNERS))
    if unknown:
        raise ValueError(f"unknown uplift learners {unknown}; choose from {sorted(LEARNERS)}")
    names = [n for n in LEARNERS if n == "response" or include is None or n in include]
    return [UpliftCandidate(name, KINDS[name], seed=seed, margin=quadrant_margin) for name in names]
