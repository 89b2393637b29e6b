"""The embeddings' index at bank scale: build time, queries/second and recall@10 at 1M customers x 64 dims.

    .venv/bin/python bench/embeddings_scale.py [--customers 1000000] [--dim 64] [--queries 2000]
    .venv/bin/python bench/embeddings_scale.py --from-bank 200000     # the product's own Customer2Vec vectors

In one run, on the same vectors and the same queries (customers of the index itself, as the
lookalike and similar-customer look-ups are):

- **chosen**: ``customer_intel.embeddings.index.build_index`` as the product calls it at this size
  (HNSW above 200k vectors, ``efSearch`` raised until recall@10 against exact search on a sample of
  these vectors reaches 0.95), timed from the vectors to a tuned index;
- **ivf**: the same function with ``method="ivf"`` (IVF-Flat, ``nprobe`` tuned the same way), the
  other approximate index the product can build;
- **exact**: FAISS ``IndexFlatIP`` over the same normalised vectors (what the index is judged against);
- **sklearn**: scikit-learn's brute-force ``NearestNeighbors(metric="cosine")``, 2 jobs (on fewer
  queries: it is slow).

Prints build seconds, queries/second, recall@10 against exact, and the speed ratios. Vectors: by
default a 64-dim Gaussian mixture shaped like the product's (200 groups, the spread inside a
group comparable to that between groups), or with ``--from-bank N`` the product's own vectors: the
synthetic bank of N customers, Customer2Vec trained on a 20k sample and inferred for everyone.
Numbers live here, not in the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def mixture(n: int, dim: int, seed: int = 0, groups: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 200_000):  # in chunks: a 1M x 64 float64 draw would double the memory
        stop = min(start + 200_000, n)
        out[start:stop] = centres[rng.integers(0, groups, stop - start)] + rng.normal(size=(stop - start, dim)).astype(np.float32)
    return out


def bank_vectors(n: int, dim: int, seed: int = 42) -> np.ndarray:
    """The product's own vectors: Customer2Vec on a 20k sample of an n-customer bank, inferred for every customer."""
    import pyarrow.compute as pc

    from customer_intel.embeddings.customer2vec import Customer2VecConfig, train_customer2vec
    from customer_intel.embeddings.tokens import TokenBags, token_bags
    from customer_intel.synthetic import generate_bank

    tx = generate_bank(n_customers=n, seed=seed).transactions
    bags = token_bags(tx, pc.max(tx.column("ts")).as_py())
    rows = np.sort(np.random.default_rng(seed).choice(len(bags), min(20_000, len(bags)), replace=False))
    lengths = np.diff(bags.indptr)[rows]
    pick = np.concatenate([np.arange(bags.indptr[i], bags.indptr[i + 1]) for i in rows])
    sample = TokenBags(bags.customer_ids[rows], np.r_[0, np.cumsum(lengths)], bags.tokens[pick], bags.counts[pick], bags.vocabulary, bags.as_of)
    model = train_customer2vec(sample, Customer2VecConfig(dim=dim), log=lambda _: None)
    return model.infer(bags)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--sklearn-queries", type=int, default=200)
    parser.add_argument("--from-bank", type=int, default=None, help="use the product's vectors from a synthetic bank of this many customers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ivf", action="store_true", help="leave out the IVF row")
    parser.add_argument("--vectors", default=None, help="an .npy file of vectors: reuse it (and with --from-bank, write it first if missing)")
    args = parser.parse_args(argv)

    import faiss
    from sklearn.neighbors import NearestNeighbors

    from customer_intel.embeddings.index import build_index, normalised, recall_at_k

    threads = faiss.omp_get_max_threads()
    if args.vectors and Path(args.vectors).is_file():
        vectors = np.load(args.vectors)
        source = f"{len(vectors):,} vectors from {args.vectors}"
    elif args.from_bank:
        vectors, seconds = _timed(lambda: bank_vectors(args.from_bank, args.dim))
        source = f"Customer2Vec vectors of a {args.from_bank:,}-customer synthetic bank ({seconds:.0f} s to make)"
        if args.vectors:
            np.save(args.vectors, vectors)
    else:
        vectors = mixture(args.customers, args.dim, args.seed)
        source = f"a {args.dim}-dim Gaussian mixture of {args.customers:,} vectors"
    n = len(vectors)
    queries_at = np.random.default_rng(args.seed + 1).choice(n, args.queries, replace=False)
    print(f"{source}; {args.queries:,} queries; FAISS threads {threads}, cores {os.cpu_count()}")

    X = normalised(vectors)
    queries = X[queries_at]
    exact = faiss.IndexFlatIP(X.shape[1])
    _, exact_build = _timed(lambda: exact.add(X))
    exact.search(queries[:20], 10)  # every index is warmed up (threads, pages) by a few queries before it is timed
    (_, truth), exact_seconds = _timed(lambda: exact.search(queries, 10))

    chosen, chosen_build = _timed(lambda: build_index(vectors, np.arange(n), seed=args.seed))
    chosen.search(queries[:20], 10)
    (_, found), chosen_seconds = _timed(lambda: chosen.search(queries, 10))
    other, other_build = _timed(lambda: build_index(vectors, np.arange(n), method="ivf", seed=args.seed)) if not args.skip_ivf else (None, 0)
    if other is not None:
        other.search(queries[:20], 10)
        (_, other_found), other_seconds = _timed(lambda: other.search(queries, 10))

    brute = NearestNeighbors(n_neighbors=10, algorithm="brute", metric="cosine", n_jobs=2)
    _, sklearn_build = _timed(lambda: brute.fit(X))
    few = min(args.sklearn_queries, args.queries)
    (_, sk_found), sklearn_seconds = _timed(lambda: brute.kneighbors(queries[:few]))

    def label(index):
        parameter = {"ivf": f"nlist {getattr(index.index, 'nlist', '?')}, nprobe", "hnsw": "efSearch"}.get(index.kind)
        return index.kind + (f" ({parameter} {index.search_parameter})" if parameter else "")

    rows = [
        ("chosen: " + label(chosen), chosen_build, args.queries / chosen_seconds, recall_at_k(found, truth)),
        ("exact: faiss IndexFlatIP", exact_build, args.queries / exact_seconds, 1.0),
        ("sklearn brute NearestNeighbors", sklearn_build, few / sklearn_seconds, recall_at_k(sk_found, truth[:few])),
    ]
    if other is not None:
        rows.append(("method=ivf: " + label(other), other_build, args.queries / other_seconds, recall_at_k(other_found, truth)))
    print(f"{'index':42s} {'build s':>9s} {'queries/s':>11s} {'recall@10':>10s}")
    for name, build, qps, recall in rows:
        print(f"{name:42s} {build:9.1f} {qps:11,.0f} {recall:10.3f}")
    print(f"chosen vs exact: {rows[0][2] / rows[1][2]:.1f}x queries/s at recall@10 {rows[0][3]:.3f} "
          f"(target >= 10x at >= 0.95; the build's own recall sample said {chosen.recall_at_10:.3f})")
    if other is not None:
        print(f"ivf vs exact: {rows[3][2] / rows[1][2]:.1f}x queries/s at recall@10 {rows[3][3]:.3f}, build {other_build:.0f} s")
    print(f"chosen vs sklearn brute: {rows[0][2] / rows[2][2]:.0f}x queries/s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")


if __name__ == "__main__":
    main()
