"""Nearest-neighbour search over customer vectors with FAISS: exact for small banks, HNSW tuned to a recall target for large.

Vectors are L2-normalised, so inner product is cosine similarity. Up to ``EXACT_MAX`` vectors the
index is an exact ``IndexFlatIP``. Above it, by default an ``IndexHNSWFlat`` (inner product, M 32,
efConstruction 80, vectors stored uncompressed: at 64 dims a million customers are 256 MB, plus
as much again for the graph) whose ``efSearch`` is raised step by step until recall@10 against
exact search on a sample of the bank's **own** vectors reaches ``recall_target`` (default 0.95).
``method="ivf"`` builds an ``IndexIVFFlat`` (about 4 sqrt(N) lists) tuned the same way on
``nprobe``. HNSW is the default because it is the faster of the two on the product's own
Customer2Vec vectors at 1M (23x exact search at recall@10 0.97, against IVF's 4.3x at 0.96:
``bench/embeddings_scale.py --from-bank``); on a clustered Gaussian mixture IVF is faster, which
is why the choice was measured on the product's vectors. The recall measured is kept with the
index, so what is served says how good it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_MAX = 200_000
INDEX_METHODS = ("hnsw", "ivf")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
RECALL_SAMPLE = 1_000
SEARCH_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
HNSW_MIN_EF = 16
TRAIN_PER_LIST = 40  # k-means training vectors per inverted list


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
    """A FAISS index over normalised vectors, the ids in index order, its kind, the recall@10 measured at build
    time and the search parameter tuned to reach it (``nprobe`` for IVF, ``efSearch`` for HNSW)."""

    index: object
    ids: np.ndarray
    kind: str
    recall_at_10: float
    search_parameter: int | None = None

    def __post_init__(self):
        self.tune(self.search_parameter)

    def tune(self, value: int | None) -> None:
        """Set the search parameter (a deserialised index gets it back this way)."""
        self.search_parameter = value
        if value is None:
            return
        if self.kind == "ivf":
            self.index.nprobe = int(value)
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = int(value)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine similarities, positions in ``ids``) of the ``k`` nearest vectors to each query."""
        return self.index.search(normalised(queries), k)

    def positions(self, customer_ids) -> np.ndarray:
        lookup = self.__dict__.get("_lookup")
        if lookup is None:  # built once per index
            lookup = self.__dict__["_lookup"] = {c: i for i, c in enumerate(self.ids)}
        missing = [c for c in customer_ids if c not in lookup]
        if missing:
            raise KeyError(f"customers not in the index: {', '.join(map(str, missing[:5]))}")
        return np.array([lookup[c] for c in customer_ids], dtype=np.int64)


def _tuned(index: VectorIndex, X: np.ndarray, recall_target: float, seed: int, steps) -> VectorIndex:
    """Raise the search parameter through ``steps`` until recall@10 against exact search on a sample reaches the target."""
    import faiss

    exact = faiss.IndexFlatIP(X.shape[1])
    exact.add(X)
    sample = X[np.random.default_rng(seed).choice(len(X), min(RECALL_SAMPLE, len(X)), replace=False)]
    _, truth = exact.search(sample, 10)
    for value in steps:
        index.tune(value)
        index.recall_at_10 = recall_at_k(index.search(sample, 10)[1], truth)
        if index.recall_at_10 >= recall_target:
            break
    return index


def build_index(vectors: np.ndarray, ids, *, recall_target: float = 0.95, exact_max: int = EXACT_MAX, method: str = "hnsw",
                seed: int = 0) -> VectorIndex:
    """The index for these vectors (exact up to ``exact_max`` rows, else ``method``, hnsw or ivf, tuned to ``recall_target``)."""
    import faiss

    if method not in INDEX_METHODS:
        raise ValueError(f"unknown index method {method!r}; choose hnsw or ivf")
    X = normalised(vectors)
    ids = np.asarray(ids)
    if len(X) <= exact_max:
        flat = faiss.IndexFlatIP(X.shape[1])
        flat.add(X)
        return VectorIndex(flat, ids, "flat", 1.0)
    if method == "hnsw":
        hnsw = faiss.IndexHNSWFlat(X.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(X)
        return _tuned(VectorIndex(hnsw, ids, "hnsw", 0.0), X, recall_target, seed, [s for s in SEARCH_STEPS if s >= HNSW_MIN_EF])
    nlist = int(min(max(4 * np.sqrt(len(X)), 16), len(X) // TRAIN_PER_LIST))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(X.shape[1]), X.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    train = X[np.sort(np.random.default_rng(seed).choice(len(X), min(len(X), TRAIN_PER_LIST * nlist), replace=False))]
    ivf.cp.seed = seed
    ivf.train(train)
    ivf.add(X)
    return _tuned(VectorIndex(ivf, ids, "ivf", 0.0), X, recall_target, seed, [s for s in SEARCH_STEPS if s <= nlist])


def similar_customers(index: VectorIndex, vectors: np.ndarray, customer_id, k: int = 10,
                      position_in_vectors: int | None = None) -> list[tuple[str, float]]:
    """The ``k`` most similar other customers to ``customer_id`` (id, cosine similarity), most similar first.

    ``vectors``: the indexed vectors (the customer's row found by its position in the index), or
    with ``position_in_vectors`` any array holding the customer's vector at that row.
    """
    position = int(index.positions([customer_id])[0])
    row = position if position_in_vectors is None else position_in_vectors
    scores, found = index.search(vectors[row:row + 1], k + 1)
    out = [(str(index.ids[j]), float(s)) for j, s in zip(found[0], scores[0]) if j >= 0 and j != position]
    return out[:k]
