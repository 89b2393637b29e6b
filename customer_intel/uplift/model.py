"""``UpliftModel``: one learner per offer, the features it reads, and the control response model.

``effects(frame)`` is the estimated uplift of every offer for every row (n x offers). For the
response model, whose score is P(response | contacted) rather than an effect, the uplift is the
score mapped through ``effect_map``: an increasing step function from score to the uplift
measured (treated minus control rate) in score bins of the validation rows, out of fold.
``response_control(frame)`` is P(response | not contacted), from a logistic regression on the
control rows: with the uplift it places each customer in a quadrant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.uplift.frames import feature_columns, offer_mask, offers
from customer_intel.uplift.learners import LEARNERS, Learner, _logistic

ZERO_FILLED = ("no_purchase_history",)  # a column the daily features lack: its value there is known (0), not missing
MAP_BINS = 10


@dataclass
class UpliftModel:
    kind: str
    offers: list[str]
    columns: list[str]
    learners: dict[str, Learner]
    control: object
    propensity: dict[str, float]
    control_rate: float
    horizon_days: int
    effect_map: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model inputs in training order; a missing column is NaN (imputed), ``no_purchase_history`` 0."""
        out = np.empty((len(frame), len(self.columns)), dtype=float)
        for j, column in enumerate(self.columns):
            if column in frame.columns:
                out[:, j] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            else:
                out[:, j] = 0.0 if column in ZERO_FILLED else np.nan
        return out

    def missing_columns(self, frame: pd.DataFrame) -> list[str]:
        return [c for c in self.columns if c not in frame.columns and c not in ZERO_FILLED]

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Each learner's raw output per offer (its ranking score), n x offers."""
        X = self.matrix(frame)
        if not len(X):
            return np.empty((0, len(self.offers)))
        return np.column_stack([self.learners[o].effect(X) for o in self.offers])

    def effects(self, frame: pd.DataFrame) -> np.ndarray:
        """The estimated uplift per offer, n x offers (the response model's score mapped to an uplift)."""
        raw = self.scores(frame)
        if not self.effect_map:
            return raw
        return np.column_stack([np.interp(raw[:, j], *self.effect_map[o]) if o in self.effect_map else raw[:, j]
                                for j, o in enumerate(self.offers)])

    def response_control(self, frame: pd.DataFrame) -> np.ndarray:
        X = self.matrix(frame)
        return self.control.predict_proba(X)[:, 1] if len(X) else np.empty(0)


def fit_uplift_model(kind: str, rows: pd.DataFrame, horizon_days: int, seed: int = 0, columns: list[str] | None = None) -> UpliftModel:
    """One ``kind`` learner per offer on ``rows`` (treated rows of the offer and its campaigns' control rows)."""
    columns = columns or feature_columns(rows)
    model = UpliftModel(kind=kind, offers=offers(rows), columns=columns, learners={}, control=None, propensity={},
                        control_rate=float(rows.loc[rows["treated"] == 0, "converted"].mean()), horizon_days=int(horizon_days))
    X_all = model.matrix(rows)
    for offer_name in model.offers:
        mask = offer_mask(rows, offer_name)
        t, y = rows["treated"].to_numpy()[mask].astype(int), rows["converted"].to_numpy()[mask].astype(int)
        model.propensity[offer_name] = float(t.mean())
        model.learners[offer_name] = LEARNERS[kind]().fit(X_all[mask], t, y, seed)
    control = rows["treated"].to_numpy() == 0
    model.control = _logistic().fit(X_all[control], rows["converted"].to_numpy()[control].astype(int))
    return model


def increasing_map(score: np.ndarray, y: np.ndarray, t: np.ndarray, bins: int = MAP_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Knots (mean score, uplift) of the treated-minus-control rate in score quantile bins, made increasing by isotonic regression."""
    from sklearn.isotonic import IsotonicRegression

    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, us, ws = [], [], []
    for b in np.unique(which):
        inside = which == b
        treated, control = inside & (t == 1), inside & (t == 0)
        if treated.any() and control.any():
            xs.append(score[inside].mean())
            us.append(y[treated].mean() - y[control].mean())
            ws.append(inside.sum())
    if len(xs) < 2:
        overall = y[t == 1].mean() - y[t == 0].mean()
        return np.array([0.0, 1.0]), np.array([overall, overall])
    fitted = IsotonicRegression(increasing=True).fit(xs, us, sample_weight=ws).predict(xs)
    return np.asarray(xs, dtype=float), np.asarray(fitted, dtype=float)
