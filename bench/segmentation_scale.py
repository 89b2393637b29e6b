"""Segmentation at bank scale: fit and assignment of K-Means, the Gaussian mixture and HDBSCAN-on-a-sample at 1M customers.

    .venv/bin/python bench/segmentation_scale.py [--customers 1000000] [--k 5] [--data bench/.data]

Generates (or reuses, under ``--data``) the synthetic bank, builds the behaviour input space from
the one feature builder as of the last data day, then times, on the same matrix in the same run:

- **product**: the candidate classes the nightly path uses (``KMeansSegments``,
  ``GaussianMixtureSegments`` at a fixed k, ``HDBSCANSegments`` fitted on its 5,000-row sample),
  fit on every customer (HDBSCAN: on its sample) and assigning every customer;
- **bare**: the plain scikit-learn estimator with the same settings (``KMeans``,
  ``GaussianMixture``; for HDBSCAN one bare fit on the same sample with the setting the product's
  search chose, plus a 1-nearest-neighbour assignment), so the ratio is the product's overhead
  (for HDBSCAN that includes trying its six density settings and the noise limits).

Prints seconds per step and the product / bare ratio. Numbers live here, not in the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", default=str(ROOT / "bench" / ".data"))
    args = parser.parse_args(argv)

    from features_scale import AS_OF, _generate
    from sklearn.cluster import HDBSCAN, KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import NearestNeighbors

    from customer_intel.features import build_customer_features
    from customer_intel.segmentation.classic import GaussianMixtureSegments, HDBSCANSegments, KMeansSegments
    from customer_intel.segmentation.space import InputSpace

    bank = _generate(args.customers, Path(args.data), args.seed)
    features, seconds = _timed(lambda: build_customer_features(str(bank / "raw" / "transactions.parquet"),
                                                               str(bank / "raw" / "customers.parquet"), AS_OF).frame)
    space = InputSpace.fit(features, "behaviour")
    X = space.transform(features)
    print(f"{len(X):,} customers x {X.shape[1]} behaviour columns (features in {seconds:.1f} s)\n")
    print("| method | product fit (s) | product assign (s) | bare fit (s) | bare assign (s) | product / bare |")
    print("|---|---:|---:|---:|---:|---:|")

    def row(name, product_fit, product_assign, bare_fit, bare_assign):
        total_p, total_b = product_fit + product_assign, bare_fit + bare_assign
        print(f"| {name} | {product_fit:.1f} | {product_assign:.1f} | {bare_fit:.1f} | {bare_assign:.1f} | {total_p / total_b:.2f}x |", flush=True)

    model, fit_p = _timed(lambda: KMeansSegments(k=args.k, seed=args.seed).fit(X))
    _, assign_p = _timed(lambda: model.predict(X))
    bare, fit_b = _timed(lambda: KMeans(args.k, n_init=10, random_state=args.seed).fit(X))
    _, assign_b = _timed(lambda: bare.predict(X))
    row("K-Means", fit_p, assign_p, fit_b, assign_b)

    model, fit_p = _timed(lambda: GaussianMixtureSegments(k=args.k, seed=args.seed).fit(X))
    _, assign_p = _timed(lambda: model.predict(X))
    bare, fit_b = _timed(lambda: GaussianMixture(args.k, covariance_type="full", n_init=model.n_init, random_state=args.seed).fit(X))
    _, assign_b = _timed(lambda: bare.predict(X))
    row("Gaussian mixture", fit_p, assign_p, fit_b, assign_b)

    model, fit_p = _timed(lambda: HDBSCANSegments(seed=args.seed).fit(X))
    _, assign_p = _timed(lambda: model.predict(X))
    sample = np.sort(np.random.default_rng(args.seed).choice(len(X), size=model.max_fit_rows, replace=False))

    def bare_hdbscan():
        labels = HDBSCAN(min_cluster_size=model.min_cluster_size_, min_samples=model.min_samples_,
                         cluster_selection_method=model.cluster_selection_method_).fit_predict(X[sample])
        return labels, NearestNeighbors(n_neighbors=1).fit(X[sample][labels >= 0])
    (labels, nn), fit_b = _timed(bare_hdbscan)
    _, assign_b = _timed(lambda: nn.kneighbors(X, return_distance=False))
    row(f"HDBSCAN on {model.max_fit_rows:,} rows", fit_p, assign_p, fit_b, assign_b)


if __name__ == "__main__":
    main()
