"""One customer's features and scores, by the batch's own code: the feature builder, each family's scorer through
``daily_scores`` (so the columns are named as in ``scored_customers``), and the embeddings index builder.

No Dagster and no FastAPI here: the app turns a ``ScoringError`` into an HTTP status, and scores the
at-risk feed's customers with ``build_features`` and ``family_scores``, many at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.features import FeatureInputError, as_of_day, build_customer_features
from customer_intel.modeling.scoring import daily_scores
from customer_intel.serving.champions import ServingModels, channel_vocabulary
from customer_intel.serving.jsonsafe import plain
from customer_intel.serving.schemas import CustomerRequest
from customer_intel.uplift.scorer import offer_column, quadrants

PROFILE_COLUMNS = ("Avg_Credit_Limit", "Total_Credit_Cards", "Total_visits_bank", "Total_visits_online", "Total_calls_made")


class ScoringError(Exception):
    """A request that cannot be scored, with the HTTP status that says why (404 unknown customer, 422 unusable input,
    503 no champion or no published day)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Features:
    frame: pd.DataFrame  # the feature rows (the builder's columns), one per customer
    as_of: str
    source: str  # published | request
    transactions: pd.DataFrame | None = None  # the request's rows (raw mode): what embeddings read beside the features


def transactions_frame(rows, customer_id: str | None = None) -> pd.DataFrame:
    """Contract-shaped raw transactions from request rows (``customer_id`` fills rows that do not name one)."""
    return pd.DataFrame({
        "customer_id": [r.customer_id or customer_id for r in rows],
        "ts": pd.to_datetime([r.ts for r in rows], utc=True),
        "amount": np.array([r.amount for r in rows], dtype=float),
        "category": pd.Series([r.category for r in rows], dtype=object),
        "channel": pd.Series([r.channel for r in rows], dtype=object),
    })


def profiles_frame(rows: list[dict]) -> pd.DataFrame | None:
    """Contract-shaped raw customers from ``{"customer_id": ..., <profile fields>}`` dicts (None when there are none)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    return frame[["customer_id", *[c for c in PROFILE_COLUMNS if c in frame.columns]]]


def build_features(models: ServingModels, transactions: pd.DataFrame, customers: pd.DataFrame | None, as_of) -> pd.DataFrame:
    """Features as of ``as_of`` for the customers of ``transactions``, by the batch feature builder, with the published day's
    channel columns so every scorer finds the columns it was fitted on."""
    published = models.published.channels if models.published is not None else ()
    channels = channel_vocabulary(published, transactions["channel"].dropna().astype(str).unique().tolist())
    try:
        built = build_customer_features(transactions, customers, as_of, channels=channels or None)
    except FeatureInputError as exc:
        raise ScoringError(422, str(exc)) from None
    return built.frame


def request_features(models: ServingModels, request: CustomerRequest) -> Features:
    """The customer's feature row: the published day's (by id) or built from the request's rows as of its date."""
    if request.transactions is None:
        published = models.published
        if published is None:
            raise ScoringError(503, f"no published features to look {request.customer_id!r} up in: {models.published_note}")
        if request.as_of is not None and str(request.as_of) != published.date:
            raise ScoringError(422, f"as_of {request.as_of} is not the published day {published.date}: send the customer's "
                                    "transactions to score it as of another day")
        rows = published.rows(request.customer_id)
        if rows is None:
            raise ScoringError(404, f"customer_id {request.customer_id!r} is not in the features published for {published.date} "
                                    "(no purchase by then, or not a customer): send its transactions to score it")
        return Features(rows, published.date, "published")
    transactions = transactions_frame(request.transactions, request.customer_id)
    profile = None
    if request.profile is not None:
        profile = pd.DataFrame([{"customer_id": request.customer_id, **request.profile.model_dump()}])
    day = as_of_day(request.as_of)
    frame = build_features(models, transactions, profile, day)
    return Features(frame, str(day.date()), "request", transactions)


def _champion(models: ServingModels, family: str):
    champion = models.champions.get(family)
    if champion is None:
        raise ScoringError(503, models.missing.get(family, f"no {family} champion loaded"))
    return champion


def family_scores(models: ServingModels, family: str, features: Features) -> pd.DataFrame:
    """``daily_scores`` of the family's champion over the feature rows: the ``scored_customers`` columns of the family."""
    champion = _champion(models, family)
    spec = models.families[family]
    frame = features.frame
    if spec.needs_transactions and not (frame["feature_mode"] == "transactional").all():
        raise ScoringError(422, f"{family} needs transactions: the features of {features.as_of} are profile-mode")
    if spec.score_frame is not None:
        if features.transactions is None:
            raise ScoringError(422, f"{family} reads the customer's transactions: send them (with as_of)")
        frame = spec.score_frame(frame, raw_transactions=features.transactions, as_of=as_of_day(features.as_of))
    try:
        return daily_scores(spec, frame, champion.scorer, champion.label)
    except (KeyError, ValueError) as exc:  # a column the champion reads is not in these features (e.g. no category given)
        raise ScoringError(422, f"the {family} champion ({champion.label}) cannot score these features: {exc}") from None


def row_dict(frame: pd.DataFrame, drop=("customer_id",)) -> dict:
    row = frame.iloc[0]
    return {c: plain(row[c]) for c in frame.columns if c not in drop}


def model_ref(models: ServingModels, family: str) -> dict:
    champion = _champion(models, family)
    return {"family": family, "registered_model": champion.registered_model, "version": str(champion.version.version),
            "candidate": champion.candidate, "label": champion.label}


def churn_detail(models: ServingModels, scores: dict) -> dict:
    scorer = _champion(models, "churn").scorer
    reasons = [{"feature": scores[f"churn_reason_{k}"], "logodds": scores[f"churn_reason_{k}_logodds"]}
               for k in range(1, 4) if scores.get(f"churn_reason_{k}") is not None]
    return {"probability": scores.get("churn_probability"), "risk_band": scores.get("churn_risk_band"),
            "threshold": float(scorer.threshold), "horizon_days": plain(scores.get("churn_horizon_days")),
            "reasons": reasons, "counterfactual": scores.get("churn_counterfactual"),
            "counterfactual_probability": scores.get("churn_counterfactual_probability")}


def uplift_detail(models: ServingModels, scores: dict) -> dict:
    """Best offer, its uplift and quadrant, and every offer's uplift with its own quadrant (the scorer's margin and threshold)."""
    scorer = _champion(models, "uplift").scorer
    offers = json.loads(scores["uplift_offers"]) if scores.get("uplift_offers") else list(scorer.offers)
    base = scores.get("uplift_response_control")
    threshold = scorer.quadrant_threshold
    rows = []
    for offer in offers:
        effect = scores.get(f"uplift_{offer_column(offer)}")
        quadrant = None
        if effect is not None and base is not None:
            quadrant = plain(quadrants(np.array([effect]), np.array([base]), scorer.margin, threshold)[0])
        rows.append({"offer": offer, "uplift": effect, "quadrant": quadrant})
    return {"best_offer": scores.get("uplift_best_offer"), "uplift": scores.get("uplift"), "quadrant": scores.get("uplift_quadrant"),
            "offers": rows}


def neighbours(models: ServingModels, features: Features, customer_id: str, k: int) -> tuple[list[dict], str, str]:
    """The ``k`` most similar customers of the published day (cosine of the embeddings champion's vectors), the search's
    description and the label of the model whose vectors were searched.

    By id the customer's vector is the one the batch published that day; from raw rows the champion embeds them now. Either
    way the search runs over the day's published vectors with the batch's index builder (exact up to 200,000 customers)."""
    published = models.published
    if published is None or published.index is None:
        raise ScoringError(503, "no published embeddings to search: the scoring job publishes customer_embeddings with a champion")
    index = published.index
    if features.source == "published":
        try:
            position = int(index.positions([customer_id])[0])
        except KeyError:
            raise ScoringError(404, f"customer_id {customer_id!r} has no embedding published for {published.date}") from None
        query = published.vectors[position:position + 1]
        label = published.embeddings_model
    else:
        label = _champion(models, "embeddings").label
        if published.embeddings_model not in (None, label):  # a vector of one model searched among another's: meaningless
            raise ScoringError(409, f"the published vectors of {published.date} are {published.embeddings_model}'s, the champion is "
                                    f"{label}: transactions can be compared only after the next scoring run (by id works now)")
        scores = family_scores(models, "embeddings", features)
        query = np.asarray(scores["embedding_vector"].iloc[0], dtype=np.float32)[None, :]
    found_scores, found = index.search(query, k + 1)
    out = [{"customer_id": str(index.ids[j]), "similarity": float(s)} for j, s in zip(found[0], found_scores[0])
           if j >= 0 and str(index.ids[j]) != customer_id]
    search = f"{published.date}: {len(index.ids):,} published embeddings, {index.kind} (recall@10 {index.recall_at_10:.3f})"
    return out[:k], search, label or ""

