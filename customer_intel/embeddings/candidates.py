"""The embedding candidates on the shared lifecycle: Customer2Vec (alone and with the profile), feature vectors, random.

Every candidate is fitted on the split's ``fit`` rows (bags and features as of the fit day) and
gives vectors for the rows it is judged on the way the registered scorer does nightly: a
Customer2Vec's vectors are *inferred* with its token vectors frozen, a feature block standardises
with the fit rows' means. The family's metrics then ask what the neighbours of those vectors say
about what each customer buys next.

- ``customer2vec``: PV-DBOW from the token bags alone;
- ``customer2vec_profile``: the same vector beside the five profile attributes' z-scores, both
  blocks L2-normalised and the profile block weighted ``profile_weight`` = w (its share of the
  squared norm, so of the cosine similarity of two customers, is w² / (1 + w²): 50% at w = 1);
- ``rfm_behaviour``, ``profile``, ``all_features``: z-scores of the transactional (RFM and
  behaviour) columns, of the profile attributes, of both: what an analyst would try first;
- ``category_shares``: each category's share of the customer's purchases (from the same bag):
  the plain vector that knows *what* a customer buys, the bar Customer2Vec has to clear;
- ``random``: seeded Gaussian vectors, the floor (never registered).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.embeddings.customer2vec import Customer2VecConfig, train_customer2vec
from customer_intel.embeddings.frames import bags_from_frame
from customer_intel.embeddings.index import INDEX_METHODS
from customer_intel.embeddings.scorer import EmbeddingScorer, FeatureBlock
from customer_intel.modeling.candidate import CandidateFitError, CandidateSkipped, Prediction, flat_params
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.split import TimeSplit
from customer_intel.segmentation.space import PROFILE_ATTRIBUTES, TRANSACTIONAL

KINDS = ("baseline", "features", "sequence", "hybrid")  # simplest first after the baseline
FEATURE_SETS = {"rfm_behaviour": "transactional", "profile": "profile", "all_features": "both"}
DEFAULT_PROFILE_WEIGHT = 1.0  # the profile block as heavy as the sequence block (README: persona recall vs next category)
NAMES = ("random", *FEATURE_SETS, "category_shares", "customer2vec", "customer2vec_profile")
SHARE_PREFIX = "cat="


def feature_set_columns(frame: pd.DataFrame, which: str) -> list[str]:
    """The columns of one feature set present in ``frame`` (channel shares count as behaviour)."""
    transactional = [c for c in (*TRANSACTIONAL, *sorted(c for c in frame.columns if c.startswith("channel_share_"))) if c in frame.columns]
    profile = [c for c in PROFILE_ATTRIBUTES if c in frame.columns and frame[c].notna().any()]
    return {"transactional": transactional, "profile": profile, "both": transactional + profile}[which]


class _SharedModel:
    """The last Customer2Vec trained, by its training rows and config: ``customer2vec`` and ``customer2vec_profile`` share it."""

    def __init__(self):
        self._key, self._rows, self._model = None, None, None

    def __call__(self, rows: pd.DataFrame, as_of, config: Customer2VecConfig, log):
        key = (id(rows), tuple(sorted(config.__dict__.items())))
        if self._key != key:
            bags = bags_from_frame(rows, as_of)
            if len(bags.vocabulary) < 2:
                raise CandidateFitError(f"the training customers' bags hold {len(bags.vocabulary)} distinct tokens: nothing to learn")
            started = time.perf_counter()
            model = train_customer2vec(bags, config, log=log)
            self._key, self._rows, self._model = key, rows, (model, time.perf_counter() - started)  # rows kept: their id stays theirs
        return self._model


shared_model = _SharedModel()


@dataclass
class FittedEmbedding:
    name: str
    scorer: EmbeddingScorer | None
    fit_ids: np.ndarray
    fit_vectors: np.ndarray
    info: dict = field(default_factory=dict)
    seed: int = 0
    index_method: str = "hnsw"

    def predict(self, frame: pd.DataFrame) -> Prediction:
        if self.scorer is None:  # random: seeded Gaussian vectors
            return Prediction(np.random.default_rng(self.seed).standard_normal((len(frame), 32)).astype(np.float32))
        vectors, _ = self.scorer.embed(frame)
        return Prediction(vectors)

    def params(self) -> dict:
        return flat_params(self.info)

    def to_scorer(self) -> EmbeddingScorer | None:
        """The scorer with its index over the training customers (what is registered and served)."""
        if self.scorer is None:
            return None
        return self.scorer.with_index(self.fit_vectors, self.fit_ids, method=self.index_method)

    def to_logged_scorer(self) -> EmbeddingScorer | None:
        """The scorer without an index: what every candidate that is not registered is logged as (the index is built
        only for the model that serves; at 1M customers an HNSW build takes minutes)."""
        return self.scorer


@dataclass
class EmbeddingCandidate:
    """One recipe: a Customer2Vec block (``sequence``), a feature block (``feature_set``), or both; none is random."""

    name: str
    kind: str
    sequence: bool = False
    feature_set: str | None = None
    feature_weight: float = 1.0
    shares: str | None = None  # a token prefix: a token-share block over the training bags' tokens with it
    config: Customer2VecConfig = field(default_factory=Customer2VecConfig)
    log: object = print
    index_method: str = "hnsw"  # the approximate index above the exact size (index.build_index)

    def fit(self, split: TimeSplit) -> FittedEmbedding:
        rows = split.fit
        ids = rows["customer_id"].astype(str).to_numpy()
        if self.kind == "baseline":
            return FittedEmbedding(self.name, None, ids, np.zeros((len(rows), 1), np.float32), {"kind": "random"}, self.config.seed)
        info: dict = {"kind": self.kind, "fit_rows": len(rows)}
        features = None
        if self.feature_set is not None:
            columns = feature_set_columns(rows, self.feature_set)
            if not columns:
                raise CandidateSkipped(f"{self.name}: no {self.feature_set} columns in the training rows")
            features = FeatureBlock.fit(rows, columns)
            info.update({"feature_columns": ", ".join(columns), "feature_weight": self.feature_weight})
        model = None
        if self.sequence:
            model, seconds = shared_model(rows, split.cutoff_of("fit"), self.config, self.log)
            info.update({**{f"c2v.{k}": v for k, v in self.config.__dict__.items()}, "vocabulary": len(model.vocabulary),
                         "epochs_run": len(model.history), "best_holdout_loss": min(h["holdout_loss"] for h in model.history),
                         "train_seconds": round(seconds, 1)})
        share_tokens = None
        if self.shares is not None:
            share_tokens = tuple(t for t in bags_from_frame(rows).vocabulary if t.startswith(self.shares))
            if not share_tokens:
                raise CandidateSkipped(f"{self.name}: no {self.shares} tokens in the training bags")
            info["share_tokens"] = len(share_tokens)
        scorer = EmbeddingScorer(self.name, model, features, 1.0, self.feature_weight if model is not None else 1.0,
                                 cutoff=str(split.cutoff_of("fit").date()), code_version=code_version(), share_tokens=share_tokens)
        vectors, _ = scorer.embed(rows)
        return FittedEmbedding(self.name, scorer, ids, vectors, info, self.config.seed, self.index_method)


def embedding_candidates(include: list[str] | None = None, dim: int = 64, epochs: int = 30, profile_weight: float = DEFAULT_PROFILE_WEIGHT,
                         seed: int = 0, index_method: str = "hnsw", log=print) -> list[EmbeddingCandidate]:
    """The candidates (``include``: which of them; ``random`` is always compared; ``index_method``: hnsw or ivf above the
    exact index's size)."""
    unknown = sorted(set(include or []) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown embedding candidates {unknown}; choose from {', '.join(NAMES)}")
    if dim < 2 or epochs < 1 or profile_weight < 0:
        raise ValueError(f"dim must be >= 2, epochs >= 1 and profile_weight >= 0; got {dim}, {epochs}, {profile_weight}")
    if index_method not in INDEX_METHODS:
        raise ValueError(f"index_method must be one of {', '.join(INDEX_METHODS)}; got {index_method!r}")
    shared = {"config": Customer2VecConfig(dim=dim, epochs=epochs, seed=seed), "index_method": index_method}
    every = [
        EmbeddingCandidate("random", "baseline", **shared),
        *(EmbeddingCandidate(name, "features", feature_set=which, **shared) for name, which in FEATURE_SETS.items()),
        EmbeddingCandidate("category_shares", "features", shares=SHARE_PREFIX, **shared),
        EmbeddingCandidate("customer2vec", "sequence", sequence=True, log=log, **shared),
        EmbeddingCandidate("customer2vec_profile", "hybrid", sequence=True, feature_set="profile",
                           feature_weight=profile_weight, log=log, **shared),
    ]
    return [c for c in every if c.name == "random" or not include or c.name in include]
