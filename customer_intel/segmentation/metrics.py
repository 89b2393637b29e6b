"""Segmentation metrics, all in the one standardised input space (never a model's own latent space).

Silhouette (on a fixed seeded sample for large N, the same rows for every candidate so per-row
values pair up), Calinski-Harabasz, Davies-Bouldin, the number of segments, the largest and
smallest segment shares, and stability: the mean pairwise adjusted Rand index of the segments
that refits on subsamples of the training customers give the *same* held-out customers.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_samples

SILHOUETTE_SAMPLE = 5000


def silhouette_rows(n: int, seed: int = 0, sample: int = SILHOUETTE_SAMPLE) -> np.ndarray:
    """The rows the silhouette is computed on: all of them, or a seeded sample (sorted)."""
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


def per_row_silhouette(X: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Silhouette of each sampled row (0 where fewer than two segments: no structure)."""
    labels = np.asarray(labels)
    if len(np.unique(labels[rows])) < 2:
        return np.zeros(len(rows))
    return silhouette_samples(X[rows], labels[rows])


def input_space_metrics(X: np.ndarray, labels: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """Every input-space metric of one assignment of the rows of ``X``."""
    labels = np.asarray(labels)
    rows = silhouette_rows(len(labels)) if rows is None else rows
    k = len(np.unique(labels))
    shares = np.bincount(labels - labels.min()) / max(len(labels), 1) if len(labels) else np.array([1.0])
    shares = shares[shares > 0]
    multi = k >= 2
    return {
        "silhouette": float(per_row_silhouette(X, labels, rows).mean()) if multi else float("nan"),
        "calinski_harabasz": float(calinski_harabasz_score(X, labels)) if multi else float("nan"),
        "davies_bouldin": float(davies_bouldin_score(X, labels)) if multi else float("nan"),
        "n_segments": int(k),
        "largest_share": float(shares.max()),
        "smallest_share": float(shares.min()),
    }


def stability(assignments: list[np.ndarray]) -> float:
    """Mean pairwise adjusted Rand index of several assignments of the same customers (1 = identical partitions)."""
    if len(assignments) < 2:
        return float("nan")
    return float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(assignments, 2)]))


def persona_ari(truth, labels) -> float:
    """Adjusted Rand index against known personas (synthetic data only: the generator's truth)."""
    return float(adjusted_rand_score(np.asarray(truth), np.asarray(labels)))
