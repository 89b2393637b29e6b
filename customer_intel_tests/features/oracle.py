"""The pandas feature builder the product shipped before the columnar engine, kept only as the test oracle.

The DuckDB builder in ``customer_intel.features.rfm`` must reproduce these columns exactly
(hand-computed tests, CDNOW and the synthetic bank). Never imported by the product.
"""

import numpy as np
import pandas as pd

from customer_intel.features.rfm import DAY, TREND_WINDOW_DAYS, as_of_day

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _slug(value: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower())


def _day_index(ts: pd.Series) -> np.ndarray:
    return ((ts - EPOCH) // DAY).to_numpy(dtype=np.int64)


def oracle_transactional_features(transactions: pd.DataFrame, as_of) -> pd.DataFrame:
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
        channels = sorted(tx["channel"].dropna().astype(str).unique())  # the fixed vocabulary: data up to as_of only
        chan = tx["channel"].astype("string").to_numpy()
        for name in channels:
            hits = np.bincount(codes, weights=(chan == name), minlength=n)[buyers]
            out[f"channel_share_{_slug(name)}"] = hits / n_tx
    return out


def oracle_holdout_targets(transactions: pd.DataFrame, cutoff, horizon_days: int) -> pd.DataFrame:
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


