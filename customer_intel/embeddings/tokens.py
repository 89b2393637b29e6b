"""Token bags of each customer's transaction history as of a date, from the engine the features use.

A purchase (amount >= 0) on or before the as-of day becomes the tokens ``cat=<category>``,
``ch=<channel>``, ``amt=<bucket>`` (log-spaced amount buckets), ``cat_ch=<category>|<channel>``
and, from the second purchase on, ``gap=<bucket>`` (days since the customer's previous purchase).
PV-DBOW ignores order within a document, so what the model needs is the count of each token per
customer: one DuckDB query over the transactions where they lie (a Parquet file at bank scale),
through the feature builder's own transactions view, so "as of" means exactly what it means there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.engine import TableInput, session
from customer_intel.features.rfm import DAY, _transactions_view, as_of_day

AMOUNT_EDGES = (5.0, 15.0, 30.0, 60.0, 120.0, 250.0, 500.0)  # amt=0 below 5 ... amt=7 from 500
GAP_EDGES = (1, 3, 7, 14, 30, 60, 120)  # days since the previous purchase: gap=0 same day ... gap=7 from 120


@dataclass(frozen=True)
class TokenBags:
    """Per customer, token ids and counts (CSR-like: ``indptr`` into ``tokens``/``counts``), over ``vocabulary``."""

    customer_ids: np.ndarray
    indptr: np.ndarray
    tokens: np.ndarray
    counts: np.ndarray
    vocabulary: tuple[str, ...]
    as_of: pd.Timestamp

    def __len__(self) -> int:
        return len(self.customer_ids)

    def bag(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.tokens[self.indptr[i]:self.indptr[i + 1]], self.counts[self.indptr[i]:self.indptr[i + 1]]

    def sizes(self) -> np.ndarray:
        """Token occurrences per customer."""
        totals = np.r_[0, np.cumsum(self.counts)]
        return (totals[self.indptr[1:]] - totals[self.indptr[:-1]]).astype(np.int64)

    def restricted(self, vocabulary: tuple[str, ...]) -> TokenBags:
        """The same bags over another vocabulary (a trained model's); unknown tokens are dropped."""
        index = {t: j for j, t in enumerate(vocabulary)}
        mapping = np.array([index.get(t, -1) for t in self.vocabulary], dtype=np.int64)
        new = mapping[self.tokens]
        keep = new >= 0
        owner = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        lengths = np.bincount(owner[keep], minlength=len(self)).astype(np.int64)
        return TokenBags(self.customer_ids, np.r_[0, np.cumsum(lengths)], new[keep], self.counts[keep], tuple(vocabulary), self.as_of)


def _bucket_sql(column: str, edges) -> str:
    cases = " ".join(f"WHEN {column} < {edge} THEN {i}" for i, edge in enumerate(edges))
    return f"CASE {cases} ELSE {len(edges)} END"


def token_bags(transactions: TableInput, as_of, con=None, only=None) -> TokenBags:
    """Every customer with a purchase on or before ``as_of`` (or those of them in ``only``, a sequence of
    ids: e.g. a scoring shard's customers): their token counts (see the module docstring)."""
    day0 = as_of_day(as_of)
    with session(con) as con:
        who = "TRUE"
        if only is not None:
            con.register("only_ids", pd.DataFrame({"customer_id": pd.Series(only, dtype="string").to_numpy(dtype=object)}))
            who = "CAST(customer_id AS VARCHAR) IN (SELECT customer_id FROM only_ids)"
        _transactions_view(con, transactions, "tx", end=day0 + DAY, customers=who)
        frame = con.execute(f"""
            WITH p AS (
                SELECT customer_id, e, amount, coalesce(category, 'none') AS category, coalesce(channel, 'none') AS channel,
                       lag(e) OVER (PARTITION BY customer_id ORDER BY e DESC) - e AS gap_back
                FROM tx WHERE amount >= 0
            ), toks AS (
                SELECT customer_id, 'cat=' || category AS token FROM p
                UNION ALL SELECT customer_id, 'ch=' || channel FROM p
                UNION ALL SELECT customer_id, 'cat_ch=' || category || '|' || channel FROM p
                UNION ALL SELECT customer_id, 'amt=' || CAST({_bucket_sql('amount', AMOUNT_EDGES)} AS VARCHAR) FROM p
                UNION ALL SELECT customer_id, 'gap=' || CAST({_bucket_sql('gap_back', GAP_EDGES)} AS VARCHAR) FROM p
                    WHERE gap_back IS NOT NULL
            )
            SELECT customer_id, token, count(*)::INTEGER AS n FROM toks GROUP BY ALL ORDER BY customer_id, token
        """).df()
    vocabulary = tuple(sorted(frame["token"].unique()))
    token_id = pd.Categorical(frame["token"], categories=vocabulary).codes.astype(np.int64)
    customers, starts = np.unique(frame["customer_id"].to_numpy(dtype=object), return_index=True)
    order = np.argsort(starts)
    customers, starts = customers[order], starts[order]
    return TokenBags(customers.astype(str), np.r_[starts, len(frame)].astype(np.int64), token_id, frame["n"].to_numpy(dtype=np.int64),
                     vocabulary, day0)
