"""The five classical segmentation methods, each a ``Clusterer`` (see ``base``) on the standardised input space.

- ``KMeansSegments`` (centroid): K-Means for every k of ``k_range``, k by the highest silhouette;
  the inertia curve's elbow (kneedle) is reported only.
- ``GaussianMixtureSegments`` (mixture): a Gaussian mixture for every k, k by the lowest BIC.
- ``HDBSCANSegments`` (density): scikit-learn's HDBSCAN on a seeded subsample; its noise is reported
  (``noise_share_``, ``is_noise``) and every row still goes to the nearest cluster's nearest member.
- ``SpectralSegments`` (graph): spectral clustering of a k-nearest-neighbour graph on a seeded
  subsample, k by silhouette there; new rows by a distance-weighted 15-nearest-neighbour vote.
- ``SOMSegments`` (som): a MiniSom map, then K-Means over its codebook, k by the silhouette of the
  customers' assignments (customer -> best-matching unit -> codebook cluster).

Segment ids are renumbered from the largest segment down after every fit (``relabel_by_size``) and
``predict`` applies the same mapping, so ids are deterministic for a seed; ``predict`` never
returns -1. Inputs are already standardised: nothing is scaled here. Every silhouette is on a
seeded sample of at most ``silhouette_sample`` rows (the same rows for every k), computed with
one pass of chunked distances for all k at once.

Measured fit times with the defaults, 15,000 rows x 20 columns (eight Gaussian groups of unequal
spread, four skewed columns, standardised; at two degrees of overlap), 2 CPU cores, scikit-learn 1.6.1, two runs:
K-Means (k 3..8, n_init 10, silhouette on 5,000 rows) 1.0-1.6 s; Gaussian mixture (k 3..8, full,
n_init 2) 1.1-1.8 s; HDBSCAN (5,000-row subsample) 0.9-1.1 s; spectral (2,000-row subsample,
k 3..8) 0.4-0.45 s; SOM (10 x 10, 30,000 updates, k 3..8) 1.4-1.5 s. Assigning 200,000 rows
(predict + transform): K-Means 0.07 s, mixture 0.4 s, SOM 0.7 s, spectral 1.3 s, HDBSCAN 2.8 s
(with ``is_noise``); all scale linearly in rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import HDBSCAN, KMeans, SpectralClustering
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors, kneighbors_graph
from threadpoolctl import threadpool_limits

from customer_intel.segmentation.base import centres_of, distances_to, relabel_by_size

CHUNK = 100_000  # rows per block when assigning many rows to a codebook or centres (bounded memory at 1M rows)


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------


def _matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of standardised features; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("the input matrix has NaN or infinite values; the input space must impute and clip first")
    return X


def _k_values(k_range: tuple[int, int], k: int | None, n_rows: int) -> list[int]:
    """The k to try: ``k`` alone when fixed, else ``k_range`` (inclusive) without the k a silhouette cannot score (k >= rows)."""
    if k is not None:
        if not 2 <= int(k) <= n_rows:
            raise ValueError(f"k = {k} needs 2 <= k <= rows ({n_rows})")
        return [int(k)]
    lo, hi = int(k_range[0]), int(k_range[1])
    if not 2 <= lo <= hi:
        raise ValueError(f"the k range must satisfy 2 <= k_min <= k_max; got {tuple(k_range)}")
    ks = [k for k in range(lo, hi + 1) if k < n_rows]
    if not ks:
        raise ValueError(f"{n_rows} rows are too few for any k in {tuple(k_range)}")
    return ks


def _sample_rows(n: int, size: int | None, seed: int) -> np.ndarray:
    """All rows, or a seeded sample of ``size`` of them (sorted)."""
    if size is None or n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(size), replace=False))


def _size_lookup(raw: np.ndarray, n_raw: int) -> np.ndarray:
    """raw id -> segment id by size (``relabel_by_size``); a raw id without rows (or noise) maps to -1."""
    raw = np.asarray(raw, dtype=np.int64)
    new = relabel_by_size(raw)
    lookup = np.full(n_raw, -1, dtype=np.int64)
    kept = raw >= 0
    lookup[raw[kept]] = new[kept]
    return lookup


def _raw_in_order(lookup: np.ndarray) -> np.ndarray:
    """The raw ids that have a segment, in segment order (the inverse of ``_size_lookup``)."""
    present = np.flatnonzero(lookup >= 0)
    return present[np.argsort(lookup[present])]


def _nearest(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (or codebook vector) of every row, in chunks of ``CHUNK`` rows."""
    out = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), CHUNK):
        out[start:start + CHUNK] = distances_to(X[start:start + CHUNK], centres).argmin(axis=1)
    return out


def silhouettes(X: np.ndarray, label_sets: list[np.ndarray], chunk: int = 512) -> list[float]:
    """Mean silhouette of each labelling of the rows of ``X`` (Euclidean), all from one pass of chunked distances.

    Same definition as ``sklearn.metrics.silhouette_score``: a row alone in its segment scores 0;
    a labelling with fewer than two segments gives NaN. Memory: ``chunk`` x rows distances at a time.
    """
    X = np.asarray(X, dtype=float)
    n = len(X)
    dense = [np.unique(np.asarray(labels), return_inverse=True)[1].astype(np.int64) for labels in label_sets]
    widths = [int(d.max()) + 1 if n else 0 for d in dense]
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    onehot = np.zeros((n, int(offsets[-1])))
    for d, off in zip(dense, offsets[:-1]):
        onehot[np.arange(n), off + d] = 1.0
    sums = np.empty_like(onehot)  # sum of distances from each row to each segment's rows
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        D = distances_to(X[start:stop], X)
        D[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sums[start:stop] = D @ onehot
    scores = []
    rows = np.arange(n)
    for d, width, off in zip(dense, widths, offsets[:-1]):
        if width < 2:
            scores.append(float("nan"))
            continue
        s = sums[:, off:off + width]
        counts = np.bincount(d, minlength=width).astype(float)
        own = counts[d]
        a = s[rows, d] / np.maximum(own - 1, 1)
        other = s / counts[None, :]
        other[rows, d] = np.inf
        b = other.min(axis=1)
        denom = np.maximum(a, b)
        value = np.divide(b - a, denom, out=np.zeros(n), where=denom > 0)
        value[own <= 1] = 0.0
        scores.append(float(value.mean()))
    return scores


def kneedle_k(ks: list[int], curve: list[float]) -> int:
    """The elbow of a decreasing curve: the k farthest below the chord from its first to its last point
    (both axes scaled to [0, 1]; the maximum-distance-to-chord rule). Fewer than three points: the first k."""
    if len(ks) < 3:
        return int(ks[0])
    x = np.asarray(ks, dtype=float)
    y = np.asarray(curve, dtype=float)
    x = (x - x[0]) / (x[-1] - x[0])
    span = y[0] - y[-1]
    if not np.isfinite(span) or span <= 0:
        return int(ks[0])
    y = (y - y[-1]) / span  # 1 at the first k, 0 at the last
    chord = 1.0 - x
    return int(ks[int(np.argmax(chord - y))])


def _best(scores: list[float]) -> int:
    """Index of the highest score (the first on ties; 0 when none is finite)."""
    values = np.asarray(scores, dtype=float)
    return int(np.nanargmax(values)) if np.isfinite(values).any() else 0


def _rounded(values) -> list[float]:
    return [float(f"{float(v):.6g}") for v in values]


class _CentredMixin:
    """``transform`` as Euclidean distances to ``centres_`` (k x columns, in segment order)."""

    centres_: np.ndarray | None = None

    def _check_fitted(self) -> None:
        if getattr(self, "centres_", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_clusters_) Euclidean distances to each segment's centre in the input space."""
        self._check_fitted()
        return distances_to(_matrix(X), self.centres_)


# ----------------------------------------------------------------------------------------------
# K-Means
# ----------------------------------------------------------------------------------------------


@dataclass
class KMeansSegments(_CentredMixin):
    """K-Means (scikit-learn, k-means++ with ``n_init`` restarts) for every k in ``k_range`` (or ``k`` alone),
    k by the highest silhouette on a seeded sample of at most ``silhouette_sample`` rows.

    ``info()`` keeps the curves (``k_values``, ``inertia_by_k``, ``silhouette_by_k``, aligned lists),
    ``k_chosen`` and ``elbow_k``: the kneedle elbow of the inertia curve, reported only (never used
    to choose). ``predict``: the nearest centre.
    """

    k_range: tuple[int, int] = (3, 8)
    k: int | None = None
    n_init: int = 10
    seed: int = 0
    silhouette_sample: int = 5000
    name: str = field(default="kmeans", init=False)
    kind: str = field(default="centroid", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def fit(self, X: np.ndarray) -> KMeansSegments:
        X = _matrix(X)
        ks = _k_values(self.k_range, self.k, len(X))
        models = [KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed).fit(X) for k in ks]
        rows = _sample_rows(len(X), self.silhouette_sample, self.seed)
        sil = silhouettes(X[rows], [m.labels_[rows] for m in models])
        best = _best(sil)
        model = models[best]
        lookup = _size_lookup(model.labels_, ks[best])
        self.centres_ = model.cluster_centers_[_raw_in_order(lookup)]
        self.n_clusters_ = len(self.centres_)
        self.k_values_, self.k_chosen_ = ks, ks[best]
        self.inertia_by_k_ = _rounded(m.inertia_ for m in models)
        self.silhouette_by_k_ = _rounded(sil)
        self.elbow_k_ = kneedle_k(ks, [m.inertia_ for m in models])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The nearest centre's segment, 0..n_clusters_-1, for every row (int64)."""
        self._check_fitted()
        return _nearest(_matrix(X), self.centres_)

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "k_range": list(self.k_range), "k": self.k, "n_init": self.n_init, "seed": self.seed,
               "silhouette_sample": self.silhouette_sample}
        if self.centres_ is not None:
            out.update(k_chosen=self.k_chosen_, n_clusters=self.n_clusters_, k_values=list(self.k_values_),
                       inertia_by_k=self.inertia_by_k_, silhouette_by_k=self.silhouette_by_k_, elbow_k=self.elbow_k_)
        return out


# ----------------------------------------------------------------------------------------------
# Gaussian mixture
# ----------------------------------------------------------------------------------------------


@dataclass
class GaussianMixtureSegments(_CentredMixin):
    """A Gaussian mixture (scikit-learn, ``covariance_type``, ``n_init`` EM restarts) for every k in ``k_range``
    (or ``k`` alone), k by the lowest BIC on the fit rows (``bic_by_k`` kept).

    ``predict``: the component of highest posterior; a component that wins no fit row is dropped
    (so ``n_clusters_`` can be below ``k_chosen``, both in ``info()``). Centres, for ``transform``,
    are the component means. EM runs with single-threaded BLAS (``threadpool_limits``): its matrices
    are small (columns x columns) and two OpenBLAS pools (numpy's, scipy's) next to OpenMP cost more
    than they give (measured 5.1 s against 1.8 s at 15,000 x 20 on 2 cores).
    """

    k_range: tuple[int, int] = (3, 8)
    k: int | None = None
    covariance_type: str = "full"
    n_init: int = 2
    seed: int = 0
    max_iter: int = 200
    reg_covar: float = 1e-6
    name: str = field(default="gmm", init=False)
    kind: str = field(default="mixture", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def fit(self, X: np.ndarray) -> GaussianMixtureSegments:
        X = _matrix(X)
        ks = _k_values(self.k_range, self.k, len(X))
        models, bic = [], []
        with threadpool_limits(limits=1, user_api="blas"):
            for k in ks:
                gm = GaussianMixture(n_components=k, covariance_type=self.covariance_type, n_init=self.n_init, max_iter=self.max_iter,
                                     reg_covar=self.reg_covar, random_state=self.seed).fit(X)
                models.append(gm)
                bic.append(float(gm.bic(X)))
            best = int(np.argmin(bic))
            self.model_ = models[best]
            self.lookup_ = _size_lookup(self.model_.predict(X), ks[best])
        self.components_ = _raw_in_order(self.lookup_)  # the mixture's components in segment order
        self.centres_ = self.model_.means_[self.components_]
        self.n_clusters_ = len(self.components_)
        self.k_values_, self.k_chosen_, self.bic_by_k_ = ks, ks[best], _rounded(bic)
        self.converged_ = bool(self.model_.converged_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(rows, n_clusters_) posteriors of the kept components, renormalised, in segment order."""
        self._check_fitted()
        p = self.model_.predict_proba(_matrix(X))[:, self.components_]
        total = p.sum(axis=1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The segment of highest posterior, 0..n_clusters_-1, for every row (int64)."""
        self._check_fitted()
        X = _matrix(X)
        if not len(X):
            return np.zeros(0, dtype=np.int64)
        with threadpool_limits(limits=1, user_api="blas"):
            if len(self.components_) == self.model_.n_components:  # every component kept: the mixture's own argmax, renumbered
                return self.lookup_[self.model_.predict(X)]
            out = np.empty(len(X), dtype=np.int64)
            for start in range(0, len(X), CHUNK):  # log weight + log density of the kept components only (no underflow far out)
                log_prob = self.model_._estimate_weighted_log_prob(X[start:start + CHUNK])[:, self.components_]
                out[start:start + CHUNK] = log_prob.argmax(axis=1)
        return out

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "k_range": list(self.k_range), "k": self.k, "covariance_type": self.covariance_type,
               "n_init": self.n_init, "seed": self.seed, "max_iter": self.max_iter, "reg_covar": self.reg_covar}
        if self.centres_ is not None:
            out.update(k_chosen=self.k_chosen_, n_clusters=self.n_clusters_, k_values=list(self.k_values_), bic_by_k=self.bic_by_k_,
                       converged=self.converged_)
        return out


# ----------------------------------------------------------------------------------------------
# HDBSCAN
# ----------------------------------------------------------------------------------------------


@dataclass
class HDBSCANSegments(_CentredMixin):
    """HDBSCAN (``sklearn.cluster.HDBSCAN``) on a seeded subsample of at most ``max_fit_rows`` rows.

    ``min_cluster_size`` (None): ``max(min_cluster_floor, ceil(min_cluster_share x fit rows))``,
    i.e. max(25, 2% of the fit rows), capped at half the fit rows so a small fit can still find two.
    ``noise_share_``: share of the fit rows HDBSCAN labelled noise (-1), also in ``info()``.

    ``min_samples`` and ``cluster_selection_method`` left at None are searched on the training rows:
    every pair of ``SEARCH_MIN_SAMPLES`` x ``SEARCH_METHODS`` is fitted, and the setting kept is the
    one whose assignment of the fit rows (noise to the nearest member) has the highest silhouette,
    among settings whose number of clusters lies in ``k_range`` (any with two or more when none
    does). Every tried setting is in ``settings_tried_`` (and, as one line, ``info()["settings_tried"]``). Measured on the synthetic bank's
    behaviour space (``python -m customer_intel.segmentation.compare``): scikit-learn's defaults
    label 72-87% of the customers noise and at 360 training customers find no cluster at all;
    ``min_samples=10`` finds four with 75% noise and a higher member silhouette (0.455 vs 0.379 at
    15,000). Set both to fix the setting (no search).

    ``predict`` gives every row, noise included, the segment of its nearest *member* (a fit row
    HDBSCAN clustered; 1-nearest-neighbour, ``NearestNeighbors``). ``is_noise(X)``: the distance to
    that nearest member exceeds its cluster's ``noise_quantile`` (0.99) quantile of member-to-nearest-
    other-member distances (measured to the nearest member, not to a centre). Centres, for
    ``transform``, are the means of each cluster's members. No setting with two clusters: ``ValueError``.
    """

    SEARCH_MIN_SAMPLES = (None, 10, 5)  # None: HDBSCAN's own default (= min_cluster_size)
    SEARCH_METHODS = ("eom", "leaf")

    min_cluster_size: int | None = None
    min_samples: int | None = None
    max_fit_rows: int = 5000
    seed: int = 0
    min_cluster_share: float = 0.02
    min_cluster_floor: int = 25
    cluster_selection_method: str | None = None
    noise_quantile: float = 0.99
    k_range: tuple[int, int] = (3, 8)
    silhouette_sample: int = 2000
    name: str = field(default="hdbscan", init=False)
    kind: str = field(default="density", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)
    noise_share_: float = field(default=float("nan"), init=False, repr=False)

    def _resolved_min_cluster_size(self, n: int) -> int:
        if self.min_cluster_size is not None:
            return int(self.min_cluster_size)
        size = max(int(self.min_cluster_floor), math.ceil(self.min_cluster_share * n))
        return max(2, min(size, n // 2))

    def _settings(self) -> list[tuple[int | None, str]]:
        samples = self.SEARCH_MIN_SAMPLES if self.min_samples is None else (self.min_samples,)
        methods = self.SEARCH_METHODS if self.cluster_selection_method is None else (self.cluster_selection_method,)
        return [(m, method) for method in methods for m in samples]

    def fit(self, X: np.ndarray) -> HDBSCANSegments:
        X = _matrix(X)
        rows = _sample_rows(len(X), self.max_fit_rows, self.seed)
        Xf = X[rows]
        mcs = self._resolved_min_cluster_size(len(Xf))
        if len(Xf) < 2 * max(mcs, 2):
            raise ValueError(f"HDBSCAN: {len(Xf)} fit rows are too few for two clusters of min_cluster_size {mcs}")
        scored = _sample_rows(len(Xf), self.silhouette_sample, self.seed)
        tried, best = [], None
        for min_samples, method in self._settings():
            raw = HDBSCAN(min_cluster_size=mcs, min_samples=min_samples, cluster_selection_method=method, copy=True).fit_predict(Xf)
            found = int(raw.max()) + 1
            entry = {"min_samples": min_samples, "method": method, "clusters": found, "noise_share": round(float(np.mean(raw < 0)), 4),
                     "silhouette": float("nan")}
            if found >= 2:
                members = raw >= 0
                nearest = NearestNeighbors(n_neighbors=1).fit(Xf[members]).kneighbors(Xf[scored])[1][:, 0]
                entry["silhouette"] = round(silhouettes(Xf[scored], [raw[members][nearest]])[0], 4)
                in_range = self.k_range[0] <= found <= self.k_range[1]
                key = (in_range, entry["silhouette"])
                if best is None or key > best[0]:
                    best = (key, raw, entry)
            tried.append(entry)
        self.settings_tried_ = tried
        if best is None:
            noise = min(e["noise_share"] for e in tried)
            raise ValueError(f"HDBSCAN found fewer than two clusters in {len(Xf)} fit rows with every setting tried "
                             f"(min_cluster_size {mcs}, min_samples {[e['min_samples'] for e in tried]}, least noise {noise:.1%}): "
                             "a density segmentation needs at least two")
        _, raw, chosen = best
        found = chosen["clusters"]
        labels = relabel_by_size(raw)
        members = labels >= 0
        self.member_points_, self.member_labels_ = Xf[members], labels[members]
        self.n_clusters_ = found
        self.noise_share_ = float(np.mean(raw < 0))
        self.min_cluster_size_, self.fit_rows_ = mcs, len(Xf)
        self.min_samples_, self.cluster_selection_method_ = chosen["min_samples"], chosen["method"]
        self.centres_ = centres_of(self.member_points_, self.member_labels_, found)
        self.sizes_ = np.bincount(self.member_labels_, minlength=found)
        limits = np.empty(found)
        for j in range(found):
            pts = self.member_points_[self.member_labels_ == j]
            gap = NearestNeighbors(n_neighbors=2).fit(pts).kneighbors(pts)[0][:, 1]
            limits[j] = float(np.quantile(gap, self.noise_quantile))
        self.noise_distance_ = limits
        self.neighbours_ = NearestNeighbors(n_neighbors=1).fit(self.member_points_)
        return self

    def _nearest_member(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        X = _matrix(X)
        if not len(X):
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        distance, index = self.neighbours_.kneighbors(X)
        return distance[:, 0], self.member_labels_[index[:, 0]].astype(np.int64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The nearest member's segment, 0..n_clusters_-1, for every row (noise points included; int64)."""
        return self._nearest_member(X)[1]

    def is_noise(self, X: np.ndarray) -> np.ndarray:
        """True where a row's distance to its nearest member exceeds that cluster's ``noise_quantile`` member gap."""
        distance, labels = self._nearest_member(X)
        return distance > self.noise_distance_[labels]

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "min_cluster_size": self.min_cluster_size, "min_samples": self.min_samples,
               "max_fit_rows": self.max_fit_rows, "seed": self.seed, "min_cluster_share": self.min_cluster_share,
               "min_cluster_floor": self.min_cluster_floor, "cluster_selection_method": self.cluster_selection_method,
               "noise_quantile": self.noise_quantile, "k_range": list(self.k_range)}
        if self.centres_ is not None:
            out.update(n_clusters=self.n_clusters_, noise_share=self.noise_share_, min_cluster_size_used=self.min_cluster_size_,
                       fit_rows=self.fit_rows_, cluster_sizes=[int(s) for s in self.sizes_], min_samples_used=self.min_samples_,
                       cluster_selection_method_used=self.cluster_selection_method_,
                       settings_tried="; ".join(f"min_samples={t['min_samples']}/{t['method']}: {t['clusters']} clusters, "
                                                 f"noise {t['noise_share']:.2f}, silhouette {t['silhouette']:.3f}" for t in self.settings_tried_))
        return out


# ----------------------------------------------------------------------------------------------
# Spectral
# ----------------------------------------------------------------------------------------------


@dataclass
class SpectralSegments(_CentredMixin):
    """Spectral clustering (``sklearn.cluster.SpectralClustering``) of a seeded subsample of at most
    ``max_fit_rows`` rows, on its symmetrised ``n_neighbors`` nearest-neighbour graph (built once and
    passed to every k as a precomputed affinity, which is what ``affinity="nearest_neighbors"`` builds),
    k over ``k_range`` (or ``k`` alone) by the highest silhouette on the subsample.

    New rows: a distance-weighted ``n_neighbors``-nearest-neighbour vote (``KNeighborsClassifier``,
    deterministic; a subsample row gets its own label). Centres, for ``transform``, are the means of
    the subsample's members. ``graph_components`` in ``info()``: connected components of the graph
    (more than one: the spectral embedding sees them as separate, which well-separated groups are).
    ``eigen_solver="lobpcg"`` (seeded): ARPACK's shift-invert mixes the eigenvectors of a repeated zero
    eigenvalue, i.e. of a graph of several components (measured on four separate blobs: ARI 0.64 at
    k = 4 against 1.0 with LOBPCG), and LOBPCG is also the faster here.
    """

    k_range: tuple[int, int] = (3, 8)
    k: int | None = None
    max_fit_rows: int = 2000
    affinity: str = "nearest_neighbors"
    n_neighbors: int = 15
    eigen_solver: str = "lobpcg"
    assign_labels: str = "kmeans"
    seed: int = 0
    name: str = field(default="spectral", init=False)
    kind: str = field(default="graph", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def fit(self, X: np.ndarray) -> SpectralSegments:
        X = _matrix(X)
        rows = _sample_rows(len(X), self.max_fit_rows, self.seed)
        Xf = X[rows]
        ks = _k_values(self.k_range, self.k, len(Xf))
        neighbours = max(1, min(self.n_neighbors, len(Xf) - 1))
        if self.affinity == "nearest_neighbors":
            graph = kneighbors_graph(Xf, n_neighbors=neighbours, include_self=True)
            affinity = 0.5 * (graph + graph.T)
            self.graph_components_ = int(connected_components(affinity, directed=False)[0])
            params = {"affinity": "precomputed"}
        else:
            affinity, self.graph_components_ = Xf, -1
            params = {"affinity": self.affinity, "n_neighbors": neighbours}
        fits = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")  # recorded as graph_components
            warnings.filterwarnings("ignore", message=r"Exited (at iteration|postprocessing)")  # LOBPCG a hair short of its tolerance
            for k in ks:
                model = SpectralClustering(n_clusters=k, eigen_solver=self.eigen_solver, assign_labels=self.assign_labels,
                                           random_state=self.seed, **params)
                fits.append(np.asarray(model.fit_predict(affinity), dtype=np.int64))
        sil = silhouettes(Xf, fits)
        best = _best(sil)
        labels = relabel_by_size(fits[best])
        self.n_clusters_ = int(labels.max()) + 1
        self.centres_ = centres_of(Xf, labels, self.n_clusters_)
        self.classifier_ = KNeighborsClassifier(n_neighbors=min(self.n_neighbors, len(Xf)), weights="distance").fit(Xf, labels)
        self.k_values_, self.k_chosen_, self.silhouette_by_k_, self.fit_rows_ = ks, ks[best], _rounded(sil), len(Xf)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The neighbours' vote, 0..n_clusters_-1, for every row (int64)."""
        self._check_fitted()
        X = _matrix(X)
        if not len(X):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.classifier_.predict(X), dtype=np.int64)

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "k_range": list(self.k_range), "k": self.k, "max_fit_rows": self.max_fit_rows,
               "affinity": self.affinity, "n_neighbors": self.n_neighbors, "eigen_solver": self.eigen_solver, "assign_labels": self.assign_labels, "seed": self.seed}
        if self.centres_ is not None:
            out.update(k_chosen=self.k_chosen_, n_clusters=self.n_clusters_, k_values=list(self.k_values_),
                       silhouette_by_k=self.silhouette_by_k_, fit_rows=self.fit_rows_, graph_components=self.graph_components_)
        return out


# ----------------------------------------------------------------------------------------------
# Self-organising map
# ----------------------------------------------------------------------------------------------


@dataclass
class SOMSegments(_CentredMixin):
    """A two-level self-organising map: a MiniSom map, then K-Means over its codebook vectors.

    The map: ``grid`` nodes (10 x 10; ``None``: sized from the fit rows by the 5 x sqrt(rows) nodes
    rule, a square of side ceil(sqrt(5 sqrt(rows))), at least 4 x 4 and at most 30 x 30), Gaussian
    neighbourhood of initial radius ``sigma`` (None: a quarter of the longer side, at least 1),
    ``learning_rate``, both decaying asymptotically, PCA initialisation (deterministic).
    ``iterations`` single-sample updates (None: min(20 x rows, 300 x nodes)), the samples taken in a
    seeded permutation of the rows (cycled), so the row order of the input does not matter.

    The second level: K-Means (``n_init`` restarts) over the codebook, each node weighted by its
    hits (the fit rows it is best-matching unit of) when ``weight_by_hits``, for every k in
    ``k_range`` (or ``k`` alone); k by the highest silhouette of the *customers'* assignments
    (customer -> best-matching unit -> the node's cluster) on a seeded sample of at most
    ``silhouette_sample`` rows. A codebook cluster that no fit row reaches is merged into the
    nearest segment. ``predict``: the cluster of the row's best-matching unit (vectorised distances
    to the codebook, in chunks). Centres, for ``transform``, are the means of the member customers.
    """

    grid: tuple[int, int] | None = (10, 10)
    sigma: float | None = None
    learning_rate: float = 0.5
    iterations: int | None = None
    k_range: tuple[int, int] = (3, 8)
    k: int | None = None
    n_init: int = 10
    weight_by_hits: bool = True
    silhouette_sample: int = 5000
    seed: int = 0
    name: str = field(default="som", init=False)
    kind: str = field(default="som", init=False)
    n_clusters_: int = field(default=0, init=False, repr=False)

    def _grid(self, n: int) -> tuple[int, int]:
        if self.grid is not None:
            return int(self.grid[0]), int(self.grid[1])
        side = min(30, max(4, math.ceil(math.sqrt(5 * math.sqrt(n)))))
        return side, side

    def fit(self, X: np.ndarray) -> SOMSegments:
        from minisom import MiniSom

        X = _matrix(X)
        if X.shape[1] < 2:
            raise ValueError("the SOM's PCA initialisation needs at least two input columns")
        gx, gy = self._grid(len(X))
        nodes = gx * gy
        sigma = float(self.sigma) if self.sigma is not None else max(1.0, max(gx, gy) / 4)
        iterations = int(self.iterations) if self.iterations is not None else int(min(20 * len(X), 300 * nodes))
        som = MiniSom(gx, gy, X.shape[1], sigma=sigma, learning_rate=self.learning_rate, neighborhood_function="gaussian",
                      random_seed=self.seed)
        som.pca_weights_init(X)
        order = np.random.default_rng(self.seed).permutation(len(X))[:iterations]
        som.train(X[order], iterations, random_order=False)
        codebook = som.get_weights().reshape(nodes, X.shape[1]).copy()
        bmu = _nearest(X, codebook)
        hits = np.bincount(bmu, minlength=nodes)
        weights = hits.astype(float) if self.weight_by_hits else np.ones(nodes)
        ks = _k_values(self.k_range, self.k, min(len(X), int((weights > 0).sum())))
        node_labels = [KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed).fit(codebook, sample_weight=weights).labels_
                       for k in ks]
        rows = _sample_rows(len(X), self.silhouette_sample, self.seed)
        sil = silhouettes(X[rows], [nl[bmu[rows]] for nl in node_labels])
        best = _best(sil)
        raw_nodes = node_labels[best]
        lookup = _size_lookup(raw_nodes[bmu], ks[best])
        labels = lookup[raw_nodes[bmu]]
        self.n_clusters_ = int(labels.max()) + 1
        self.centres_ = centres_of(X, labels, self.n_clusters_)
        node_segment = lookup[raw_nodes]
        orphans = node_segment < 0  # nodes of a codebook cluster no fit row reaches: the nearest segment's centre
        if orphans.any():
            node_segment[orphans] = _nearest(codebook[orphans], self.centres_)
        self.codebook_, self.node_segment_, self.hits_ = codebook, node_segment, hits
        self.grid_, self.sigma_, self.iterations_ = (gx, gy), sigma, iterations
        self.k_values_, self.k_chosen_, self.silhouette_by_k_ = ks, ks[best], _rounded(sil)
        self.quantization_error_ = float(np.mean(np.sqrt(((X[rows] - codebook[bmu[rows]]) ** 2).sum(axis=1))))
        return self

    def bmu(self, X: np.ndarray) -> np.ndarray:
        """Flat index (row-major over the grid) of each row's best-matching unit."""
        self._check_fitted()
        return _nearest(_matrix(X), self.codebook_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The segment of each row's best-matching unit, 0..n_clusters_-1 (int64)."""
        return self.node_segment_[self.bmu(X)]

    def info(self) -> dict[str, Any]:
        out = {"method": self.name, "grid": None if self.grid is None else list(self.grid), "sigma": self.sigma,
               "learning_rate": self.learning_rate, "iterations": self.iterations, "k_range": list(self.k_range), "k": self.k,
               "n_init": self.n_init, "weight_by_hits": self.weight_by_hits, "silhouette_sample": self.silhouette_sample, "seed": self.seed}
        if self.centres_ is not None:
            out.update(k_chosen=self.k_chosen_, n_clusters=self.n_clusters_, k_values=list(self.k_values_),
                       silhouette_by_k=self.silhouette_by_k_, grid_used=list(self.grid_), sigma_used=self.sigma_,
                       iterations_used=self.iterations_, quantization_error=float(f"{self.quantization_error_:.6g}"),
                       empty_nodes=int((self.hits_ == 0).sum()))
        return out
