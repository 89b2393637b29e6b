"""The registered uplift scorer: per customer, the uplift of every offer, the best one, and the quadrant.

Its module path is part of every registered uplift model (MLflow pickles it by reference): keep
``customer_intel.uplift.scorer.UpliftScorer`` importable and give new fields defaults.

Quadrants (the four uplift segments of marketing): **persuadable** (the contact raises the
response probability by at least ``margin``), **sleeping dog** (it lowers it by at least
``margin``: do not disturb), and among the rest **sure thing** (responds anyway: P(response
without contact) at or above ``response_threshold``) and **lost cause** (responds either way
rarely).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.modeling.scorer import ScorerInfo
from customer_intel.uplift.frames import offer_slug
from customer_intel.uplift.model import UpliftModel

SCORE_COLUMNS = ("uplift", "best_offer", "response_control", "response_treated", "quadrant", "offers")  # published as uplift, uplift_best_offer, ...
QUADRANTS = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
DEFAULT_MARGIN = 0.01


def offer_column(offer: str) -> str:
    """The scorer's column of one offer's uplift (``uplift_for_<slug>`` in scored_customers)."""
    return f"for_{offer_slug(offer)}"


def quadrants(uplift: np.ndarray, response_control: np.ndarray, margin: float, response_threshold: float) -> np.ndarray:
    uplift, base = np.asarray(uplift, dtype=float), np.asarray(response_control, dtype=float)
    out = np.where(uplift >= margin, "persuadable", np.where(uplift <= -margin, "sleeping_dog",
                                                              np.where(base >= response_threshold, "sure_thing", "lost_cause"))).astype(object)
    out[~np.isfinite(uplift)] = None
    return out


@dataclass
class UpliftScorer:
    candidate: str
    model: UpliftModel
    margin: float = DEFAULT_MARGIN
    response_threshold: float | None = None  # default: the control response rate of the training rows
    cutoff: str | None = None
    code_version: str = "unknown"

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("uplift", self.candidate, self.cutoff, self.model.horizon_days, self.code_version)

    @property
    def horizon_days(self) -> int:
        return self.model.horizon_days

    @property
    def offers(self) -> list[str]:
        return list(self.model.offers)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return (*SCORE_COLUMNS, *(offer_column(o) for o in self.model.offers))

    @property
    def quadrant_threshold(self) -> float:
        """P(response without contact) at or above which a customer the contact does not move is a sure thing."""
        return self.model.control_rate if self.response_threshold is None else self.response_threshold

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Uplift per offer, the best offer and its uplift, P(response) with and without the contact, the quadrant.

        Features without a column the model was trained on (e.g. profile-mode features for a model
        trained on transactions) get null scores rather than imputed guesses."""
        index = features.index
        effects = self.model.effects(features) if len(features) else np.empty((0, len(self.model.offers)))
        base = self.model.response_control(features) if len(features) else np.empty(0)
        if len(features) and self.model.missing_columns(features):
            effects, base = np.full_like(effects, np.nan), np.full_like(base, np.nan)
        best = np.argmax(np.where(np.isfinite(effects), effects, -np.inf), axis=1) if len(features) else np.empty(0, dtype=int)
        uplift = effects[np.arange(len(best)), best] if len(features) else np.empty(0)
        threshold = self.quadrant_threshold
        out = pd.DataFrame({
            "uplift": uplift,
            "best_offer": np.where(np.isfinite(uplift), np.asarray(self.model.offers, dtype=object)[best], None) if len(best)
            else np.empty(0, dtype=object),
            "response_control": base,
            "response_treated": np.clip(base + uplift, 0.0, 1.0),
            "quadrant": quadrants(uplift, base, self.margin, threshold),
            "offers": json.dumps(list(self.model.offers)),  # the names behind the uplift_for_<slug> columns, in order
        }, index=index)
        for j, offer_name in enumerate(self.model.offers):
            out[offer_column(offer_name)] = effects[:, j] if len(features) else np.empty(0)
        return out
