"""The segmentation candidates on the shared lifecycle: seven clusterers in one input space.

Each ``SegmentationCandidate`` fits its clusterer on the training customers' standardised
features, assigns the held-out (validation) customers, and measures its stability: refits on
80% subsamples of the training customers, each with its own seed, assign the same held-out
customers, and the mean pairwise adjusted Rand index of those assignments is the stability (the
spread of the refits' silhouette, Calinski-Harabasz and Davies-Bouldin is reported as ``*_sd``:
seed and resample noise together). A deep model's silhouette in its own latent space goes to the
``latent_silhouette`` column only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.modeling.candidate import CandidateFitError, Prediction, flat_params
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.split import TimeSplit
from customer_intel.segmentation.metrics import input_space_metrics, per_row_silhouette, silhouette_rows, stability
from customer_intel.segmentation.naming import profile_segments
from customer_intel.segmentation.scorer import SegmentScorer
from customer_intel.segmentation.space import FEATURE_SET_COLUMN, InputSpace, SegmentationInputError

OUTLIER_QUANTILE = 0.99
SUBSAMPLE = 0.8


class SharedSpace:
    """The input space of one split (fitted once on its training customers), and its matrices."""

    def __init__(self):
        self._key = None
        self._value = None

    def __call__(self, split: TimeSplit) -> tuple[InputSpace, np.ndarray, np.ndarray, np.ndarray]:
        """(space, X_fit, X_validation, silhouette rows of the validation customers)."""
        key = (id(split.fit), id(split.validation))
        if self._key != key:
            feature_set = str(split.fit[FEATURE_SET_COLUMN].iloc[0]) if FEATURE_SET_COLUMN in split.fit else "behaviour"
            space = InputSpace.fit(split.fit, feature_set)
            Xv = space.transform(split.validation)
            self._value = (space, space.transform(split.fit), Xv, silhouette_rows(len(Xv)))
            self._key, self._split = key, split  # the split is kept so its frames' ids are not reused while cached
        return self._value


shared_space = SharedSpace()


@dataclass
class SegmentationCandidate:
    """One clusterer (``make(seed)`` builds it unfitted) fitted in the split's shared input space."""

    name: str
    kind: str
    make: Callable[[int], object]
    seed: int = 0
    refits: int = 3

    def fit(self, split: TimeSplit) -> FittedSegmentation:
        try:
            space, X, Xv, rows = shared_space(split)
        except SegmentationInputError as exc:
            raise CandidateFitError(str(exc)) from exc
        if len(X) < 10:
            raise CandidateFitError(f"{len(X)} training customers: too few to segment")
        try:
            model = self.make(self.seed).fit(X)
            assignments = [np.asarray(model.predict(Xv), dtype=np.int64)]
            rng = np.random.default_rng(self.seed)
            for i in range(self.refits):
                rows_i = np.sort(rng.choice(len(X), size=max(int(SUBSAMPLE * len(X)), 2), replace=False))
                assignments.append(np.asarray(self.make(self.seed + 1 + i).fit(X[rows_i]).predict(Xv), dtype=np.int64))
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            raise CandidateFitError(f"{self.name}: {exc}") from exc
        spread = [input_space_metrics(Xv, a, rows) for a in assignments]
        diagnostics = {"stability": stability(assignments), "refits": len(assignments) - 1}
        for metric in ("silhouette", "calinski_harabasz", "davies_bouldin"):
            values = np.array([s[metric] for s in spread], dtype=float)
            diagnostics[f"{metric}_sd"] = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else float("nan")
        if hasattr(model, "latent"):  # the model's own embedding: its own column, never the input-space ones
            diagnostics["latent_silhouette"] = float(per_row_silhouette(np.asarray(model.latent(Xv)), assignments[0], rows).mean())
        if hasattr(model, "is_noise"):
            diagnostics["noise_share"] = float(np.mean(model.is_noise(Xv)))
        return FittedSegmentation(self, space, model, split, diagnostics, X)


@dataclass
class FittedSegmentation:
    candidate: SegmentationCandidate
    space: InputSpace
    model: object
    split: TimeSplit
    diagnostics: dict
    X_fit: np.ndarray

    def predict(self, frame: pd.DataFrame) -> Prediction:
        labels = np.asarray(self.model.predict(self.space.transform(frame)), dtype=np.int64)
        return Prediction(labels, diagnostics=dict(self.diagnostics))

    def params(self) -> dict:
        return {"cutoff": str(self.split.cutoff.date()), "feature_set": self.space.feature_set, "input_space": self.space.describe(),
                "training_customers": len(self.X_fit), "seed": self.candidate.seed, **flat_params(self.model.info())}

    def segments(self):
        """The named segments, profiled on the training customers."""
        labels = np.asarray(self.model.predict(self.X_fit), dtype=np.int64)
        raw = self.split.fit[list(self.space.columns)].apply(pd.to_numeric, errors="coerce").astype(float)
        return profile_segments(raw.reset_index(drop=True), self.X_fit, labels), labels

    def to_scorer(self) -> SegmentScorer:
        profiles, labels = self.segments()
        k = int(self.model.n_clusters_)
        names, descriptions = ["unnamed"] * k, [""] * k
        for p in profiles:
            names[p.segment_id], descriptions[p.segment_id] = p.name, p.description
        distance = self.model.transform(self.X_fit)[np.arange(len(labels)), labels]
        limits = tuple(float(np.quantile(distance[labels == j], OUTLIER_QUANTILE)) if (labels == j).any() else float("inf")
                       for j in range(k))
        return SegmentScorer(self.candidate.name, self.space, self.model, tuple(names), tuple(descriptions), limits,
                             cutoff=str(self.split.cutoff.date()), code_version=code_version())


class KFromKMeans:
    """A fixed-k clusterer (DEC, ClusterGAN) whose k is K-Means' silhouette choice over ``k_range`` on
    the same training rows: a deep model is compared with K-Means at the same k, and sweeping k
    through a network is not worth its cost."""

    def __init__(self, build: Callable[[int], object], k_range: tuple[int, int], seed: int):
        self.build, self.k_range, self.seed = build, k_range, seed
        self.inner = None

    def fit(self, X: np.ndarray) -> KFromKMeans:
        from customer_intel.segmentation.classic import KMeansSegments

        k = int(KMeansSegments(k_range=self.k_range, seed=self.seed).fit(X).n_clusters_)
        self.inner = self.build(k).fit(X)
        self.k_from_kmeans = k
        return self

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def n_clusters_(self) -> int:
        return int(self.inner.n_clusters_)

    def predict(self, X):
        return self.inner.predict(X)

    def transform(self, X):
        return self.inner.transform(X)

    def latent(self, X):
        return self.inner.latent(X)

    def info(self) -> dict:
        return {**self.inner.info(), "k_from_kmeans": self.k_from_kmeans}


def segmentation_candidates(seed: int = 0, k_min: int = 3, k_max: int = 8, refits: int = 3, deep_refits: int = 2,
                            methods: list[str] | None = None) -> list[SegmentationCandidate]:
    """The seven candidates (``methods``: a subset by name), simplest first."""
    from customer_intel.segmentation.classic import (
        GaussianMixtureSegments,
        HDBSCANSegments,
        KMeansSegments,
        SOMSegments,
        SpectralSegments,
    )
    from customer_intel.segmentation.deep import DEC, ClusterGAN

    k_range = (int(k_min), int(k_max))
    if not 2 <= k_range[0] <= k_range[1]:
        raise ValueError(f"the k range must satisfy 2 <= k_min <= k_max; got {k_range}")
    makers = {
        "kmeans": ("centroid", lambda s: KMeansSegments(k_range=k_range, seed=s), refits),
        "gmm": ("mixture", lambda s: GaussianMixtureSegments(k_range=k_range, seed=s), refits),
        "som": ("som", lambda s: SOMSegments(k_range=k_range, seed=s), refits),
        "spectral": ("graph", lambda s: SpectralSegments(k_range=k_range, seed=s), refits),
        "hdbscan": ("density", lambda s: HDBSCANSegments(k_range=k_range, seed=s), refits),
        "dec": ("deep", lambda s: KFromKMeans(lambda k: DEC(n_clusters=k, seed=s), k_range, s), deep_refits),
        "clustergan": ("deep", lambda s: KFromKMeans(lambda k: ClusterGAN(n_clusters=k, seed=s), k_range, s), deep_refits),
    }
    chosen = list(makers) if methods is None else list(methods)
    unknown = sorted(set(chosen) - set(makers))
    if unknown:
        raise ValueError(f"unknown segmentation methods {unknown}; choose from {list(makers)}")
    return [SegmentationCandidate(name, makers[name][0], makers[name][1], seed, makers[name][2]) for name in chosen]
