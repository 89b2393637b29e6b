"""How good an embedding's neighbours are: on a label (synthetic personas) and on what customers do next (observable).

- ``neighbour_label_recall``: the share of each customer's ``k`` nearest neighbours (exact cosine,
  itself excluded) that share its label; random neighbours score the sum of squared label shares.
- ``next_top_category_accuracy``: predict a customer's top purchase category in the period after
  the as-of day as the most common one among its neighbours' (itself excluded), against the
  popularity baseline (the most common category of all). It needs no truth, only later
  transactions, so the product can choose between embeddings with it on a backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.embeddings.index import normalised
from customer_intel.engine import TableInput, session
from customer_intel.features.rfm import DAY, _transactions_view, as_of_day


def exact_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Positions of each row's ``k`` nearest other rows by exact cosine similarity (itself excluded); -1 pads a row
    with fewer than ``k`` others, and a zero vector (nothing known about the customer) has no neighbours (all -1)."""
    import faiss

    X = normalised(vectors)
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X)
    _, found = index.search(X, k + 1)
    out = np.full((len(X), k), -1, dtype=np.int64)
    for i, row in enumerate(found):  # drop the customer itself (usually first; a tie may put it later) and the padding
        others = row[(row != i) & (row >= 0)][:k]
        out[i, :len(others)] = others
    out[np.linalg.norm(X, axis=1) == 0] = -1
    return out


def neighbour_label_recall(vectors: np.ndarray, labels, k: int = 10) -> float:
    labels = np.asarray(labels)
    found = exact_neighbours(vectors, k)
    return float(((labels[np.maximum(found, 0)] == labels[:, None]) & (found >= 0)).sum() / max((found >= 0).sum(), 1))


def top_category_between(transactions: TableInput, start, end, con=None) -> pd.Series:
    """customer_id -> the category with the most purchases (amount >= 0) in the days (start, end] (ties: alphabetical)."""
    start, end = as_of_day(start), as_of_day(end)
    with session(con) as con:
        _transactions_view(con, transactions, "later", end=end + DAY, start=start + DAY)
        frame = con.execute("""
            SELECT customer_id, category FROM (
                SELECT customer_id, category, count(*) AS n FROM later WHERE amount >= 0 AND category IS NOT NULL GROUP BY ALL
            ) QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, category) = 1""").df()
    return frame.set_index("customer_id")["category"]


def neighbour_votes(neighbours: np.ndarray, target) -> np.ndarray:
    """Per row, the most common ``target`` among its neighbours' (rows of ``neighbours``: positions), ties to the first
    category alphabetically; None where no neighbour has one (neighbours without a target do not vote)."""
    target = pd.Series(np.asarray(target, dtype=object))
    codes = pd.Categorical(target.where(target.notna()))
    categories = np.asarray(codes.categories, dtype=object)
    own = np.asarray(codes.codes, dtype=np.int64)
    if not len(categories):
        return np.full(len(target), None, dtype=object)
    votes = np.where(neighbours >= 0, own[np.maximum(neighbours, 0)], -1)  # n x k, -1: no neighbour, or one without a target
    n, c = len(votes), len(categories)
    flat = (np.arange(n)[:, None] * c + votes)[votes >= 0]
    tally = np.bincount(flat, minlength=n * c).reshape(n, c)
    winner = np.where(tally.max(axis=1) > 0, tally.argmax(axis=1), -1)  # argmax takes the first (alphabetical) of a tie
    return np.where(winner >= 0, categories[np.maximum(winner, 0)], None).astype(object)


def vote_accuracy(votes: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """On the rows with a target: the share the votes get right, the share the most common target gets right
    (popularity; ties alphabetical) and how many rows that is (NaN shares without any)."""
    known = pd.notna(target)
    if not known.any():
        return {"neighbours": float("nan"), "popularity": float("nan"), "customers": 0}
    popular = pd.Series(target[known]).mode().sort_values().iloc[0]
    return {"neighbours": float((votes[known] == target[known]).mean()), "popularity": float((target[known] == popular).mean()),
            "customers": int(known.sum())}


def next_top_category_accuracy(vectors: np.ndarray, customer_ids, next_top: pd.Series, k: int = 10) -> dict[str, float]:
    """Accuracy of the neighbours' majority next-period top category, and of the popularity baseline, on the customers
    with a next-period purchase (neighbours without one do not vote)."""
    target = next_top.reindex(pd.Index(np.asarray(customer_ids).astype(str))).to_numpy(dtype=object)
    return vote_accuracy(neighbour_votes(exact_neighbours(vectors, k), target), target)
