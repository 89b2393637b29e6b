"""Customer embeddings as a model family of the shared lifecycle: split, candidates, metric, rule, plots.

What a customer embedding is for here is its neighbours: similar customers for the API and
lookalike audiences for marketing. So the champion is the embedding whose neighbours best predict
what a customer does next, which every bank can observe: the category a customer buys most in the
``horizon`` after the as-of day, voted by its ``K`` nearest neighbours (exact cosine, itself
excluded), on the validation window; it must beat random vectors and may not fall below the
popularity baseline (the most common category for everyone). Within one standard error of the
best (of the paired per-customer differences in hits) the simpler kind wins: feature vectors < Customer2Vec < Customer2Vec with
the profile. The synthetic bank's personas (truth) are only for ``compare.py``'s report.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from customer_intel.embeddings.candidates import embedding_candidates
from customer_intel.embeddings.evaluate import exact_neighbours, neighbour_votes, vote_accuracy
from customer_intel.embeddings.frames import TARGET, TOKENS_COLUMN, build_embedding_split, with_bags
from customer_intel.embeddings.scorer import SCORE_COLUMNS
from customer_intel.embeddings.tokens import token_bags
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.rule import ChampionRule, Constraint
from customer_intel.modeling.split import VALIDATION

K = 10
PIP_REQUIREMENTS = ("customer_intel", "pandas<3", "scikit-learn", "faiss-cpu", "torch==2.13.0")
SIMPLICITY = ("features", "sequence", "hybrid")

EMBEDDINGS_RULE = ChampionRule(
    metric="next_category_accuracy", higher_is_better=True, tie_breakers=(("lift_over_popularity", True),), tolerance=0.02,
    baselines=("random",), constraints=(Constraint("lift_over_popularity", minimum=0.0),),
    metric_label=f"share of the validation customers whose {K} nearest neighbours' majority vote is the category they buy most next",
    rationale="an embedding is as good as its neighbours: lookalikes and similar customers are only useful if neighbours behave alike "
    "later, which every bank observes (no persona truth needed)",
    simplicity=SIMPLICITY,
)


class _Neighbours:
    """The neighbours of the last few predictions scored (each candidate's metrics, row loss and plot need the same
    ones). The arrays are held, so an id cannot be reused by another array while it is cached."""

    def __init__(self, size: int = 4):
        self._size, self._entries = size, []  # (vectors, neighbours), most recent last

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        for held, found in self._entries:
            if held is vectors:
                return found
        found = exact_neighbours(vectors, K)
        self._entries = [*self._entries[-(self._size - 1):], (vectors, found)]
        return found


neighbours_of = _Neighbours()


def _values(prediction: Prediction) -> np.ndarray:
    """The prediction's vectors as float32, the same array on every call (the neighbour cache's key)."""
    values = prediction.values
    if values.dtype != np.float32:
        raise TypeError(f"embedding predictions are float32 vectors; got {values.dtype}")
    return values


def _hits(split: TimeSplit, prediction: Prediction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(known-target mask, the neighbours' votes, the targets) of the validation rows."""
    target = split.validation[TARGET].to_numpy(dtype=object)
    votes = neighbour_votes(neighbours_of(_values(prediction)), target)
    return pd.notna(target), votes, target


def own_top_category(rows: pd.DataFrame) -> np.ndarray:
    """Each row's most-bought category so far, from its bag (ties: alphabetical); None without a purchase."""
    out = []
    for text in (rows[TOKENS_COLUMN] if TOKENS_COLUMN in rows.columns else [None] * len(rows)):
        bag = json.loads(text) if isinstance(text, str) and text else {}
        cats = sorted(((-n, t[4:]) for t, n in bag.items() if t.startswith("cat=")))
        out.append(cats[0][1] if cats else None)
    return np.asarray(out, dtype=object)


def embedding_metrics(split: TimeSplit, prediction: Prediction) -> dict[str, float]:
    """Next-period top category from the neighbours vs popularity, on customers who buy in the window; and, for
    scale, the customer's own most-bought category so far (not a neighbour method: a bar no lookalike can use)."""
    known, votes, target = _hits(split, prediction)
    scores = vote_accuracy(votes, target)
    return {"next_category_accuracy": scores["neighbours"], "popularity_accuracy": scores["popularity"],
            "lift_over_popularity": scores["neighbours"] - scores["popularity"],
            "voted_share": float(pd.notna(votes[known]).mean()) if known.any() else float("nan"),
            "own_history_accuracy": vote_accuracy(own_top_category(split.validation), target)["neighbours"],
            "customers_buying_next": scores["customers"], "dim": int(np.asarray(prediction.values).shape[1])}


def embedding_row_loss(split: TimeSplit, prediction: Prediction) -> np.ndarray:
    """Minus each buying customer's hit (1 when its neighbours' vote is right): its mean is minus the metric."""
    known, votes, target = _hits(split, prediction)
    return -(votes[known] == target[known]).astype(float)


def evaluate_embedding_scorer(scorer, split: TimeSplit) -> Prediction:
    vectors, _ = scorer.embed(split.validation)
    return Prediction(vectors)


def projection_figure(vectors: np.ndarray, labels, title: str, sample: int = 3000, seed: int = 0):
    """A 2-D PCA projection of (a sample of) the vectors, one colour per label (a matplotlib figure)."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    labels = pd.Series(np.asarray(labels, dtype=object)).fillna("unknown").astype(str).to_numpy()
    rows = np.random.default_rng(seed).choice(len(vectors), min(sample, len(vectors)), replace=False)
    xy = PCA(n_components=2, random_state=seed).fit_transform(np.asarray(vectors)[rows])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for i, label in enumerate(sorted(set(labels[rows]))):
        mask = labels[rows] == label
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.6, color=plt.cm.tab10(i % 10), label=label)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, markerscale=2, loc="best", frameon=False)
    return fig


def projection_markdown(vectors: np.ndarray, labels, title: str, sample: int = 3000, seed: int = 0) -> str:
    """``projection_figure`` as a Markdown PNG."""
    from customer_intel.reporting import png_markdown

    return png_markdown(projection_figure(vectors, labels, title, sample, seed), title)


def neighbour_examples(rows: pd.DataFrame, vectors: np.ndarray, n: int = 3, seed: int = 0) -> pd.DataFrame:
    """A few customers, what they bought most, and their nearest neighbours' ids, similarity and next category."""
    X = np.asarray(vectors, dtype=np.float32)
    found = neighbours_of(X)
    picks = np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)
    out = []
    for i in picks:
        for rank, j in enumerate((j for j in found[i][:5] if j >= 0), start=1):
            out.append({"customer": rows["customer_id"].iloc[i], "its_next_category": rows[TARGET].iloc[i], "rank": rank,
                        "neighbour": rows["customer_id"].iloc[j], "cosine": round(float(X[i] @ X[j] / max(np.linalg.norm(X[i]) * np.linalg.norm(X[j]), 1e-12)), 3),
                        "neighbour_next_category": rows[TARGET].iloc[j]})
    return pd.DataFrame(out)


def embedding_plots(comparison: Comparison) -> dict[str, str]:
    """The champion's validation vectors in 2-D by RFM segment, and nearest-neighbour examples."""
    from customer_intel.reporting import markdown_table

    prediction = comparison.predictions.get(comparison.champion)
    if prediction is None:
        return {}
    rows = comparison.split.origin(VALIDATION).validation
    vectors = np.asarray(prediction.values)
    plots = {"neighbour_examples": markdown_table(neighbour_examples(rows, vectors))}
    if "rfm_segment" in rows.columns:
        plots["projection_by_rfm_segment"] = projection_markdown(vectors, rows["rfm_segment"], f"{comparison.champion}: 2-D PCA by RFM segment")
    return plots


def embedding_split_from_inputs(inputs, cutoff: str | None = None, horizon_days: int = 90, snapshot_profile_in_training: bool = False) -> TimeSplit:
    return build_embedding_split(inputs, cutoff, horizon_days, snapshot_profile_in_training)


def embedding_score_frame(features: pd.DataFrame, raw_transactions, as_of=None) -> pd.DataFrame:
    """The day's features with each customer's token bag as of the same day (what the scorer reads): the bags
    from the feature engine's own transactions view, so "as of" means what it means for the features."""
    day = as_of if as_of is not None else features["as_of"].iloc[0]
    return with_bags(features, token_bags(raw_transactions, day))


EMBEDDINGS = ModelFamily(
    name="embeddings",
    description="Customer2Vec (PV-DBOW over each customer's category, channel, amount and gap tokens; alone and beside the profile) "
    "against standardised feature vectors and random vectors, judged by how well a customer's nearest neighbours predict the "
    "category it buys most next; the champion's vectors are inferred nightly for every customer and indexed with FAISS.",
    rule=EMBEDDINGS_RULE,
    build_split=embedding_split_from_inputs,
    candidates=embedding_candidates,
    metrics=embedding_metrics,
    evaluate_scorer=evaluate_embedding_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=(TARGET,),
    pip_requirements=PIP_REQUIREMENTS,
    plots=embedding_plots,
    score_frame=embedding_score_frame,
    row_loss=embedding_row_loss,
    column_prefix="embedding",
    has_horizon=False,
)
