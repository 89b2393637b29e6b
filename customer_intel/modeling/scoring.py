"""A family's daily scores: its champion's output for every customer, or nulls with the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.modeling.family import ModelFamily
from customer_intel.modeling.scorer import Scorer


def prefixed_column(prefix: str, column: str) -> str:
    """``<prefix>_<column>``; a column named after the prefix keeps its name (CLTV's ``cltv``)."""
    return prefix if column == prefix else f"{prefix}_{column}"


def model_column(family: ModelFamily) -> str:
    """The column naming the model that scored a row (``cltv_model``, ``segment_model``)."""
    return f"{family.prefix}_model"


def score_columns(family: ModelFamily) -> list[str]:
    """The family's columns in ``scored_customers``: its scorer's outputs, the horizon (if it has one) and the model label."""
    horizon = [f"{family.prefix}_horizon_days"] if family.has_horizon else []
    return [*(prefixed_column(family.prefix, c) for c in family.score_columns), *horizon, model_column(family)]


def daily_scores(family: ModelFamily, features: pd.DataFrame, scorer: Scorer | None = None, label: str | None = None) -> pd.DataFrame:
    """``customer_id`` plus ``score_columns(family)`` for every row of ``features``, in order.

    Without a scorer (no champion yet, or a family that does not apply) every score column is
    null: the join into ``scored_customers`` never fails for a missing family. Columns a scorer
    returns beyond the family's (e.g. uplift's one column per offer) follow the family's own,
    prefixed the same way, before the horizon and the model label.
    """
    out = pd.DataFrame({"customer_id": features["customer_id"].reset_index(drop=True)})
    names = score_columns(family)
    if scorer is None:
        for name in names[:-1]:
            out[name] = np.nan
        out[names[-1]] = pd.Series([None] * len(out), dtype=object)
        return out
    scores = scorer.score(features)
    missing = [c for c in family.score_columns if c not in scores.columns]
    if missing:
        raise ValueError(f"the {family.name} scorer did not return {', '.join(missing)}")
    for column in family.score_columns:
        out[prefixed_column(family.prefix, column)] = scores[column].to_numpy()
    for column in (c for c in scores.columns if c not in family.score_columns):
        out[prefixed_column(family.prefix, column)] = scores[column].to_numpy()
    if family.has_horizon:
        horizon = getattr(scorer.info, "horizon_days", None) if hasattr(scorer, "info") else getattr(scorer, "horizon_days", None)
        out[f"{family.prefix}_horizon_days"] = horizon if horizon is not None else np.nan
    out[model_column(family)] = label
    return out
