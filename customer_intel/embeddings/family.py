"""Customer embeddings as a model family of the shared lifecycle: split, candidates, metrics, rules, plots.

What a customer embedding is for here is its neighbours: lookalike audiences for marketing and
similar customers for the API. So the champion is chosen on what its neighbours do next, as every
bank observes it (the synthetic bank's personas and true uplift are only for ``compare.py``):

- **with a past campaign** (``frames.can_judge_lookalikes``): the **lookalike response lift**. The
  treated converters of the campaign's seed share seed an audience of the ``AUDIENCE_SHARE`` of
  the validation pool most similar to their closest seed (``lookalike.lookalike_audience``, the
  daily asset's own method), from vectors as of the rows' day (before the send); the lift is the treated
  response rate of that audience over the pool's (what a random audience of the same size
  expects). The test pool, other customers of the same campaign, only reports.
- **without one**: the **next-period top category**: the share of the validation customers whose
  ``K`` nearest neighbours (exact cosine, itself excluded) vote for the category they buy most in
  the ``horizon`` after the as-of day.

Either way a champion must beat random vectors on the metric and its neighbours may not predict
the next category worse than popularity (the most common category for everyone). Within one
standard error of the best (paired per-customer differences) the simpler kind wins: feature
vectors < Customer2Vec < Customer2Vec with the profile. ``select_on`` forces one metric.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from customer_intel.embeddings.candidates import embedding_candidates
from customer_intel.embeddings.evaluate import exact_neighbours, neighbour_votes, vote_accuracy
from customer_intel.embeddings.frames import (
    LOOKALIKE_COLUMNS,
    LOOKALIKE_CONVERTED,
    LOOKALIKE_ROLE,
    LOOKALIKE_TREATED,
    MIN_LOOKALIKE_SEEDS,
    POOL,
    TARGET,
    TOKENS_COLUMN,
    build_embedding_split,
    can_judge_lookalikes,
    lookalike_masks,
    with_bags,
)
from customer_intel.embeddings.lookalike import LookalikeInputError, lookalike_audience
from customer_intel.embeddings.scorer import SCORE_COLUMNS
from customer_intel.embeddings.tokens import token_bags
from customer_intel.modeling import Comparison, ModelFamily, Prediction, TimeSplit
from customer_intel.modeling.card import CardHooks
from customer_intel.modeling.family import CandidateConfigError
from customer_intel.modeling.rule import ChampionRule, Constraint
from customer_intel.modeling.split import VALIDATION

K = 10
PIP_REQUIREMENTS = ("customer_intel", "pandas<3", "scikit-learn", "faiss-cpu", "torch==2.13.0")
SIMPLICITY = ("features", "sequence", "hybrid")

AUDIENCE_SHARE = 0.2  # the lookalike audience: this share of the pool, the most similar first
LOOKALIKE, NEXT_CATEGORY = "lookalike", "next_category"
# the gate's slack for the lift (relative): about one standard error of it on the 20k synthetic bank (0.2 on 1.5), so the
# gate does not refuse what the one-standard-error rule itself would choose
LOOKALIKE_TOLERANCE = 0.15
_NEIGHBOURS_LIKE_POPULARITY = Constraint("lift_over_popularity", minimum=0.0)

NEXT_CATEGORY_RULE = ChampionRule(
    metric="next_category_accuracy", higher_is_better=True, tie_breakers=(("lift_over_popularity", True),), tolerance=0.02,
    baselines=("random",), constraints=(_NEIGHBOURS_LIKE_POPULARITY,),
    metric_label=f"share of the validation customers whose {K} nearest neighbours' majority vote is the category they buy most next",
    rationale="no past campaign to judge lookalikes on: neighbours are only useful if they behave alike later, which every bank "
    "observes",
    simplicity=SIMPLICITY,
)
LOOKALIKE_RULE = ChampionRule(
    metric="lookalike_response_lift", higher_is_better=True, tie_breakers=(("next_category_accuracy", True),), tolerance=LOOKALIKE_TOLERANCE,
    baselines=("random",), constraints=(_NEIGHBOURS_LIKE_POPULARITY,),
    metric_label=f"treated response rate of the {AUDIENCE_SHARE:.0%} of a past campaign's validation pool most similar to the "
    "campaign's seed responders, over the pool's",
    rationale="what a lookalike audience is for, observed on a campaign sent after the vectors' as-of day; its neighbours must "
    "also predict the next category at least as well as popularity; without such a campaign the next-category rule decides",
    simplicity=SIMPLICITY,
)
EMBEDDINGS_RULE = LOOKALIKE_RULE


def configure_embeddings_rule(rule: ChampionRule, select_on: str | None = None, min_lift_over_popularity: float | None = None) -> ChampionRule:
    """The rule ``select_on`` names (``lookalike`` or ``next_category``; default ``rule``'s), its neighbours' floor
    against popularity moved to ``min_lift_over_popularity`` (e.g. -1 to judge lookalikes alone)."""
    if select_on is not None:
        chosen = {LOOKALIKE: LOOKALIKE_RULE, NEXT_CATEGORY: NEXT_CATEGORY_RULE}.get(select_on)
        if chosen is None:
            raise ValueError(f"select_on must be {LOOKALIKE!r} or {NEXT_CATEGORY!r}; got {select_on!r}")
        rule = chosen
    if min_lift_over_popularity is not None:
        rule = dataclasses.replace(rule, constraints=(Constraint("lift_over_popularity", minimum=float(min_lift_over_popularity)),))
    return rule


def embedding_rule_params(split: TimeSplit) -> dict[str, str]:
    """The metric this split can judge on: lookalikes when its validation rows carry a campaign, else the next category."""
    return {"select_on": LOOKALIKE if can_judge_lookalikes(split.validation) else NEXT_CATEGORY}


class _LastFew:
    """``compute(*args)`` for the last few argument tuples, matched by identity: each candidate's metrics, row loss, plots
    and the CLI's truth ask for the same neighbours or audience of the same arrays. The arguments are held, so an id
    cannot be reused by another object while it is cached."""

    def __init__(self, compute, size: int = 4):
        self._compute, self._size, self._entries = compute, size, []  # (args, result), most recent last

    def __call__(self, *args):
        for held, found in self._entries:
            if len(held) == len(args) and all(h is a for h, a in zip(held, args)):
                return found
        found = self._compute(*args)
        self._entries = [*self._entries[-(self._size - 1):], (args, found)]
        return found


def _audience(rows: pd.DataFrame, vectors: np.ndarray):
    """(treated pool mask, audience mask) of ``rows``; None when ``rows`` cannot judge lookalikes, and an all-False
    audience when these vectors give no seed a vector (nothing to look like)."""
    if not can_judge_lookalikes(rows):
        return None
    seeds, treated_pool = lookalike_masks(rows)
    ids = rows["customer_id"].astype(str).to_numpy()
    pool = rows[LOOKALIKE_ROLE].to_numpy(dtype=object) == POOL
    try:
        audience = lookalike_audience(vectors, ids, ids[seeds], max(1, int(round(AUDIENCE_SHARE * pool.sum()))), exclude=ids[~pool])
    except LookalikeInputError:
        return treated_pool, np.zeros(len(rows), dtype=bool)
    return treated_pool, np.isin(ids, audience["customer_id"].to_numpy())


audience_of = _LastFew(_audience)


def lookalike_metrics(rows: pd.DataFrame, vectors: np.ndarray) -> dict[str, float]:
    """The lookalike audience's treated response rate and uplift (treated minus control rate) against its pool's
    (none without a campaign to judge on; NaN rates when these vectors make no audience)."""
    found = audience_of(rows, vectors)
    if found is None:
        return {}
    treated_pool, audience = found
    pool = rows[LOOKALIKE_ROLE].to_numpy(dtype=object) == POOL
    treated, converted = rows[LOOKALIKE_TREATED].to_numpy(dtype=float), rows[LOOKALIKE_CONVERTED].to_numpy(dtype=float)

    def rate(mask) -> float:
        return float(converted[mask].mean()) if mask.any() else float("nan")

    def ratio(top: float, bottom: float) -> float:
        return top / bottom if bottom > 0 else float("nan")

    response, pool_response = rate(treated_pool & audience), rate(treated_pool)
    audience_uplift = rate(audience & pool & (treated == 1)) - rate(audience & pool & (treated == 0))
    pool_uplift = rate(pool & (treated == 1)) - rate(pool & (treated == 0))
    return {"lookalike_response_lift": ratio(response, pool_response), "lookalike_response": response, "pool_response": pool_response,
            "lookalike_uplift": audience_uplift, "pool_uplift": pool_uplift, "lookalike_uplift_lift": ratio(audience_uplift, pool_uplift),
            "lookalike_audience": int((audience & pool).sum()), "lookalike_seeds": int(lookalike_masks(rows)[0].sum())}


def lookalike_row_loss(rows: pd.DataFrame, vectors: np.ndarray) -> np.ndarray:
    """Per treated pool customer: minus its response when in the audience, scaled so that the mean is minus the lift
    (NaN for every row when these vectors make no audience: one length for every candidate of the split)."""
    found = audience_of(rows, vectors)
    if found is None:
        raise CandidateConfigError("select_on=lookalike needs a campaign sent after the test rows' day with "
                                   f"{MIN_LOOKALIKE_SEEDS}+ seed responders and a treated pool holding a responder; this split has none")
    treated_pool, audience = found
    converted = rows[LOOKALIKE_CONVERTED].to_numpy(dtype=float)
    pool_response, chosen = float(converted[treated_pool].mean()), int((treated_pool & audience).sum())
    if chosen == 0:
        return np.full(int(treated_pool.sum()), np.nan)
    hit = (audience[treated_pool] & (converted[treated_pool] == 1)).astype(float)
    return -hit * (int(treated_pool.sum()) / chosen) / pool_response


neighbours_of = _LastFew(lambda vectors: exact_neighbours(vectors, K))


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
            "customers_buying_next": scores["customers"], "dim": int(np.asarray(prediction.values).shape[1]),
            **lookalike_metrics(split.validation, _values(prediction))}


def embedding_row_loss(split: TimeSplit, prediction: Prediction, rule: ChampionRule = NEXT_CATEGORY_RULE) -> np.ndarray:
    """The per-row loss whose mean is minus ``rule``'s metric: the lookalike response lift's when the rule selects on
    it (a split that cannot judge lookalikes is a config error then), else minus each buying customer's hit (1 when
    its neighbours' vote is right)."""
    if rule.metric == LOOKALIKE_RULE.metric:
        return lookalike_row_loss(split.validation, _values(prediction))
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
    return with_bags(features, token_bags(raw_transactions, day, only=features["customer_id"]), encode=False)


def embedding_features(fitted) -> list[str]:
    """What a fitted embedding reads: the token bag (Customer2Vec, token shares) and/or standardised feature columns."""
    scorer = fitted.scorer
    if scorer is None:
        return []  # random vectors read nothing
    columns = [TOKENS_COLUMN] if scorer.model is not None or scorer.share_tokens else []
    return columns + list(scorer.features.columns if scorer.features is not None else ())


def embedding_card_neighbours(comparison: Comparison) -> str:
    """What applies instead of calibration: how the champion's neighbours and lookalikes do against popularity and random vectors."""
    table = comparison.table
    row, champion = table.loc[comparison.champion], comparison.champion
    text = ("Embeddings are vectors, not probabilities or forecasts: there is nothing to calibrate. What applies is whether a "
            f"customer's neighbours behave like it later. On the validation rows ({int(row['customers_buying_next']):,} customers buying "
            f"in the window), the {K} nearest neighbours of `{champion}` voted the category a customer buys most next right for "
            f"{float(row['next_category_accuracy']):.1%}, against {float(row['popularity_accuracy']):.1%} for popularity (everyone gets the "
            f"most common category) and {float(row['own_history_accuracy']):.1%} for the customer's own top category so far (a bar no "
            "lookalike can use)")
    if "random" in table.index:
        text += f"; random vectors' neighbours: {float(table.loc['random', 'next_category_accuracy']):.1%}"
    text += "."
    if "lookalike_response_lift" in table.columns and np.isfinite(float(row.get("lookalike_response_lift", np.nan))):
        text += (f" Seeded by {int(row['lookalike_seeds']):,} responders of a past campaign, its lookalike audience of "
                 f"{int(row['lookalike_audience']):,} pool customers responded at {float(row['lookalike_response']):.1%} when treated, against "
                 f"{float(row['pool_response']):.1%} for the treated pool (lift {float(row['lookalike_response_lift']):.2f}).")
    return text


def embedding_segment_metric(origin: TimeSplit, prediction: Prediction, mask: np.ndarray, metric: str) -> float:
    """The rule's metric on the masked rows, neighbours and audiences drawn from every row as the comparison did: the
    next-category accuracy of the masked buying customers, or the lookalike lift within the masked treated pool."""
    rows, vectors, mask = origin.validation, _values(prediction), np.asarray(mask, dtype=bool)
    if metric == LOOKALIKE_RULE.metric:
        found = audience_of(rows, vectors)
        if found is None:
            return float("nan")
        treated_pool, audience = found
        converted = rows[LOOKALIKE_CONVERTED].to_numpy(dtype=float)
        pool, chosen = treated_pool & mask, treated_pool & audience & mask
        if not chosen.any() or converted[pool].sum() == 0:
            return float("nan")
        return float(converted[chosen].mean() / converted[pool].mean())
    known, votes, target = _hits(origin, prediction)
    hit = known & mask
    return float((votes[hit] == target[hit]).mean()) if hit.any() else float("nan")


EMBEDDINGS_CARD = CardHooks(
    features=embedding_features,
    calibration=embedding_card_neighbours,
    calibration_applies=False,
    loss_label="per-row loss of the rule's metric (minus each buying customer's next-category hit; under the lookalike rule minus "
    "each treated pool customer's response in the audience, scaled so that its mean is minus the lift)",
    segment_metric=embedding_segment_metric,
    intended_use="Find customers who behave like a seed group (lookalike audiences for a campaign, similar customers in the API) "
    "from their purchase patterns; the vectors are inferred nightly for every customer.",
    misuse=("treating similarity as a prediction of response for an offer unlike the campaign the lift was measured on",
            "deciding credit, pricing or eligibility by who a customer resembles: no fairness audit was run",
            "comparing vectors across training runs: each champion has its own space; compare neighbours, not coordinates"),
    limitations=("customers with few or no purchases have few tokens: their vectors (and so their neighbours) carry little of their own "
                 "behaviour",),
)


EMBEDDINGS = ModelFamily(
    name="embeddings",
    description="Customer2Vec (PV-DBOW over each customer's category, channel, amount and gap tokens; alone and beside the profile) "
    "against standardised feature vectors, category shares and random vectors, judged by the response lift of lookalike audiences "
    "seeded by a past campaign's responders (without one: by how well a customer's nearest neighbours predict the category it buys "
    "most next); the champion's vectors are inferred nightly for every customer and indexed with FAISS.",
    rule=EMBEDDINGS_RULE,
    build_split=embedding_split_from_inputs,
    candidates=embedding_candidates,
    metrics=embedding_metrics,
    evaluate_scorer=evaluate_embedding_scorer,
    score_columns=SCORE_COLUMNS,
    target_columns=(TARGET, *LOOKALIKE_COLUMNS),
    pip_requirements=PIP_REQUIREMENTS,
    plots=embedding_plots,
    score_frame=embedding_score_frame,
    row_loss=embedding_row_loss,
    rule_params=("select_on", "min_lift_over_popularity"),
    configure_rule=configure_embeddings_rule,
    rule_params_for=embedding_rule_params,
    column_prefix="embedding",
    has_horizon=False,
    card=EMBEDDINGS_CARD,
)
