"""The registered churn scorer: probability, risk band, SHAP reasons and a counterfactual per at-risk customer.

Its module path is part of every registered churn model (MLflow pickles it by reference): keep
``customer_intel.churn.scorer.ChurnScorer`` importable and give new fields defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.churn.counterfactual import COUPLED, PURCHASES, Actionable, search
from customer_intel.churn.explain import top_reasons
from customer_intel.churn.model import ChurnModel
from customer_intel.modeling.scorer import ScorerInfo

N_REASONS = 3
SCORE_COLUMNS = ("probability", "risk_band", "reasons",
                 *(c for k in range(1, N_REASONS + 1) for c in (f"reason_{k}", f"reason_{k}_logodds")),
                 "counterfactual", "counterfactual_probability")  # published as churn_probability, churn_risk_band, ...
BANDS = ("low", "medium", "high")
REASONS_FOR = ("at_risk", "all", "none")


def risk_bands(p: np.ndarray, threshold: float) -> np.ndarray:
    """high at or above the threshold, medium from half of it, low below."""
    p = np.asarray(p, dtype=float)
    bands = np.where(p >= threshold, "high", np.where(p >= threshold / 2, "medium", "low")).astype(object)
    bands[~np.isfinite(p)] = None  # no probability (a missing input): no band either
    return bands


@dataclass
class ChurnScorer:
    """P(no purchase in the next ``horizon_days``) for every customer; reasons and counterfactuals for those at risk."""

    candidate: str
    model: ChurnModel
    threshold: float = 0.5
    actionable: tuple[Actionable, ...] = ()
    reasons_for: str = "at_risk"
    counterfactuals: bool = True
    cutoff: str | None = None
    code_version: str = "unknown"
    extra: dict = field(default_factory=dict)

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("churn", self.candidate, self.cutoff, self.model.horizon_days, self.code_version)

    @property
    def horizon_days(self) -> int:
        return self.model.horizon_days

    @property
    def output_columns(self) -> tuple[str, ...]:
        return SCORE_COLUMNS

    def at_horizon(self, horizon_days: int) -> ChurnScorer:
        """The same scorer answering for another window (BG/NBD and the window correction carry it; the gate's like-for-like)."""
        model = ChurnModel(**{**self.model.__dict__, "horizon_days": int(horizon_days)})
        return ChurnScorer(**{**self.__dict__, "model": model})

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        return self.model.proba(features)

    def actions(self) -> list[Actionable]:
        """The actionable changes this model can feel: the purchases event, and the columns it reads."""
        return [a for a in self.actionable if a.column == PURCHASES or a.column in self.model.required_columns]

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        index = features.index
        features = features.reset_index(drop=True)
        if not len(features):
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("risk_band", "reasons", "counterfactual") or
                                              (c.startswith("reason_") and not c.endswith("logodds")) else float)
                                 for c in SCORE_COLUMNS}, index=index)
        p = self.model.proba(features)
        out = pd.DataFrame({"probability": p, "risk_band": risk_bands(p, self.threshold)}, index=features.index)
        out["reasons"] = pd.Series([None] * len(out), index=out.index, dtype=object)
        for k in range(1, N_REASONS + 1):
            out[f"reason_{k}"] = pd.Series([None] * len(out), index=out.index, dtype=object)
            out[f"reason_{k}_logodds"] = np.nan
        out["counterfactual"] = pd.Series([None] * len(out), index=out.index, dtype=object)
        out["counterfactual_probability"] = np.nan
        at_risk = p >= self.threshold
        explained = {"all": np.ones(len(p), dtype=bool), "none": np.zeros(len(p), dtype=bool)}.get(self.reasons_for, at_risk)
        if explained.any():
            rows = features.loc[explained]
            names, values, texts = top_reasons(self.model.explain(rows), N_REASONS)
            where = out.index[explained]
            out.loc[where, "reasons"] = texts
            for k in range(names.shape[1]):
                out.loc[where, f"reason_{k + 1}"] = names[:, k]
                out.loc[where, f"reason_{k + 1}_logodds"] = values[:, k]
        actions = [a for a in self.actions() if a.column == PURCHASES or a.column in features.columns]
        if self.counterfactuals and at_risk.any() and not actions:
            out.loc[at_risk, "counterfactual"] = "none searched: no actionable feature is an input of this model"
        elif self.counterfactuals and at_risk.any():
            needed = [c for c in dict.fromkeys([*self.model.required_columns, *(a.column for a in actions),
                                                *(o for a in actions for o, _ in COUPLED.get(a.column, []))]) if c in features.columns]
            found = search(self.model.proba, features.loc[at_risk, needed], self.threshold, actions)
            out.loc[found.index, "counterfactual"] = found["counterfactual"].to_numpy()
            out.loc[found.index, "counterfactual_probability"] = found["counterfactual_probability"].to_numpy()
        out.index = index
        return out
