"""Nearest-neighbour search over customer vectors with FAISS: exact for small banks, HNSW tuned to a recall target for large.

Vectors are L2-normalised, so inner product is cosine similarity. Up to ``EXACT_MAX`` vectors the
index is an exact ``IndexFlatIP``. Above it, an ``IndexHNSWFlat`` (inner-product metric) whose
``efSearch`` is raised from ``EF_START`` until recall@10 against exact search on a sample of the
bank's **own** vectors reaches ``recall_target`` (default 0.95); the recall measured is kept with
the index, so what is served says how good it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_MAX = 200_000
HNSW_M = 32
EF_START, EF_MAX = 32, 1024
RECALL_SAMPLE = 1_000


def normalised(vectors: np.ndarray) -> np.ndarray:
    import faiss

    out = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).copy())
    faiss.normalize_L2(out)
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's exact top-k that the approximate search returned in its top-k."""
    hits = [len(set(f[:k]) & set(e[:k])) for f, e in zip(found, exact)]
    return float(np.mean(hits) / k)


@dataclass
class VectorIndex:
    """A FAISS index over normalised vectors, the ids in index order, its kind and the recall@10 measured at build time."""

    index: object
    ids: np.ndarray
    kind: str
    recall_at_10: float
    ef_search: int | None = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine similarities, positions in ``ids``) of the ``k`` nearest vectors to each query."""
        return self.index.search(normalised(queries), k)

    def positions(self, customer_ids) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.ids)}
        missing = [c for c in customer_ids if c not in lookup]
        if missing:
            raise KeyError(f"customers not in the index: {', '.join(map(str, missing[:5]))}")
        return np.array([lookup[c] for c in customer_ids], dtype=np.int64)


def build_index(vectors: np.ndarray, ids, *, recall_target: float = 0.95, exact_max: int = EXACT_MAX, seed: int = 0) -> VectorIndex:
    """The index for these vectors (exact up to ``exact_max`` rows, else HNSW tuned to ``recall_target``)."""
    import faiss

    X = normalised(vectors)
    ids = np.asarray(ids)
    if len(X) <= exact_max:
        flat = faiss.IndexFlatIP(X.shape[1])
        flat.add(X)
        return VectorIndex(flat, ids, "flat", 1.0)
    hnsw = faiss.IndexHNSWFlat(X.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(X)
    exact = faiss.IndexFlatIP(X.shape[1])
    exact.add(X)
    sample = X[np.random.default_rng(seed).choice(len(X), min(RECALL_SAMPLE, len(X)), replace=False)]
    _, truth = exact.search(sample, 10)
    ef, recall = EF_START, 0.0
    while ef <= EF_MAX:
        hnsw.hnsw.efSearch = ef
        _, found = hnsw.search(sample, 10)
        recall = recall_at_k(found, truth)
        if recall >= recall_target:
            break
        ef *= 2
    return VectorIndex(hnsw, ids, "hnsw", recall, min(ef, EF_MAX))


def similar_customers(index: VectorIndex, vectors: np.ndarray, customer_id, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` most similar other customers to ``customer_id`` (id, cosine similarity), most similar first."""
    position = int(index.positions([customer_id])[0])
    scores, found = index.search(vectors[position:position + 1], k + 1)
    out = [(str(index.ids[j]), float(s)) for j, s in zip(found[0], scores[0]) if j >= 0 and j != position]
    return out[:k]
