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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from customer_intel.engine import TableInput, column_types, customer_block, has_rows, ident, quote, register, session, shard_predicate
from customer_intel.features.segments import add_rfm_scores

DAY = pd.Timedelta(days=1)
TREND_WINDOW_DAYS = 90
DAY_BUCKET = 512  # days per purchase-day bitmap (64 bytes of state per customer and bucket)
_US_PER_DAY = 86_400_000_000
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
    "profile_basis": "where the profile attributes come from: valid_from (as of the date), snapshot, snapshot_excluded or none",
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


def profile_attributes(columns) -> list[str]:
    """The columns of a feature frame that come from the bank's customers table as they are (its profile
    attributes), in frame order: every column that is not one of the builder's own (``COLUMN_DESCRIPTIONS``,
    the ``channel_share_*`` family)."""
    return [c for c in columns if c not in COLUMN_DESCRIPTIONS and not str(c).startswith("channel_share_")]


VALIDITY_COLUMN = "valid_from"  # a customers table with this column holds versions of each profile
PROFILE_BASES = {
    "valid_from": "profile attributes as of the date (the version valid then)",
    "snapshot": "profile attributes from the current snapshot (the table has no valid_from column)",
    "snapshot_excluded": "a snapshot profile table exists, but its attributes are left out (they may postdate the as-of day)",
    "none": "no profile table",
}
# Population-relative columns: for people reading the table, never model inputs (a customer's
# score would depend on who else is scored with them).
DISPLAY_ONLY_COLUMNS = ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment")


class FeatureInputError(ValueError):
    """The raw tables cannot produce features (e.g. neither transactions nor customers)."""


@dataclass(frozen=True)
class FeatureFrame:
    """Features plus what a person needs to read them."""

    frame: pd.DataFrame
    mode: str  # "transactional" or "profile"
    as_of: pd.Timestamp
    notes: tuple[str, ...]
    channels: tuple[str, ...] = ()  # the channel vocabulary of the channel_share_* columns
    profile_basis: str = "none"  # a key of PROFILE_BASES


def as_of_day(as_of) -> pd.Timestamp:
    """Normalise a date-like to midnight UTC of that day."""
    ts = pd.Timestamp(as_of)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize()


def channel_slug(value: str) -> str:
    """The suffix of a channel's ``channel_share_<slug>`` column (lower case, non-alphanumerics as ``_``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in value.strip().lower())


def _instant(day: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{day.isoformat()}'"


def _transactions_view(con, transactions: TableInput, name: str, end: pd.Timestamp, start: pd.Timestamp | None = None,
                       customers: str = "TRUE") -> None:
    """``name``: the transactions in ``[start, end)`` with ``e``, the whole days between each and the
    window's last day (0 on that day, 1 the day before; days are UTC). An optional column the table
    lacks (category, channel) is there as nulls, so every query sees one shape.

    ``e`` is integer arithmetic on the instant (no calendar conversion per row) and never negative
    inside the window, so day numbers need no floor of a negative quotient. ``customers``: a SQL
    predicate on ``customer_id`` choosing whose transactions are in the view (e.g. a scoring shard).
    """
    register(con, f"{name}_src", transactions)
    present = set(column_types(con, f"{name}_src"))
    chosen = [f"({customers})"] if customers != "TRUE" else []
    if customer_block() in customers:
        # a shard's predicate hashes the id (md5): on each distinct customer once, not on every transaction, then a
        # semi-join of the transactions on the chosen ids
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_ids AS SELECT DISTINCT CAST(customer_id AS VARCHAR) AS customer_id "
                    f"FROM {name}_src WHERE ts < {_instant(end)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_who AS SELECT customer_id FROM {name}_ids WHERE ({customers})")
        chosen = [f"CAST(customer_id AS VARCHAR) IN (SELECT customer_id FROM {name}_who)"]
    where = " AND ".join([*([f"ts >= {_instant(start)}"] if start is not None else []), f"ts < {_instant(end)}", *chosen])
    extra = "".join(f", CAST({c if c in present else 'NULL'} AS VARCHAR) AS {c}" for c in ("category", "channel"))
    last_us = int((end - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)) - 1
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {name} AS
        SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(({last_us} - epoch_us(ts)) // {_US_PER_DAY} AS INTEGER) AS e,
               CAST(amount AS DOUBLE) AS amount{extra}
        FROM {name}_src WHERE {where}""")


def _channel_vocabulary(con, channels: Sequence[str] | None) -> list[str]:
    if channels is not None:
        return list(channels)
    return [row[0] for row in con.execute("SELECT DISTINCT channel FROM tx WHERE channel IS NOT NULL ORDER BY 1").fetchall()]


def _transactional_sql(has_category: bool, channels: list[str]) -> str:
    """One query over ``tx`` (``e`` = days before the as-of day): one row per customer with a purchase day.

    Purchase days are counted exactly without a customer-day table (as many rows as transactions):
    each customer's days fall into buckets of ``DAY_BUCKET`` days, a bucket keeps a bitmap of its
    purchase days, and the set bits are summed. Only the first purchase day's net spend needs a
    second look at the transactions (a join on the customer's first day).
    """
    w, b = TREND_WINDOW_DAYS, DAY_BUCKET
    channel_counts = "".join(f", count(*) FILTER (WHERE channel = {quote(c)}) AS ch{i}" for i, c in enumerate(channels))
    channel_sums = "".join(f", sum(ch{i}) AS ch{i}" for i in range(len(channels)))
    channel_cols = "".join(f", ch{i} / n_tx AS {ident('channel_share_' + channel_slug(c))}" for i, c in enumerate(channels))
    category_cte = category_join = category_cols = ""
    if has_category:
        category_cte = """,
    cat_n AS (SELECT customer_id, category, count(*) AS n FROM tx WHERE amount >= 0 AND category IS NOT NULL GROUP BY ALL),
    cat AS (
        SELECT customer_id, -list_sum(list((n / tot) * log2(n / tot) ORDER BY category)) AS entropy,
               first(category ORDER BY n DESC, category) AS top
        FROM (SELECT *, sum(n) OVER (PARTITION BY customer_id) AS tot FROM cat_n) GROUP BY customer_id)"""
    # the entropy's terms summed in category order: a plain sum() adds them in whatever order the parallel window and
    # aggregate hand them over, so a re-run could differ in the last bit and a re-published table not be byte-identical
        category_join = " LEFT JOIN cat USING (customer_id)"
        category_cols = ", coalesce(cat.entropy, 0.0) AS category_entropy, cat.top AS top_category"
    return f"""
    WITH buckets AS (
        SELECT customer_id, e // {b} AS bucket,
               bit_count(bitstring_agg(e % {b}, 0, {b - 1}) FILTER (WHERE amount >= 0)) AS n_days,
               bit_count(bitstring_agg(e, 0, {w - 1}) FILTER (WHERE amount >= 0 AND e < {w})) AS recent_days,
               max(e) FILTER (WHERE amount >= 0) AS first_e, min(e) FILTER (WHERE amount >= 0) AS last_e,
               sum(amount) AS total_net,
               sum(amount) FILTER (WHERE e < {w}) AS spend_recent,
               sum(amount) FILTER (WHERE e >= {w} AND e < {2 * w}) AS spend_previous,
               count(*) FILTER (WHERE amount >= 0) AS n_purchases, sum(amount) FILTER (WHERE amount >= 0) AS purchase_spend,
               count(*) AS n_tx, count(*) FILTER (WHERE amount < 0) AS n_refund{channel_counts}
        FROM tx GROUP BY customer_id, bucket),
    per AS (
        SELECT customer_id, sum(n_days) AS n_days, coalesce(sum(recent_days), 0) AS recent_days,
               max(first_e) AS first_e, min(last_e) AS last_e, sum(total_net) AS total_net,
               coalesce(sum(spend_recent), 0.0) AS spend_recent, coalesce(sum(spend_previous), 0.0) AS spend_previous,
               sum(n_purchases) AS n_purchases, coalesce(sum(purchase_spend), 0.0) AS purchase_spend,
               sum(n_tx) AS n_tx, sum(n_refund) AS n_refund{channel_sums}
        FROM buckets GROUP BY customer_id HAVING sum(n_days) > 0),
    first_day AS (
        SELECT customer_id, sum(amount) AS first_net FROM tx JOIN per USING (customer_id) WHERE tx.e = per.first_e
        GROUP BY customer_id){category_cte}
    SELECT customer_id,
           CAST(last_e AS BIGINT) AS recency,
           CAST(n_days - 1 AS BIGINT) AS frequency,
           total_net / n_days AS monetary,
           CAST(first_e - last_e AS BIGINT) AS t_x,
           CAST(first_e AS BIGINT) AS "T",
           CASE WHEN n_days > 1 THEN (total_net - first_net) / (n_days - 1) ELSE 0.0 END AS monetary_value,
           total_net AS total_spend,
           spend_recent AS spend_{w}d,
           spend_previous AS spend_prev_{w}d,
           CASE WHEN abs(spend_recent) + abs(spend_previous) > 0
                THEN (spend_recent - spend_previous) / (abs(spend_recent) + abs(spend_previous)) ELSE 0.0 END AS spend_trend,
           CAST(recent_days AS BIGINT) AS purchase_days_{w}d,
           purchase_spend / greatest(n_purchases, 1) AS avg_ticket,
           n_refund / n_tx AS refund_share{category_cols}{channel_cols}
    FROM per JOIN first_day USING (customer_id){category_join}
    ORDER BY customer_id"""


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("customer_id", "top_category"):
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame


def _transactional_frame(con, channels: Sequence[str] | None) -> list[str]:
    """Create the temp table ``feats`` (one row per buyer) from ``tx`` (cut at the as-of day); returns the channel vocabulary."""
    has_category, has_channel = con.execute(
        "SELECT count(category) FILTER (WHERE amount >= 0) > 0, count(channel) > 0 FROM tx").fetchone()
    vocabulary = _channel_vocabulary(con, channels) if has_channel or channels else []
    con.execute(f"CREATE OR REPLACE TEMP TABLE feats AS {_transactional_sql(bool(has_category), vocabulary)}")
    return vocabulary


def transactional_features(transactions: TableInput, as_of, channels: Sequence[str] | None = None, con=None) -> pd.DataFrame:
    """RFM, the (x, t_x, T) triple and behaviour for every customer with a purchase by ``as_of``.

    ``channels`` fixes the ``channel_share_*`` columns (the vocabulary seen at training time);
    by default they are the channels of transactions up to ``as_of``, never later ones.
    """
    day0 = as_of_day(as_of)
    with session(con) as con:
        _transactions_view(con, transactions, "tx", end=day0 + DAY)
        _transactional_frame(con, channels)
        frame = _typed(con.execute("SELECT * FROM feats").df())
    return frame.set_index("customer_id")


def _profile_view(con, customers: TableInput, as_of: pd.Timestamp, who: str = "TRUE") -> str:
    """``profile``: one row per customer as of ``as_of`` (the version valid then), or the snapshot as given;
    ``who``: a SQL predicate on ``customer_id`` choosing the customers (e.g. a scoring shard)."""
    register(con, "profile_src", customers)
    columns = column_types(con, "profile_src")
    cast_id = "REPLACE (CAST(customer_id AS VARCHAR) AS customer_id)"
    if VALIDITY_COLUMN in columns:
        con.execute(f"""CREATE OR REPLACE TEMP VIEW profile AS
            SELECT * EXCLUDE ({VALIDITY_COLUMN}) {cast_id} FROM profile_src
            WHERE CAST({VALIDITY_COLUMN} AS TIMESTAMPTZ) < {_instant(as_of + DAY)} AND ({who})
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY {VALIDITY_COLUMN} DESC) = 1""")
        return "valid_from"
    con.execute(f"CREATE OR REPLACE TEMP VIEW profile AS SELECT * {cast_id} FROM profile_src WHERE {who}")
    return "snapshot"


def _check_ids_join(con, n_profile: int) -> None:
    """Refuse a profile table whose ids do not meet the transactions' ids (e.g. '0000007' vs 7)."""
    matched = con.execute("SELECT count(*) FROM feats SEMI JOIN profile USING (customer_id)").fetchone()[0]
    padded = con.execute("""SELECT count(*) FROM (SELECT DISTINCT ltrim(customer_id, '0') AS k FROM feats)
                            SEMI JOIN (SELECT ltrim(customer_id, '0') AS k FROM profile) USING (k)""").fetchone()[0]
    if matched == 0 or padded > 2 * matched:
        tx_ids = [r[0] for r in con.execute("SELECT customer_id FROM feats LIMIT 3").fetchall()]
        profile_ids = [r[0] for r in con.execute("SELECT customer_id FROM profile LIMIT 3").fetchall()]
        hint = (f"; {padded:,} would match if leading zeros were ignored: write the ids the same way in both exports "
                "(as text with the same padding, or as integers in both)") if padded > matched else ""
        raise FeatureInputError(
            f"customer ids of raw_customers and raw_transactions do not match: {matched:,} of {n_profile:,} profile rows "
            f"join a customer with purchases (transactions: {tx_ids}, customers: {profile_ids}){hint}. "
            "Nothing was written; fix the ids or switch the profile table off (CUSTOMER_INTEL_CUSTOMERS_PATH=none)."
        )


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
    transactions: TableInput | None,
    customers: TableInput | None,
    as_of,
    *,
    channels: Sequence[str] | None = None,
    snapshot_profile: bool = True,
    shard: tuple[int, int] = (0, 1),
    con=None,
) -> FeatureFrame:
    """Per-customer features as of ``as_of`` (inclusive day), for training and scoring alike.

    With transactions: one row per customer with a purchase on or before ``as_of``, profile
    attributes joined when ``customers`` is given: the version valid on ``as_of`` when the table
    has a ``valid_from`` column, else the snapshot as given (``snapshot_profile=False`` leaves a
    snapshot out, as training does for a past cutoff). Without transactions: profile mode.
    ``channels`` fixes the channel vocabulary (a scorer passes the one it was trained with).
    The tables may be pandas or Arrow tables, or ``ParquetFile``s read by the engine in place.
    ``shard=(s, n)`` builds the rows of the customers in scoring shard ``s`` of ``n`` only
    (``engine.shard_predicate``), each exactly as the whole bank's build gives it: the channel
    vocabulary comes from every customer's transactions.
    """
    day0 = as_of_day(as_of)
    notes: list[str] = []
    who = shard_predicate(*shard)
    with session(con) as con:
        basis = _profile_view(con, customers, day0, who) if has_rows(customers) else "none"
        use_profile = basis == "valid_from" or (basis == "snapshot" and snapshot_profile)
        if basis == "snapshot" and not snapshot_profile:
            basis = "snapshot_excluded"
            notes.append(f"profile attributes left out: raw_customers is a snapshot (no {VALIDITY_COLUMN} column), "
                         f"so its values may postdate {day0.date()}")
        vocabulary: list[str] = []
        if has_rows(transactions):
            mode = "transactional"
            if who != "TRUE" and channels is None:  # every shard gets the whole bank's channel columns
                _transactions_view(con, transactions, "tx", end=day0 + DAY)
                channels = _channel_vocabulary(con, None)
            _transactions_view(con, transactions, "tx", end=day0 + DAY, customers=who)
            vocabulary = _transactional_frame(con, channels)
            if con.execute("SELECT count(*) FROM feats").fetchone()[0] == 0:
                raise FeatureInputError(f"no purchases on or before {day0.date()}: nothing to build features from")
            if use_profile:
                n_profile = con.execute("SELECT count(*) FROM profile").fetchone()[0]
                if n_profile:
                    _check_ids_join(con, n_profile)
                without = con.execute("SELECT count(*) FROM profile ANTI JOIN feats USING (customer_id)").fetchone()[0]
                if without:
                    notes.append(f"{without:,} customers in raw_customers have no purchase by {day0.date()} and are not scored")
                query = "SELECT f.*, p.* EXCLUDE (customer_id) FROM feats f LEFT JOIN profile p USING (customer_id) ORDER BY f.customer_id"
            else:
                query = "SELECT * FROM feats"
                if basis == "none":
                    notes.append("raw_customers not configured: profile attributes switched off")
            feats = _typed(con.execute(query).df()).set_index("customer_id")
        elif basis != "none":
            mode = "profile"
            profile = con.execute("SELECT * FROM profile").df()
            if profile.empty:
                raise FeatureInputError(f"raw_customers has no profile valid on or before {day0.date()}")
            feats = profile_features(profile).join(profile.set_index(profile["customer_id"].astype("string")).drop(columns=["customer_id"]))
            basis = "valid_from" if basis == "valid_from" else "snapshot"
            notes.append(
                "profile mode: raw_transactions not configured, RFM are proxies from the credit-card profile; "
                "models that need a future period (CLTV, churn) are skipped"
            )
        else:
            raise FeatureInputError("neither raw_transactions nor raw_customers has rows: configure at least one")

    feats = add_rfm_scores(feats, recency_lower_is_better=True)
    feats.insert(0, "as_of", day0)
    feats.insert(1, "feature_mode", mode)
    feats.insert(2, "profile_basis", basis)
    frame = feats.reset_index()
    frame["customer_id"] = frame["customer_id"].astype("string")
    return FeatureFrame(frame=frame, mode=mode, as_of=day0, notes=tuple(notes), channels=tuple(vocabulary), profile_basis=basis)


def holdout_targets(transactions: TableInput, cutoff, horizon_days: int, con=None) -> pd.DataFrame:
    """Targets from the window after ``cutoff``: repeat purchase days and net spend in (cutoff, cutoff + horizon]."""
    day0 = as_of_day(cutoff)
    with session(con) as con:
        _transactions_view(con, transactions, "window_tx", start=day0 + DAY, end=day0 + DAY * (horizon_days + 1))
        frame = con.execute("""SELECT customer_id, CAST(count(DISTINCT e) FILTER (WHERE amount >= 0) AS BIGINT) AS holdout_purchases,
                                      sum(amount) AS holdout_spend FROM window_tx GROUP BY customer_id ORDER BY customer_id""").df()
    frame["customer_id"] = frame["customer_id"].astype("string")
    return frame.set_index("customer_id")


def calibration_holdout_frame(
    transactions: TableInput,
    customers: TableInput | None,
    cutoff,
    horizon_days: int,
    *,
    snapshot_profile: bool = True,
) -> pd.DataFrame:
    """Training frame: features as of ``cutoff`` (the scoring builder) and targets after it.

    Targets come only from transactions after the cutoff, so they are never a formula of the
    features; customers acquired after the cutoff are not in the frame.
    """
    with session() as con:
        features = build_customer_features(transactions, customers, cutoff, snapshot_profile=snapshot_profile, con=con).frame
        targets = holdout_targets(transactions, cutoff, horizon_days, con=con)
    frame = features.merge(targets, how="left", left_on="customer_id", right_index=True)
    frame["holdout_purchases"] = frame["holdout_purchases"].fillna(0).astype(np.int64)
    frame["holdout_spend"] = frame["holdout_spend"].fillna(0.0)
    frame["holdout_days"] = horizon_days
    return frame


def net_spend_to_date(features: pd.DataFrame) -> pd.Series | None:
    """Each customer's net spend up to the as-of day (``monetary`` x purchase days), None in profile mode
    (there ``monetary`` is a proxy of the credit limit, not money spent)."""
    if not {"monetary", "frequency"} <= set(features.columns):
        return None
    if "feature_mode" in features.columns and (features["feature_mode"] != "transactional").any():
        return None
    return pd.to_numeric(features["monetary"], errors="coerce") * (pd.to_numeric(features["frequency"], errors="coerce") + 1)
