"""The registered embedding scorer: a vector per customer from its token bag and/or its standardised features, and the index.

Its module path is part of every registered embeddings model (MLflow pickles it by reference):
keep ``customer_intel.embeddings.scorer.EmbeddingScorer`` importable and give new fields defaults.

A vector is the concatenation of blocks, each L2-normalised before its weight: the Customer2Vec
block (inferred from the bag with the token vectors frozen, so a customer the model never saw
gets one deterministically) and the feature block (z-scores with the training customers' means
and standard deviations, clipped at 5). A block's weight sets its share of the cosine similarity.
``vector`` is the concatenation, L2-normalised; a customer with neither tokens nor features gets
a zero vector (no neighbours: the lookalike and the index skip it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.embeddings.customer2vec import Customer2Vec
from customer_intel.embeddings.frames import bags_from_frame, has_bags
from customer_intel.modeling.scorer import ScorerInfo

SCORE_COLUMNS = ("vector", "tokens")  # published as embedding_vector, embedding_tokens
CLIP = 5.0


def unit_rows(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)


def token_shares(bags, tokens: tuple[str, ...]) -> np.ndarray:
    """Per customer, each of ``tokens``' share of the customer's occurrences of them (zeros without any)."""
    bags = bags.restricted(tuple(tokens)) if bags.vocabulary != tuple(tokens) else bags
    out = np.zeros((len(bags), len(tokens)), dtype=np.float32)
    rows = np.repeat(np.arange(len(bags)), np.diff(bags.indptr))
    out[rows, bags.tokens] = bags.counts
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


@dataclass
class FeatureBlock:
    """Standardised feature columns (means and standard deviations of the training customers)."""

    columns: tuple[str, ...]
    means: np.ndarray
    sds: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns) -> FeatureBlock:
        X = frame[list(columns)].to_numpy(dtype=float)
        means, sds = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        return cls(tuple(columns), means, np.where(sds > 0, sds, 1.0))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the embedding needs the feature columns {', '.join(missing)}")
        X = (frame[list(self.columns)].to_numpy(dtype=float) - self.means) / self.sds
        return np.clip(np.nan_to_num(X, nan=0.0), -CLIP, CLIP).astype(np.float32)


@dataclass
class EmbeddingScorer:
    """Vectors for every customer: ``model`` (Customer2Vec, or None) with weight ``sequence_weight``,
    ``features`` (or None) with weight ``feature_weight`` and/or the ``share_tokens`` block; ``index``: the FAISS index over the
    training customers' vectors (serialised), for ``similar_customers`` without a daily table."""

    candidate: str
    model: Customer2Vec | None = None
    features: FeatureBlock | None = None
    sequence_weight: float = 1.0
    feature_weight: float = 1.0
    cutoff: str | None = None
    code_version: str = "unknown"
    index_bytes: bytes | None = None
    index_ids: np.ndarray | None = None
    index_kind: str | None = None
    index_recall_at_10: float | None = None
    index_search_parameter: int | None = None
    share_tokens: tuple[str, ...] | None = None  # a token-share block: each token's share of these tokens in the bag
    extra: dict = field(default_factory=dict)

    @property
    def info(self) -> ScorerInfo:
        return ScorerInfo("embeddings", self.candidate, self.cutoff, None, self.code_version)

    @property
    def output_columns(self) -> tuple[str, ...]:
        return SCORE_COLUMNS

    @property
    def dim(self) -> int:
        return ((self.model.config.dim if self.model is not None else 0) + (len(self.features.columns) if self.features is not None else 0)
                + len(self.share_tokens or ()))

    def embed(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised vectors, token counts) of ``frame``'s rows, in order."""
        blocks = []
        bags = bags_from_frame(frame) if self.model is not None or self.share_tokens or has_bags(frame) else None
        if self.model is not None:
            blocks.append(self.sequence_weight * unit_rows(self.model.infer(bags)))
        if self.features is not None:
            blocks.append(self.feature_weight * unit_rows(self.features.transform(frame)))
        if self.share_tokens:
            blocks.append(unit_rows(token_shares(bags if bags is not None else bags_from_frame(frame), self.share_tokens)))
        if not blocks:
            raise ValueError(f"{self.candidate}: an embedding needs a sequence model, a feature block or token shares")
        n_tokens = bags.sizes() if bags is not None else np.zeros(len(frame), dtype=np.int64)
        return unit_rows(np.hstack(blocks).astype(np.float32)), n_tokens

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        vectors, n_tokens = self.embed(features)
        return pd.DataFrame({"vector": list(vectors), "tokens": n_tokens}, index=features.index)

    def __getstate__(self):  # the deserialised index is a cache: the bytes travel, not the FAISS object
        state = dict(self.__dict__)
        state.pop("_index_cache", None)
        return state

    def index(self):
        """The ``VectorIndex`` over the training customers (None when none was stored); deserialised once per process."""
        if self.index_bytes is None:
            return None
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            import faiss

            from customer_intel.embeddings.index import VectorIndex

            index = faiss.deserialize_index(np.frombuffer(self.index_bytes, dtype=np.uint8))
            cached = VectorIndex(index, np.asarray(self.index_ids), self.index_kind or "flat", float(self.index_recall_at_10 or 1.0),
                                 self.index_search_parameter)
            self.__dict__["_index_cache"] = cached
        return cached

    def similar_customers(self, customer_id, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` training customers most similar to ``customer_id`` (one of them), by the stored index."""
        from customer_intel.embeddings.index import similar_customers

        index = self.index()
        if index is None:
            raise ValueError(f"{self.candidate}: this scorer was registered without an index")
        position = int(index.positions([str(customer_id)])[0])
        return similar_customers(index, np.atleast_2d(index.index.reconstruct(position)), str(customer_id), k, position_in_vectors=0)

    def with_index(self, vectors: np.ndarray, ids, method: str = "hnsw") -> EmbeddingScorer:
        """This scorer with the index over ``vectors`` (rows of ``ids``; ``method`` above the exact size) stored in it."""
        import dataclasses

        import faiss

        from customer_intel.embeddings.index import build_index

        built = build_index(vectors, ids, method=method)
        return dataclasses.replace(self, index_bytes=faiss.serialize_index(built.index).tobytes(), index_ids=np.asarray(built.ids),
                                   index_kind=built.kind, index_recall_at_10=built.recall_at_10,
                                   index_search_parameter=built.search_parameter)
