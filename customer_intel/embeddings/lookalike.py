"""Lookalike audiences: the customers most similar to a seed list, and the seed queries marketing asks for.

A customer's score is its cosine similarity to the **closest** seed (the best of several seed
personas counts, not their average, which would blur two kinds of customer into one that is
neither). It is computed exactly: an exact inner-product index over the seeds' vectors (a few
hundred to a few thousand rows) searched by every other customer for its nearest seed, i.e.
N x S dot products, seconds at 1M customers and 1,000 seeds on 2 cores. Seeds are never in the
audience, and customers without a vector (no purchase yet, no features) never are either.

Seed queries (``seed_customers``):

- ``campaign``: the best responders of a past campaign: treated customers who converted, the
  ``seed_size`` with the highest response revenue first when the campaign has revenue;
- ``segment``: the ``seed_size`` customers with the highest CLTV in a named segment of the day's
  ``scored_customers``;
- ``ids``: an explicit list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.embeddings.index import normalised

AUDIENCE_COLUMNS = ("customer_id", "rank", "similarity", "closest_seed", "seed_query")


class LookalikeInputError(ValueError):
    """The seed query cannot be answered (unknown campaign or segment, no seed with a vector, nothing to rank)."""


@dataclass(frozen=True)
class SeedQuery:
    """Exactly one of ``campaign``, ``segment`` or ``ids``; ``seed_size``: at most this many seeds (best first)."""

    campaign: str | None = None
    segment: str | None = None
    ids: tuple[str, ...] | None = None
    seed_size: int = 500

    def __post_init__(self):
        given = [name for name in ("campaign", "segment", "ids") if getattr(self, name)]
        if len(given) != 1:
            raise LookalikeInputError(f"a lookalike seed query names exactly one of campaign, segment or ids; got {given or 'none'}")
        if self.seed_size < 1:
            raise LookalikeInputError(f"seed_size must be at least 1; got {self.seed_size}")

    def describe(self) -> str:
        if self.campaign:
            return f"campaign {self.campaign} best responders (top {self.seed_size})"
        if self.segment:
            return f"segment {self.segment} top CLTV (top {self.seed_size})"
        return f"{len(self.ids)} listed customers"


def seed_customers(query: SeedQuery, campaigns: pd.DataFrame | None = None, scored: pd.DataFrame | None = None) -> list[str]:
    """The seed customer ids of ``query`` (``campaigns``: normalised campaign rows; ``scored``: the day's scored_customers)."""
    if query.ids:
        return list(dict.fromkeys(str(i) for i in query.ids))
    if query.campaign:
        if campaigns is None or not len(campaigns):
            raise LookalikeInputError(f"seed campaign {query.campaign!r}: there is no campaign table")
        rows = campaigns.loc[campaigns["campaign_id"].astype(str) == str(query.campaign)]
        if not len(rows):
            known = ", ".join(sorted(campaigns["campaign_id"].astype(str).unique())[:10])
            raise LookalikeInputError(f"seed campaign {query.campaign!r} is not in raw_campaigns (campaigns: {known})")
        best = rows.loc[(rows["treated"] == 1) & (rows["converted"] == 1)]
        if not len(best):
            raise LookalikeInputError(f"campaign {query.campaign!r} has no treated customer who converted: no best responders to seed")
        if "revenue" in best.columns and best["revenue"].notna().any():
            best = best.sort_values(["revenue", "customer_id"], ascending=[False, True])
        else:  # no revenue: a stable order, whatever the file's
            best = best.sort_values("customer_id")
        return list(dict.fromkeys(best["customer_id"].astype(str)))[:query.seed_size]
    if scored is None or "segment_name" not in scored.columns or scored["segment_name"].isna().all():
        raise LookalikeInputError(f"seed segment {query.segment!r}: the day's scored_customers has no segments (no segmentation champion)")
    rows = scored.loc[scored["segment_name"] == query.segment]
    if not len(rows):
        known = ", ".join(map(str, sorted(scored["segment_name"].dropna().unique())))
        raise LookalikeInputError(f"seed segment {query.segment!r} is not among the day's segments ({known})")
    order = rows.sort_values(["cltv", "customer_id"], ascending=[False, True]) if "cltv" in rows and rows["cltv"].notna().any() else rows
    return order["customer_id"].astype(str).head(query.seed_size).tolist()


def lookalike_audience(vectors: np.ndarray, customer_ids, seeds, k: int, exclude=()) -> pd.DataFrame:
    """The ``k`` non-seed customers most similar to their closest seed (``AUDIENCE_COLUMNS`` without ``seed_query``).

    ``vectors``: one row per customer of ``customer_ids`` (zero rows: no vector, never chosen);
    ``exclude``: more ids never to choose (e.g. already contacted). Fewer than ``k`` rows when fewer
    customers qualify.
    """
    import faiss

    if k < 1:
        raise LookalikeInputError(f"k must be at least 1; got {k}")
    ids = np.asarray(customer_ids).astype(str)
    X = normalised(vectors)
    has_vector = np.linalg.norm(X, axis=1) > 0
    position = {c: i for i, c in enumerate(ids)}
    seed_ids = list(dict.fromkeys(str(s) for s in seeds))
    seed_rows = [position[s] for s in seed_ids if s in position and has_vector[position[s]]]
    if not seed_rows:
        raise LookalikeInputError(f"none of the {len(seed_ids)} seeds has a vector today (e.g. {', '.join(seed_ids[:3])}): nothing to look like")
    barred = set(seed_ids) | {str(e) for e in exclude}
    pool = np.flatnonzero(has_vector & ~np.isin(ids, list(barred)))
    if not len(pool):
        raise LookalikeInputError("every customer with a vector is a seed or excluded: nobody to choose")
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X[seed_rows])
    similarity, nearest = index.search(X[pool], 1)
    order = np.lexsort((ids[pool], -similarity[:, 0]))[:k]  # most similar first; ties by id, so the list is stable
    return pd.DataFrame({"customer_id": ids[pool][order], "rank": np.arange(1, len(order) + 1),
                         "similarity": similarity[order, 0].astype(float),
                         "closest_seed": ids[np.asarray(seed_rows)[nearest[order, 0]]]})
