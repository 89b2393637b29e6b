"""The live at-risk feed: a stream of transaction events in, the customers whose churn risk crossed the threshold out.

The API feeds it batches from ``POST /events`` and serves ``snapshot()`` as JSON and as the HTML page
``GET /at-risk``. Scoring is not done here: the API passes its own raw-mode churn scoring (the batch
feature builder and champion), so a streamed customer is scored exactly as the nightly batch would
score the same history. Pure Python + pandas: no FastAPI, no Dagster.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from customer_intel.serving.jsonsafe import json_value

ScoreFn = Callable[[pd.DataFrame, pd.DataFrame | None, pd.Timestamp], pd.DataFrame]
"""``score(transactions, customers, as_of)`` -> one row per customer with a purchase on or before ``as_of``, with the
``scored_customers`` churn columns (``customer_id``, ``churn_probability``, ``churn_risk_band``, ``churn_reasons``,
``churn_reason_1..3``, ``churn_counterfactual``, ``churn_counterfactual_probability``, ``churn_model``, ...)."""

REQUIRED_COLUMNS = ("customer_id", "ts", "amount")
OPTIONAL_COLUMNS = ("category", "channel")
ROW_FIELDS = {  # feed row field -> scored_customers column
    "probability": "churn_probability",
    "risk_band": "churn_risk_band",
    "reasons": "churn_reasons",
    "reason_1": "churn_reason_1",
    "reason_2": "churn_reason_2",
    "reason_3": "churn_reason_3",
    "counterfactual": "churn_counterfactual",
    "counterfactual_probability": "churn_counterfactual_probability",
    "model": "churn_model",
}


def utc_instant(value, what: str = "as_of") -> pd.Timestamp:
    """An instant in UTC; one without a zone is read as UTC (as the API's schemas do)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} {value!r} is not an instant: {err}") from None
    if ts is pd.NaT:
        raise ValueError(f"{what} is missing (NaT)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _optional_text(values) -> list:
    """Category/channel values as interned strings or None (one shared object per distinct value keeps events small)."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else sys.intern(str(v)) for v in values]


class FeedBusy(RuntimeError):
    """Another batch is being ingested (``ingest(..., wait=False)``): the caller should retry shortly."""


class LiveFeed:
    """Every event of every customer seen, and the customers whose latest churn probability is at or above ``threshold``.

    A customer *crosses* when a rescore takes it from below the threshold (or never scored) to at or
    above it: it enters the feed with ``crossed_at`` = the simulated clock (the batch's ``as_of``) and
    keeps that instant while it stays at risk; each later rescore refreshes its probability, band,
    reasons, counterfactual and model. It *recovers* (leaves the feed) when a rescore puts it back
    below. A score without a probability (a missing input) is no news: the customer's state stays.
    The feed shows at most ``max_rows`` customers, the latest crossings first; older crossings past
    that are dropped from the display (counted in ``dropped_total``) but still count as at risk, so
    they do not "cross" again on every rescore.

    Scoring (``ingest(..., rescore=True)``): the customers touched by the batch (events or profile),
    plus every known customer once per simulated UTC day (the first rescoring batch of a day; also a
    batch with neither events nor profiles whose clock moved past the last full rescore: the end-of-stream tick).
    Risk rises while a customer stays quiet, so most crossings happen in those full rescores, not
    when an event arrives. ``score`` is called once per ingest, with one frame for all of them.

    Memory: every event is kept, for good - the feature builder needs each customer's whole history
    (RFM's ``T`` is days since the *first* purchase, ``frequency`` counts every repeat purchase day),
    so a per-customer cap on events would silently change the features and the scores; there is
    none. An event costs about 200 bytes (a tuple of the instant in ns, the amount and interned
    category/channel strings, kept in an insertion-ordered dict that also drops exact duplicates):
    ~200 MB per million events, plus one profile dict per customer. A full rescore also builds a
    DataFrame of every event once a simulated day. Size the process for the stream's whole
    history, or ``reset()`` it; a bank-scale stream belongs to the batch pipeline, not to this feed.

    Thread-safe: the API calls it from a thread pool. Ingests run one at a time (the clock and the
    crossings are sequential by nature); ``snapshot()`` takes only the short state lock, so the
    page does not wait for a rescore in progress.
    """

    def __init__(self, score: ScoreFn, threshold: float, *, max_rows: int = 500):
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if int(max_rows) < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
        self.score = score
        self.threshold = float(threshold)
        self.max_rows = int(max_rows)
        self._ingesting = threading.Lock()  # one ingest at a time, held while scoring
        self._state = threading.Lock()  # short: every read or write of the fields below
        self.reset()

    def reset(self) -> None:
        """Forget every event, profile and crossing, and the clock (a new stream starts)."""
        with self._ingesting, self._state:
            self._events: dict[str, dict[tuple, None]] = {}  # customer -> {(ts_ns, amount, category, channel): None}, in arrival order
            self._n_events = 0
            self._columns: set[str] = set()  # optional columns any batch carried
            self._profiles: dict[str, dict] = {}
            self._as_of: pd.Timestamp | None = None
            self._full_as_of: pd.Timestamp | None = None  # the clock of the last rescore of every customer
            self._at_risk: dict[str, int] = {}  # customer -> crossed_at (ns); shown or dropped from the display
            self._rows: dict[str, dict] = {}  # the displayed feed
            self._crossed_total = 0
            self._recovered_total = 0
            self._dropped_total = 0

    # --- ingest -----------------------------------------------------------------------------------------------------
    def ingest(self, transactions: pd.DataFrame | None, customers: pd.DataFrame | None, as_of, *, rescore: bool = True,
               wait: bool = True) -> dict:
        """Store a batch of events and profiles at the clock ``as_of``; rescore; report what changed.

        Refused (ValueError, nothing stored) when ``as_of`` is before the clock or an event is after ``as_of``.
        A re-sent batch is idempotent: its exact duplicate rows are dropped (``duplicates``), its customers rescored.
        If ``score`` raises, the events stay stored and the error propagates; re-sending the batch scores them.
        Returns ``received`` (new events), ``duplicates``, ``customers_known`` (customers with an event), ``scored`` (rows
        the score returned), the ``crossed`` and ``recovered`` ids, ``at_risk`` (customers at risk now, shown or not) and
        ``as_of`` (ISO). ``wait=False``: raise ``FeedBusy`` at once instead of queueing behind a batch being ingested (the API
        does, so a stream cannot tie up its worker threads while a full rescore runs).
        """
        clock = utc_instant(as_of)
        cids, ts_ns, amounts, optional = _batch(transactions)
        profiles = _latest_profiles(customers)
        if not self._ingesting.acquire(blocking=wait):
            raise FeedBusy("another events batch is being scored")
        with contextlib.ExitStack() as held:
            held.callback(self._ingesting.release)  # one ingest at a time, released however this ends
            with self._state:
                if self._as_of is not None and clock < self._as_of:
                    raise ValueError(f"as_of {clock.isoformat()} is before the feed's clock {self._as_of.isoformat()}: "
                                     "a stream's clock never goes backwards (reset the feed to replay)")
                late = np.flatnonzero(ts_ns > clock.value)
                if len(late):
                    first = int(late[0])
                    raise ValueError(f"{len(late)} event(s) after as_of {clock.isoformat()}; the first is customer {cids[first]} at "
                                     f"{pd.Timestamp(int(ts_ns[first]), tz='UTC').isoformat()}: send a batch's as_of at or after "
                                     "its last event")
                received = self._store(cids, ts_ns, amounts, optional)
                self._profiles.update(profiles)
                self._as_of = clock
                full = rescore and (self._full_as_of is None or clock.normalize() > self._full_as_of.normalize()
                                    or (not len(cids) and not profiles and clock > self._full_as_of))
                if full:
                    ids = list(self._events)
                elif rescore:
                    ids = [c for c in dict.fromkeys([*cids, *profiles]) if c in self._events]
                else:
                    ids = []
                history, profile_frame = self._frames(ids) if ids else (None, None)
            crossed: list[str] = []
            recovered: list[str] = []
            scored = 0
            if ids:
                scores = self.score(history, profile_frame, clock)
                with self._state:
                    scored, crossed, recovered = self._apply(scores, clock)
            with self._state:
                if full:
                    self._full_as_of = clock
                return {"received": received, "duplicates": len(cids) - received, "customers_known": len(self._events),
                        "scored": scored, "crossed": crossed, "recovered": recovered, "at_risk": len(self._at_risk),
                        "as_of": clock.isoformat()}

    def _store(self, cids: np.ndarray, ts_ns: np.ndarray, amounts: np.ndarray, optional: dict[str, list]) -> int:
        self._columns.update(optional)
        categories = optional.get("category") or [None] * len(cids)
        channels = optional.get("channel") or [None] * len(cids)
        before = self._n_events
        for cid, ts, amount, category, channel in zip(cids.tolist(), ts_ns.tolist(), amounts.tolist(), categories, channels):
            events = self._events.get(cid)
            if events is None:
                events = self._events[sys.intern(cid)] = {}
            key = (ts, amount, category, channel)
            if key not in events:
                events[key] = None
                self._n_events += 1
        return self._n_events - before

    def _frames(self, ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The whole history of ``ids`` as a raw transactions frame, and their latest profiles (None when none has one)."""
        counts = [len(self._events[c]) for c in ids]
        rows = [key for c in ids for key in self._events[c]]
        ts, amount, category, channel = zip(*rows) if rows else ((), (), (), ())
        history = pd.DataFrame({"customer_id": np.repeat(np.array(ids, dtype=object), counts),
                                "ts": pd.to_datetime(np.asarray(ts, dtype="int64"), utc=True),
                                "amount": np.asarray(amount, dtype=float)})
        for name, values in (("category", category), ("channel", channel)):
            if name in self._columns:
                history[name] = pd.Series(values, dtype=object)
        profiles = [{"customer_id": c, **self._profiles[c]} for c in ids if c in self._profiles]
        return history, (pd.DataFrame(profiles) if profiles else None)

    def _apply(self, scores: pd.DataFrame, clock: pd.Timestamp) -> tuple[int, list[str], list[str]]:
        missing = [c for c in ("customer_id", "churn_probability") if c not in scores.columns]
        if missing:
            raise ValueError(f"the score function returned no {', '.join(missing)} column: it must return the scored_customers "
                             "churn columns")
        crossed, recovered = [], []
        scored_at = datetime.now(UTC).isoformat()
        for record in scores.to_dict("records"):
            cid = str(record["customer_id"])
            probability = json_value(record["churn_probability"])
            if probability is None:
                continue  # no probability (a missing input): no news about this customer
            if probability >= self.threshold:
                if cid not in self._at_risk:
                    self._at_risk[cid] = clock.value
                    self._crossed_total += 1
                    crossed.append(cid)
                    self._rows[cid] = {"customer_id": cid}
                row = self._rows.get(cid)
                if row is not None:  # None: an older crossing dropped from the display, still at risk
                    row.update({field: json_value(record.get(column)) for field, column in ROW_FIELDS.items()})
                    row["crossed_at"] = pd.Timestamp(self._at_risk[cid], tz="UTC").isoformat()
                    row["scored_at"] = scored_at
            elif cid in self._at_risk:
                del self._at_risk[cid]
                self._rows.pop(cid, None)
                self._recovered_total += 1
                recovered.append(cid)
        if len(self._rows) > self.max_rows:
            for cid in self._ordered()[self.max_rows:]:
                del self._rows[cid]
                self._dropped_total += 1
        return len(scores), crossed, recovered

    def _ordered(self) -> list[str]:
        """Displayed customers, latest crossing first, then the highest probability, then the id (a stable order)."""
        return sorted(self._rows, key=lambda c: (-self._at_risk[c], -(self._rows[c]["probability"] or 0.0), c))

    # --- read -------------------------------------------------------------------------------------------------------
    def snapshot(self, limit: int | None = None) -> dict:
        """The feed as JSON-safe data: the clock, the counters and up to ``limit`` at-risk rows (latest crossings first)."""
        if limit is not None and int(limit) < 0:
            raise ValueError(f"limit must be >= 0, got {limit!r}")
        with self._state:
            ids = self._ordered()
            if limit is not None:
                ids = ids[: int(limit)]
            return {"as_of": self._as_of.isoformat() if self._as_of is not None else None,
                    "threshold": self.threshold,
                    "customers_known": len(self._events),
                    "events": self._n_events,
                    "crossed_total": self._crossed_total,
                    "recovered_total": self._recovered_total,
                    "dropped_total": self._dropped_total,
                    "at_risk_total": len(self._at_risk),
                    "at_risk": [dict(self._rows[c]) for c in ids]}


def _batch(transactions: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, list]]:
    """A batch's customer ids, instants (ns since the epoch, UTC), amounts and optional columns, validated."""
    if transactions is None or not len(transactions):
        return np.array([], dtype=object), np.array([], dtype="int64"), np.array([], dtype=float), {}
    missing = [c for c in REQUIRED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack the column(s) {', '.join(missing)}: events need {', '.join(REQUIRED_COLUMNS)}")
    if transactions["customer_id"].isna().any():
        raise ValueError(f"{int(transactions['customer_id'].isna().sum())} transaction(s) without a customer_id")
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(transactions["ts"], utc=True))
    except (TypeError, ValueError) as err:
        raise ValueError(f"transactions.ts is not a column of instants: {err}") from None
    if ts.isna().any():
        raise ValueError(f"{int(ts.isna().sum())} transaction(s) without a ts")
    amounts = pd.to_numeric(transactions["amount"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(amounts).all():
        first = int(np.flatnonzero(~np.isfinite(amounts))[0])
        raise ValueError(f"transactions.amount must be a finite number: row {first} is {transactions['amount'].iloc[first]!r}")
    optional = {c: _optional_text(transactions[c].tolist()) for c in OPTIONAL_COLUMNS if c in transactions.columns}
    return transactions["customer_id"].astype(str).to_numpy(dtype=object), ts.as_unit("ns").asi8, amounts, optional


def _latest_profiles(customers: pd.DataFrame | None) -> dict[str, dict]:
    """customer_id -> its profile fields, the last row per customer winning (by ``valid_from`` when the rows carry it)."""
    if customers is None or not len(customers):
        return {}
    if "customer_id" not in customers.columns:
        raise ValueError("customers lack the customer_id column")
    if customers["customer_id"].isna().any():
        raise ValueError(f"{int(customers['customer_id'].isna().sum())} customer row(s) without a customer_id")
    rows = customers.sort_values("valid_from", kind="stable") if "valid_from" in customers.columns else customers
    latest = rows.drop_duplicates("customer_id", keep="last")
    return {str(r.pop("customer_id")): r for r in latest.to_dict("records")}
