"""The one feature builder: per-customer RFM, BG/NBD inputs and behaviour as of a date.

Training calls it with ``as_of`` = the calibration cutoff, scoring with ``as_of`` = the partition
date, so the two never drift apart. ``as_of`` is inclusive, as in lifetimes'
``observation_period_end``: transactions stamped on the as-of day count, later ones are ignored.

Definitions (time unit: days; a "purchase day" is a day with at least one amount >= 0 --
zero is a free or promotional purchase, as in the CDNOW log; refunds are negative amounts and
net into spend):

* ``frequency`` (x): repeat purchase days = purchase days - 1
* ``t_x``: days between the first and the last purchase day
* ``T``: days between the first purchase day and the as-of day (tenure)
* ``recency``: days since the last purchase day (marketing recency; equals ``T - t_x``)
* ``monetary``: net spend per purchase day (all purchase days)
* ``monetary_value``: net spend per repeat purchase day (the Gamma-Gamma input; 0 when x = 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.features.segments import add_rfm_scores

DAY = pd.Timedelta(days=1)
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
TREND_WINDOW_DAYS = 90
PROFILE_EPS = 1.0  # Recency proxy = 1 / (Total_calls_made + eps): 0 calls -> 1, 1 call -> 0.5

PROFILE_SCHEMA = {
    "Avg_Credit_Limit": "monetary proxy",
    "Total_visits_bank": "frequency proxy (with online visits)",
    "Total_visits_online": "frequency proxy (with bank visits)",
    "Total_calls_made": "recency proxy",
}


COLUMN_DESCRIPTIONS: dict[str, str] = {
    "customer_id": "the bank's customer key",
    "as_of": "features use data up to and including this day (UTC)",
    "feature_mode": "transactional, or profile (RFM proxies from the credit-card profile)",
    "recency": "days since the last purchase day (profile mode: min-max scaled 1/(calls + 1); lower = more recent)",
    "frequency": "repeat purchase days, x (profile mode: min-max scaled bank + online visits)",
    "monetary": "net spend per purchase day (profile mode: min-max scaled credit limit)",
    "t_x": "days from the first to the last purchase day",
    "T": "days from the first purchase day to as_of (tenure)",
    "monetary_value": "net spend per repeat purchase day (Gamma-Gamma input; 0 when x = 0)",
    "total_spend": "net spend up to as_of",
    f"spend_{TREND_WINDOW_DAYS}d": f"net spend in the last {TREND_WINDOW_DAYS} days",
    f"spend_prev_{TREND_WINDOW_DAYS}d": f"net spend in the {TREND_WINDOW_DAYS} days before those",
    "spend_trend": "(recent - previous) / (|recent| + |previous|), in [-1, 1]",
    f"purchase_days_{TREND_WINDOW_DAYS}d": f"purchase days in the last {TREND_WINDOW_DAYS} days",
    "avg_ticket": "mean amount of a purchase transaction",
    "refund_share": "share of transactions that are refunds",
    "category_entropy": "Shannon entropy (bits) of the purchase category mix",
    "top_category": "most frequent purchase category",
    "r_score": "recency quintile score, 5 = most recent",
    "f_score": "frequency quintile score, 5 = most frequent",
    "m_score": "monetary quintile score, 5 = highest",
    "rfm_score": "R, F and M scores as a three-digit code",
    "rfm_segment": "named RFM segment from the recency x frequency grid",
}


class FeatureInputError(ValueError):
    """The raw tables cannot produce features (e.g. neither transactions nor customers)."""


@dataclass(frozen=True)
class FeatureFrame:
    """Features plus what a person needs to read them."""

    frame: pd.DataFrame
    mode: str  # "transactional" or "profile"
    as_of: pd.Timestamp
    notes: tuple[str, ...]


def as_of_day(as_of) -> pd.Timestamp:
    """Normalise a date-like to midnight UTC of that day."""
    ts = pd.Timestamp(as_of)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize()


def _present(frame: pd.DataFrame | None) -> bool:
    return frame is not None and len(frame) > 0


def _day_index(ts: pd.Series) -> np.ndarray:
    return ((ts - EPOCH) // DAY).to_numpy(dtype=np.int64)


def transactional_features(transactions: pd.DataFrame, as_of) -> pd.DataFrame:
    """RFM, the (x, t_x, T) triple and behaviour for every customer with a purchase by ``as_of``."""
    day0 = as_of_day(as_of)
    as_of_idx = int((day0 - EPOCH) // DAY)
    tx = transactions.loc[transactions["ts"] < day0 + DAY]
    if tx.empty or not (tx["amount"] >= 0).any():
        return pd.DataFrame(index=pd.Index([], name="customer_id", dtype="string"))
    day = _day_index(tx["ts"])
    amount = tx["amount"].to_numpy(dtype=np.float64)
    codes, ids = pd.factorize(tx["customer_id"], sort=True)
    n = len(ids)
    is_purchase = amount >= 0

    # customer-day totals: purchase days and their net value
    frame = pd.DataFrame({"c": codes, "d": day, "a": amount, "p": is_purchase})
    daily = frame.groupby(["c", "d"], sort=True).agg(net=("a", "sum"), purchase=("p", "any")).reset_index()
    pdays = daily.loc[daily["purchase"]]
    per = pdays.groupby("c").agg(first=("d", "min"), last=("d", "max"), n_days=("d", "size"))
    first_net = pdays.groupby("c")["net"].first()  # days are sorted, so first() is the first purchase day

    total_net = np.bincount(codes, weights=amount, minlength=n)
    buyers = per.index.to_numpy()
    out = pd.DataFrame(index=pd.Index(ids[buyers], name="customer_id"))
    n_days = per["n_days"].to_numpy()
    frequency = n_days - 1
    out["recency"] = (as_of_idx - per["last"].to_numpy()).astype(np.int64)
    out["frequency"] = frequency.astype(np.int64)
    out["monetary"] = total_net[buyers] / n_days
    out["t_x"] = (per["last"] - per["first"]).to_numpy().astype(np.int64)
    out["T"] = (as_of_idx - per["first"].to_numpy()).astype(np.int64)
    repeat_net = total_net[buyers] - first_net.to_numpy()
    out["monetary_value"] = np.where(frequency > 0, repeat_net / np.maximum(frequency, 1), 0.0)
    out["total_spend"] = total_net[buyers]

    # behaviour: recent spend and its trend, ticket size, refunds
    recent = day > as_of_idx - TREND_WINDOW_DAYS
    previous = (day <= as_of_idx - TREND_WINDOW_DAYS) & (day > as_of_idx - 2 * TREND_WINDOW_DAYS)
    spend_recent = np.bincount(codes, weights=amount * recent, minlength=n)[buyers]
    spend_previous = np.bincount(codes, weights=amount * previous, minlength=n)[buyers]
    denom = np.abs(spend_recent) + np.abs(spend_previous)
    out[f"spend_{TREND_WINDOW_DAYS}d"] = spend_recent
    out[f"spend_prev_{TREND_WINDOW_DAYS}d"] = spend_previous
    out["spend_trend"] = np.divide(spend_recent - spend_previous, denom, out=np.zeros(len(denom)), where=denom > 0)
    recent_days = pdays.loc[pdays["d"] > as_of_idx - TREND_WINDOW_DAYS].groupby("c").size()
    out[f"purchase_days_{TREND_WINDOW_DAYS}d"] = recent_days.reindex(buyers, fill_value=0).to_numpy()
    n_purchases = np.bincount(codes, weights=is_purchase, minlength=n)[buyers]
    purchase_spend = np.bincount(codes, weights=np.where(is_purchase, amount, 0.0), minlength=n)[buyers]
    out["avg_ticket"] = purchase_spend / np.maximum(n_purchases, 1)
    n_tx = np.bincount(codes, minlength=n)[buyers]
    out["refund_share"] = np.bincount(codes, weights=amount < 0, minlength=n)[buyers] / n_tx

    if "category" in tx.columns and tx["category"].notna().any():
        cat = tx["category"].astype("string")
        counts = pd.crosstab(codes[is_purchase], cat.to_numpy()[is_purchase]).reindex(buyers, fill_value=0)
        shares = counts.to_numpy(dtype=float) / np.maximum(counts.to_numpy().sum(axis=1, keepdims=True), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["category_entropy"] = -np.nansum(np.where(shares > 0, shares * np.log2(shares), 0.0), axis=1)
        top = counts.columns.to_numpy()[counts.to_numpy().argmax(axis=1)]
        out["top_category"] = pd.array(np.where(counts.to_numpy().sum(axis=1) > 0, top, None), dtype="string")
    if "channel" in tx.columns and tx["channel"].notna().any():
        # one column per channel seen anywhere in the table, so training and scoring agree
        channels = sorted(transactions["channel"].dropna().astype(str).unique())
        chan = tx["channel"].astype("string").to_numpy()
        for name in channels:
            hits = np.bincount(codes, weights=(chan == name), minlength=n)[buyers]
            out[f"channel_share_{_slug(name)}"] = hits / n_tx
    return out


def _slug(value: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower())


def _min_max(values: pd.Series) -> pd.Series:
    lo, hi = values.min(), values.max()
    return (values - lo) / (hi - lo) if hi > lo else values * 0.0


def profile_features(customers: pd.DataFrame) -> pd.DataFrame:
    """Profile mode: seed-style RFM proxies of the credit-card profile schema, min-max scaled.

    Lower ``recency`` means more recent contact (as for transactional recency in days);
    higher ``frequency`` and ``monetary`` mean more engagement and value.
    """
    missing = [c for c in PROFILE_SCHEMA if c not in customers.columns]
    if missing:
        raise FeatureInputError(
            "profile mode needs the credit-card profile columns "
            f"{', '.join(PROFILE_SCHEMA)}; raw_customers lacks {', '.join(missing)}"
        )
    cols = {c: pd.to_numeric(customers[c], errors="coerce") for c in PROFILE_SCHEMA}
    out = pd.DataFrame(index=pd.Index(customers["customer_id"].astype("string"), name="customer_id"))
    out["recency"] = _min_max(1.0 / (cols["Total_calls_made"] + PROFILE_EPS)).to_numpy()
    out["frequency"] = _min_max(cols["Total_visits_bank"] + cols["Total_visits_online"]).to_numpy()
    out["monetary"] = _min_max(cols["Avg_Credit_Limit"]).to_numpy()
    return out


def build_customer_features(
    transactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    as_of,
) -> FeatureFrame:
    """Per-customer features as of ``as_of`` (inclusive day), for training and scoring alike.

    With transactions: one row per customer with a purchase on or before ``as_of``, profile
    attributes joined when ``customers`` is given. Without transactions: profile mode.
    """
    day0 = as_of_day(as_of)
    notes: list[str] = []
    if _present(transactions):
        mode = "transactional"
        feats = transactional_features(transactions, day0)
        if feats.empty:
            raise FeatureInputError(f"no purchases on or before {day0.date()}: nothing to build features from")
        if _present(customers):
            profile = customers.set_index(customers["customer_id"].astype("string")).drop(columns=["customer_id"])
            feats = feats.join(profile, how="left")
            without = int((~customers["customer_id"].astype("string").isin(feats.index)).sum())
            if without:
                notes.append(f"{without:,} customers in raw_customers have no purchase by {day0.date()} and are not scored")
        else:
            notes.append("raw_customers not configured: profile attributes switched off")
    elif _present(customers):
        mode = "profile"
        feats = profile_features(customers)
        profile = customers.set_index(customers["customer_id"].astype("string")).drop(columns=["customer_id"])
        feats = feats.join(profile, how="left")
        notes.append(
            "profile mode: raw_transactions not configured, RFM are proxies from the credit-card profile; "
            "models that need a future period (CLTV, churn) are skipped"
        )
    else:
        raise FeatureInputError("neither raw_transactions nor raw_customers has rows: configure at least one")

    feats = add_rfm_scores(feats, recency_lower_is_better=True)
    feats.insert(0, "as_of", day0)
    feats.insert(1, "feature_mode", mode)
    frame = feats.reset_index()
    frame["customer_id"] = frame["customer_id"].astype("string")
    return FeatureFrame(frame=frame, mode=mode, as_of=day0, notes=tuple(notes))


def holdout_targets(transactions: pd.DataFrame, cutoff, horizon_days: int) -> pd.DataFrame:
    """Targets from the window after ``cutoff``: repeat purchase days and net spend in (cutoff, cutoff + horizon]."""
    day0 = as_of_day(cutoff)
    start, end = day0 + DAY, day0 + DAY * (horizon_days + 1)
    tx = transactions.loc[(transactions["ts"] >= start) & (transactions["ts"] < end)]
    day = _day_index(tx["ts"])
    frame = pd.DataFrame({"customer_id": tx["customer_id"].astype("string").to_numpy(), "d": day, "a": tx["amount"].to_numpy()})
    frame["p"] = frame["a"] >= 0
    daily = frame.groupby(["customer_id", "d"]).agg(purchase=("p", "any"))
    purchases = daily.groupby(level="customer_id")["purchase"].sum()
    spend = frame.groupby("customer_id")["a"].sum()
    return pd.DataFrame({"holdout_purchases": purchases, "holdout_spend": spend}).fillna(0.0)


def calibration_holdout_frame(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None,
    cutoff,
    horizon_days: int,
) -> pd.DataFrame:
    """Training frame: features as of ``cutoff`` (the scoring builder) and targets after it.

    Targets come only from transactions after the cutoff, so they are never a formula of the
    features; customers acquired after the cutoff are not in the frame.
    """
    features = build_customer_features(transactions, customers, cutoff).frame
    targets = holdout_targets(transactions, cutoff, horizon_days)
    frame = features.merge(targets, how="left", left_on="customer_id", right_index=True)
    frame["holdout_purchases"] = frame["holdout_purchases"].fillna(0).astype(np.int64)
    frame["holdout_spend"] = frame["holdout_spend"].fillna(0.0)
    frame["holdout_days"] = horizon_days
    return frame
