"""The API's request and response bodies (Pydantic): what a CRM sends and gets back.

A request names a customer. With only ``customer_id`` its features are the ones the batch published
for the latest scored day (``customer_features`` of the day ``scored_customers`` was last published
for), so the answer is the nightly table's. With ``transactions`` (and optionally ``profile``) the
features are built now by the batch feature builder as of ``as_of`` from those rows alone: the
customer's whole history up to that day, as the data contract describes a raw transactions table.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TRANSACTIONS = 20_000  # one customer's history; a bigger body is a batch job's work
MAX_ABS_AMOUNT = 1e9  # the ingestion contract's default bound
MAX_ID_CHARS = 200


def utc(value: datetime) -> datetime:
    """An instant in UTC; one without a zone is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Transaction(BaseModel):
    """One card transaction (the contract's raw_transactions row); a negative amount is a refund."""

    model_config = ConfigDict(extra="forbid")

    ts: datetime = Field(description="when it happened; an instant without a zone is read as UTC")
    amount: float = Field(description="signed amount in the card's currency (refunds negative)")
    category: str | None = Field(default=None, max_length=100, description="merchant category")
    channel: str | None = Field(default=None, max_length=100, description="online, in_store, atm, ...")
    customer_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS,
                                    description="optional; when given it must be the request's customer_id")

    _utc = field_validator("ts")(utc)

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or abs(value) > MAX_ABS_AMOUNT:
            raise ValueError(f"must be a finite amount within ±{MAX_ABS_AMOUNT:.0e}")
        return value


class Profile(BaseModel):
    """The customer's credit-card profile (the contract's raw_customers row, without the id)."""

    model_config = ConfigDict(extra="forbid")

    Avg_Credit_Limit: float = Field(ge=0)
    Total_Credit_Cards: int = Field(ge=0)
    Total_visits_bank: int = Field(ge=0)
    Total_visits_online: int = Field(ge=0)
    Total_calls_made: int = Field(ge=0)


class ProfileRow(Profile):
    """A profile with its customer (an events batch carries several)."""

    customer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)


class CustomerRequest(BaseModel):
    """A customer by id (the latest published features), or by id with its raw history and profile as of a date."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="the bank's customer key")
    as_of: date | None = Field(default=None, description="the day the features are built as of (inclusive, UTC); required "
                               "with transactions; with an id alone it must be the published day when given")
    transactions: list[Transaction] | None = Field(default=None, max_length=MAX_TRANSACTIONS,
                                                   description="the customer's transactions up to as_of")
    profile: Profile | None = Field(default=None, description="the customer's profile (with transactions only)")

    @model_validator(mode="after")
    def _consistent(self) -> CustomerRequest:
        if self.transactions is None:
            if self.profile is not None:
                raise ValueError("profile needs transactions: a customer by id alone is scored on the published features")
            return self
        if not self.transactions:
            raise ValueError("transactions is empty: send the customer's history, or no transactions to use the published features")
        if self.as_of is None:
            raise ValueError("as_of is required with transactions (the day the features are built as of)")
        end = datetime.combine(self.as_of, time.max, tzinfo=UTC)
        for i, row in enumerate(self.transactions):
            if row.customer_id is not None and row.customer_id != self.customer_id:
                raise ValueError(f"transactions[{i}].customer_id is {row.customer_id!r}, not the request's {self.customer_id!r}")
            if row.ts > end:
                raise ValueError(f"transactions[{i}].ts {row.ts.isoformat()} is after as_of {self.as_of}")
        return self


class SimilarRequest(CustomerRequest):
    k: int = Field(default=10, ge=1, le=100, description="how many similar customers")


class EventsRequest(BaseModel):
    """A batch of transaction events (and profiles) from a stream; ``as_of`` is the stream's clock."""

    model_config = ConfigDict(extra="forbid")

    as_of: datetime = Field(description="the stream's clock: no event of the batch is later")
    rescore: bool = Field(default=True, description="false while loading history: store the events, score nobody")
    transactions: list[Transaction] = Field(default_factory=list, max_length=50_000)
    customers: list[ProfileRow] = Field(default_factory=list, max_length=50_000, description="profile rows: customer_id and the profile")

    _utc = field_validator("as_of")(utc)

    @model_validator(mode="after")
    def _consistent(self) -> EventsRequest:
        for i, row in enumerate(self.transactions):
            if row.customer_id is None:
                raise ValueError(f"transactions[{i}].customer_id is required in an events batch")
            if row.ts > self.as_of:
                raise ValueError(f"transactions[{i}].ts {row.ts.isoformat()} is after as_of {self.as_of.isoformat()}")
        return self


class ModelRef(BaseModel):
    family: str
    registered_model: str
    version: str
    candidate: str
    label: str


class Prediction(BaseModel):
    """What every scoring endpoint returns: the customer, the day and source of its features, the champion that
    scored it, and ``scores``: the family's columns exactly as named in ``scored_customers``."""

    request_id: str
    customer_id: str
    as_of: str
    source: str = Field(description="published (the batch features of that day) or request (built from the request's rows)")
    model: ModelRef
    scores: dict[str, Any]


class Reason(BaseModel):
    feature: str
    logodds: float


class ChurnPrediction(Prediction):
    probability: float | None
    risk_band: str | None
    threshold: float
    horizon_days: int | None
    reasons: list[Reason]
    counterfactual: str | None
    counterfactual_probability: float | None


class OfferUplift(BaseModel):
    offer: str
    uplift: float | None
    quadrant: str | None


class UpliftPrediction(Prediction):
    best_offer: str | None
    uplift: float | None
    quadrant: str | None
    offers: list[OfferUplift]


class Neighbour(BaseModel):
    customer_id: str
    similarity: float


class SimilarCustomers(Prediction):
    neighbours: list[Neighbour]
    index: str = Field(description="what was searched: the published day's embeddings (exact or tuned ANN) or the champion's own index")
