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


@dataclass(frozen=True, eq=False)
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

    # eq=False: equal only to itself. pandas keeps a concat's attrs when every part's are equal, and
    # the bags of different rows must not survive a concat (nor compare arrays element-wise).

    def __deepcopy__(self, memo) -> TokenBags:
        # immutable by contract (frozen, arrays never written): pandas deep-copies a frame's attrs on every operation
        return self

    def take(self, customer_ids) -> TokenBags:
        """The bags of ``customer_ids``, in that order (an empty bag for a customer without one)."""
        ids = np.asarray(pd.Series(customer_ids).astype(str).to_numpy(dtype=object))
        if len(ids) == len(self.customer_ids) and np.array_equal(ids, self.customer_ids):
            return self  # the same customers in the same order (the day's features and their bags): nothing to move
        position = pd.Index(self.customer_ids).get_indexer(ids)
        lengths = np.where(position >= 0, np.diff(self.indptr)[np.maximum(position, 0)], 0).astype(np.int64)
        indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        # the source offset of every kept token: its bag's start plus its place in the bag
        starts = np.repeat(self.indptr[np.maximum(position, 0)], lengths)
        offset = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        source = starts + offset
        return TokenBags(ids.astype(str), indptr, self.tokens[source], self.counts[source], self.vocabulary, self.as_of)

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
        # one scan: the five token kinds as grouping sets over integer-coded purchases; strings only on the aggregates
        con.execute(f"""CREATE OR REPLACE TEMP TABLE bag AS
            WITH lagged AS (
                SELECT customer_id, e, amount, category, channel, lag(e) OVER (PARTITION BY customer_id ORDER BY e DESC) - e AS gap_back
                FROM tx WHERE amount >= 0
            ), p AS (
                SELECT customer_id, coalesce(category, 'none') AS category, coalesce(channel, 'none') AS channel,
                       {_bucket_sql('amount', AMOUNT_EDGES)} AS amt, {_bucket_sql('gap_back', GAP_EDGES)} AS gap,
                       gap_back IS NULL AS first_purchase  -- the first purchase has no gap (its bucket is not one)
                FROM lagged
            ), g AS (  -- GROUPING bits (category, channel, amt, gap): 1 = aggregated away
                SELECT customer_id, category, channel, amt, gap, first_purchase, GROUPING(category, channel, amt, gap) AS kind, count(*) AS n
                FROM p
                GROUP BY GROUPING SETS ((customer_id, category), (customer_id, channel), (customer_id, category, channel),
                                        (customer_id, amt), (customer_id, gap, first_purchase))
            )
            SELECT customer_id, CASE kind WHEN {0b0111} THEN 'cat=' || category WHEN {0b1011} THEN 'ch=' || channel
                                          WHEN {0b0011} THEN 'cat_ch=' || category || '|' || channel
                                          WHEN {0b1101} THEN 'amt=' || CAST(amt AS VARCHAR) ELSE 'gap=' || CAST(gap AS VARCHAR) END AS token,
                   CAST(n AS BIGINT) AS n
            FROM g WHERE kind <> {0b1110} OR NOT first_purchase""")
        con.execute("CREATE OR REPLACE TEMP TABLE vocab AS SELECT token, CAST(row_number() OVER (ORDER BY token) - 1 AS BIGINT) AS id "
                    "FROM (SELECT DISTINCT token FROM bag)")
        vocabulary = tuple(r[0] for r in con.execute("SELECT token FROM vocab ORDER BY id").fetchall())
        rows = con.execute("SELECT v.id, b.n FROM bag b JOIN vocab v USING (token) ORDER BY b.customer_id, v.id").fetchnumpy()
        owners = con.execute("SELECT customer_id, count(*) AS k FROM bag GROUP BY customer_id ORDER BY customer_id").fetchnumpy()
    customers = np.asarray(owners["customer_id"], dtype=object).astype(str)
    indptr = np.r_[0, np.cumsum(np.asarray(owners["k"], dtype=np.int64))].astype(np.int64)
    return TokenBags(customers, indptr, np.asarray(rows["id"], dtype=np.int64), np.asarray(rows["n"], dtype=np.int64), vocabulary, day0)
