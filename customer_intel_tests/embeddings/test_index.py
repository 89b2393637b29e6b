"""The vector index: exact search finds a customer itself first; HNSW (the default above the exact size) and IVF reach their
recall target on clustered vectors."""

import faiss
import numpy as np
import pytest

from customer_intel.embeddings.index import VectorIndex, build_index, recall_at_k, similar_customers


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    return (centres[rng.integers(0, 20, n)] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)


def test_a_customers_nearest_neighbour_in_the_exact_index_is_itself():
    vectors = _clustered(2_000)
    ids = np.array([f"C{i:05d}" for i in range(len(vectors))])
    index = build_index(vectors, ids)
    assert index.kind == "flat" and index.recall_at_10 == 1.0
    _, found = index.search(vectors[:100], 1)
    assert (found[:, 0] == np.arange(100)).all()
    similar = similar_customers(index, vectors, "C00007", k=5)
    assert len(similar) == 5 and "C00007" not in [c for c, _ in similar]
    assert [s for _, s in similar] == sorted((s for _, s in similar), reverse=True)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_the_large_bank_index_is_tuned_to_the_recall_target_against_exact_search(method):
    vectors = _clustered(30_000, seed=1)
    index = build_index(vectors, np.arange(len(vectors)), exact_max=10_000, recall_target=0.95, method=method)
    assert index.kind == method and index.recall_at_10 >= 0.95 and index.search_parameter is not None
    exact = build_index(vectors, np.arange(len(vectors)))
    queries = vectors[np.random.default_rng(2).choice(len(vectors), 300, replace=False)]
    assert recall_at_k(index.search(queries, 10)[1], exact.search(queries, 10)[1]) >= 0.93  # queries it was not tuned on
    # a deserialised index (as the registered scorer holds it) gets its tuned nprobe or efSearch back from VectorIndex, whatever
    # the bytes held, and searches the same
    raw = faiss.deserialize_index(faiss.serialize_index(index.index))
    if method == "ivf":
        raw.nprobe = 1
    else:
        raw.hnsw.efSearch = 1
    restored = VectorIndex(raw, index.ids, method, index.recall_at_10, index.search_parameter)
    np.testing.assert_array_equal(restored.search(queries, 10)[1], index.search(queries, 10)[1])


def test_above_the_exact_size_the_default_index_is_hnsw():
    assert build_index(_clustered(3_000), np.arange(3_000), exact_max=1_000).kind == "hnsw"


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown index method 'pq'; choose hnsw or ivf"):
        build_index(_clustered(500), np.arange(500), exact_max=100, method="pq")
