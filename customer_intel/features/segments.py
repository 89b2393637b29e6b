"""RFM quintile scores and the named RFM segments marketers know.

Scores are 1-5 by percentile rank within the population scored together (ties share a score).
Segments follow the widely used recency x frequency grid; "Lost" splits the bottom corner
out of "Hibernating".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (name, recency scores, frequency scores); the first matching rule wins
SEGMENT_RULES: tuple[tuple[str, frozenset[int], frozenset[int]], ...] = (
    ("Champions", frozenset({5}), frozenset({4, 5})),
    ("Loyal", frozenset({3, 4}), frozenset({4, 5})),
    ("Potential Loyalist", frozenset({4, 5}), frozenset({2, 3})),
    ("New Customers", frozenset({5}), frozenset({1})),
    ("Promising", frozenset({4}), frozenset({1})),
    ("Need Attention", frozenset({3}), frozenset({3})),
    ("About To Sleep", frozenset({3}), frozenset({1, 2})),
    ("Can't Lose Them", frozenset({1, 2}), frozenset({5})),
    ("At Risk", frozenset({1, 2}), frozenset({3, 4})),
    ("Lost", frozenset({1}), frozenset({1})),
    ("Hibernating", frozenset({1, 2}), frozenset({1, 2})),
)
SEGMENT_NAMES: tuple[str, ...] = tuple(rule[0] for rule in SEGMENT_RULES)


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """1-5 score from the average percentile rank; equal values always share a score."""
    pct = values.rank(pct=True, method="average", ascending=higher_is_better)
    return np.clip(np.ceil(pct * 5), 1, 5).astype("int64")


def segment_name(r_score: np.ndarray, f_score: np.ndarray) -> np.ndarray:
    """Segment for each (R, F) pair of 1-5 scores."""
    names = np.empty(len(r_score), dtype=object)
    unassigned = np.ones(len(r_score), dtype=bool)
    for name, rs, fs in SEGMENT_RULES:
        hit = unassigned & np.isin(r_score, list(rs)) & np.isin(f_score, list(fs))
        names[hit] = name
        unassigned &= ~hit
    if unassigned.any():  # the grid covers all 25 cells; this guards edits to the table
        raise ValueError(f"RFM grid leaves (R, F) pairs unnamed: {set(zip(r_score[unassigned], f_score[unassigned]))}")
    return names


def add_rfm_scores(features: pd.DataFrame, recency_lower_is_better: bool = True) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score``, ``rfm_score`` ("545") and ``rfm_segment``."""
    out = features.copy()
    out["r_score"] = quintile_score(out["recency"], higher_is_better=not recency_lower_is_better)
    out["f_score"] = quintile_score(out["frequency"])
    out["m_score"] = quintile_score(out["monetary"])
    out["rfm_score"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    out["rfm_segment"] = pd.array(segment_name(out["r_score"].to_numpy(), out["f_score"].to_numpy()), dtype="string")
    return out
