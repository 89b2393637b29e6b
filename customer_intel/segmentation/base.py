"""What every segmentation method looks like to the comparison: an sklearn-style clusterer on a
standardised input matrix that assigns *new* customers at scoring time.

``fit(X)`` learns from the training rows; ``predict(X)`` gives every row a segment ``0..k-1``
(never -1: a density method's noise points go to the nearest segment, and ``is_noise(X)`` flags
them); ``transform(X)`` is each row's distance to every segment's centre in the input space (the
published ``segment_distance`` is the assigned one). ``latent(X)``, for a method with its own
embedding (DEC, ClusterGAN), is that embedding: its silhouette is reported in its own clearly
labelled column and never mixed into the input-space metrics.

Pure numpy / scikit-learn / PyTorch: no Dagster here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Clusterer(Protocol):
    name: str
    kind: str  # "centroid", "mixture", "density", "graph", "som", "deep" (simplest first: the rule's tie order)
    n_clusters_: int  # segments after fit (a density method: the clusters it found)

    def fit(self, X: np.ndarray) -> Clusterer: ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Segment 0..n_clusters_-1 for every row (int64)."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_clusters_) Euclidean distances to each segment's centre in the input space."""

    def info(self) -> dict[str, Any]:
        """Hyperparameters and what the fit chose (k, curves, epochs run), flat scalars or lists, for the tracker."""


def centres_of(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each segment's rows (a segment without rows gets the overall mean)."""
    X = np.asarray(X, dtype=float)
    centres = np.tile(X.mean(axis=0), (k, 1))
    for j in range(k):
        rows = labels == j
        if rows.any():
            centres[j] = X[rows].mean(axis=0)
    return centres


def distances_to(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(rows, k) Euclidean distances (closed form, clipped at 0 against rounding)."""
    X = np.asarray(X, dtype=float)
    sq = (X * X).sum(axis=1)[:, None] - 2 * X @ centres.T + (centres * centres).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 from the largest segment down (noise -1 kept): deterministic ids for a seed."""
    labels = np.asarray(labels)
    kept = labels[labels >= 0]
    if kept.size == 0:
        return labels.astype(np.int64)
    values, counts = np.unique(kept, return_counts=True)
    order = values[np.lexsort((values, -counts))]
    lookup = np.full(int(values.max()) + 1, -1, dtype=np.int64)
    lookup[order] = np.arange(len(order))
    return np.where(labels >= 0, lookup[np.maximum(labels, 0)], -1).astype(np.int64)
