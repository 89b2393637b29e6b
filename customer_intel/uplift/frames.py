"""The uplift training split: one row per customer and campaign, features as of the day before the send.

A randomised campaign is cross-sectional: everyone was assigned on the same day and observed over
the same window. So the split is a ``TimeSplit`` with ``holdout=True``:

- ``validation``: the train part (default 70% of the customers), where every choice is made by
  cross-validated Qini (each row carries its ``fold``; candidates predict it out of fold);
- ``test``: the held-out customers (stratified by offer x outcome), which only report;
- ``refit``: every customer's features as of the last data day, without labels: what the
  production model is fitted beside (on both labelled parts) and what the nightly path scores.

Features come from the one feature builder as of ``sent_at`` minus one day, so nothing on or
after the send day is seen. Profile attributes join as the version valid then when the customers
table has ``valid_from``; a snapshot table is left out by default (``snapshot_profile=False``): its
values may postdate the send, and a treatment can move them (an app offer raises online visits),
so a model would learn the effect through its own consequence. ``snapshot_profile=True`` joins it
anyway (the training frame's ``profile_basis`` says which). Without transactions the builder's
profile mode serves (the profile is then the only data), so an A/B test on profile data alone
trains too. A campaign whose response window is still open on the last transaction day is left
out (its conversions are incomplete), with a warning.

Assignment: ``treated`` 0/1, or an ``arm`` label per row with a configured control label (several
offers against one control). The **offer** of a treated row is its arm (or, with 0/1 only, its
campaign id); each offer is judged against the control rows of the campaigns it was sent in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from customer_intel.features import as_of_day
from customer_intel.features.rfm import DISPLAY_ONLY_COLUMNS, FeatureInputError, build_customer_features
from customer_intel.modeling.family import FamilyInputError, FamilyNotApplicable
from customer_intel.modeling.split import REFIT, TEST, VALIDATION, TimeSplit
from customer_intel.table_names import RAW_CAMPAIGNS, RAW_CUSTOMERS, RAW_TRANSACTIONS

logger = logging.getLogger(__name__)
CONTROL = "control"
DAY = pd.Timedelta(days=1)
CAMPAIGN_COLUMNS = ("campaign_id", "offer", "treated", "sent_at", "converted", "revenue", "fold")
TARGET_COLUMNS = ("treated", "converted", "revenue", "offer", "campaign_id", "sent_at", "fold")
NOT_FEATURES = frozenset({"customer_id", "as_of", "feature_mode", "profile_basis", "valid_from", *DISPLAY_ONLY_COLUMNS, *TARGET_COLUMNS})


class UpliftInputError(FamilyInputError):
    """The campaign table cannot make an uplift split (no campaigns, no control, a one-class arm, ...)."""


def offer_slug(offer: str) -> str:
    """A column-safe name of an offer: ``uplift_for_<slug>`` in scored_customers."""
    return re.sub(r"[^0-9a-z]+", "_", str(offer).lower()).strip("_") or "offer"


def normalise_campaigns(campaigns: pd.DataFrame, control_arm: str = CONTROL) -> pd.DataFrame:
    """customer_id, campaign_id, offer, treated, sent_at, converted, revenue from either assignment form
    (``campaign_assignments``), checked for what uplift needs: a control label among the arms, one
    assignment per customer and campaign, both groups with both outcomes (``normalise_check``) and
    offers with distinct column names. Raises ``UpliftInputError`` otherwise.
    """
    if campaigns is None or not len(campaigns):
        raise UpliftInputError(f"{RAW_CAMPAIGNS} has no rows: uplift needs a past campaign with a control group")
    if "arm" in campaigns.columns and campaigns["arm"].notna().any():
        labels = sorted(campaigns["arm"].dropna().astype(str).unique())
        if control_arm not in labels:
            raise UpliftInputError(f"{RAW_CAMPAIGNS}: column 'arm' has no row with the control label {control_arm!r} "
                                   f"(labels: {', '.join(labels[:10])}); set control_arm to the label of the untreated group")
    out = campaign_assignments(campaigns, control_arm)
    repeated = out.duplicated(["customer_id", "campaign_id"], keep=False)
    if repeated.any():
        rows = out.loc[repeated, ["customer_id", "campaign_id"]].drop_duplicates().head(3)
        raise UpliftInputError(f"{RAW_CAMPAIGNS}: {int(repeated.sum()):,} rows repeat a (customer_id, campaign_id) pair, e.g. "
                               + "; ".join(f"{r.customer_id} in {r.campaign_id}" for r in rows.itertuples())
                               + ": a customer is assigned once per campaign")
    normalise_check(out)
    slugs = pd.Series(offers(out)).map(offer_slug)
    if slugs.duplicated().any():
        clash = sorted(pd.Series(offers(out))[slugs.duplicated(keep=False)])
        raise UpliftInputError(f"{RAW_CAMPAIGNS}: offers {', '.join(clash)} share the column name uplift_for_{slugs[slugs.duplicated()].iloc[0]}; "
                               "rename one arm")
    return out


def campaign_assignments(campaigns: pd.DataFrame, control_arm: str = CONTROL) -> pd.DataFrame:
    """customer_id, campaign_id, offer, treated, sent_at, converted, revenue from either assignment form, with no
    uplift requirement (a campaign without a control group, or without conversions yet, is read as it is).

    With an ``arm`` column, a row is treated unless its arm is ``control_arm`` and its offer is the
    arm; with ``treated`` only, the offer of a treated row is its campaign id. Control rows have the
    offer ``control``. Raises ``UpliftInputError`` only for a row with neither an arm nor a flag.
    """
    frame = campaigns.copy()
    has_arm = frame["arm"].notna().to_numpy() if "arm" in frame.columns else np.zeros(len(frame), dtype=bool)
    flag = pd.to_numeric(frame["treated"], errors="coerce") if "treated" in frame.columns else pd.Series(np.nan, index=frame.index)
    neither = ~has_arm & flag.isna().to_numpy()
    if neither.any():  # files of both forms in one folder: each row needs one of them
        raise UpliftInputError(f"{RAW_CAMPAIGNS}: {int(neither.sum()):,} rows have neither an arm nor a treated flag (e.g. customers "
                               f"{', '.join(frame.loc[neither, 'customer_id'].astype(str).head(3))})")
    arm = frame["arm"].astype("string") if "arm" in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="string")
    # a row with an arm is treated unless it is the control arm (its offer: the arm); a row with the 0/1 flag only keeps
    # the flag (its offer: the campaign id)
    treated = np.where(has_arm, (arm != control_arm).fillna(False).to_numpy(dtype=bool), flag.fillna(0).to_numpy() == 1)
    offer = np.where(~treated, CONTROL, np.where(has_arm, arm.fillna("").to_numpy(dtype=object),
                                                   frame["campaign_id"].astype(str).to_numpy(dtype=object)))
    out = pd.DataFrame({
        "customer_id": frame["customer_id"].astype("string").to_numpy(),
        "campaign_id": frame["campaign_id"].astype(str).to_numpy(),
        "offer": offer.astype(str),
        "treated": treated.astype(np.int8),
        "sent_at": pd.to_datetime(frame["sent_at"], utc=True).to_numpy(),
        "converted": pd.to_numeric(frame["converted"]).to_numpy().astype(np.int8),
        "revenue": pd.to_numeric(frame["revenue"], errors="coerce").to_numpy(dtype=float) if "revenue" in frame.columns else np.nan,
    })
    out["sent_at"] = pd.to_datetime(out["sent_at"], utc=True)
    return out


def normalise_check(out: pd.DataFrame) -> None:
    """Both groups present, and each offer's treated and control rows hold both outcomes."""
    if not out["treated"].any() or out["treated"].all():
        raise UpliftInputError(f"{RAW_CAMPAIGNS}: every row is {'treated' if out['treated'].all() else 'control'}; "
                               "uplift needs both a treated and a control group")
    for offer_name in offers(out):
        rows = out.loc[offer_mask(out, offer_name)]
        for group in (0, 1):
            part = rows.loc[rows["treated"] == group]
            if part["converted"].nunique() < 2:
                what = f"{len(part):,} rows all have converted = {int(part['converted'].iloc[0])}" if len(part) else "has no row"
                raise UpliftInputError(f"{RAW_CAMPAIGNS}: in offer {offer_name!r} the {'treated' if group else 'control'} group {what}: "
                                       "nothing to learn")


def offers(rows: pd.DataFrame) -> list[str]:
    """The treated offers, sorted (control excluded)."""
    return sorted(rows.loc[rows["treated"] == 1, "offer"].unique())


def offer_mask(rows: pd.DataFrame, offer_name: str) -> np.ndarray:
    """Rows that judge ``offer_name``: its treated rows and its campaigns' control rows."""
    campaigns = rows.loc[rows["offer"] == offer_name, "campaign_id"].unique()
    return ((rows["offer"] == offer_name) | ((rows["treated"] == 0) & rows["campaign_id"].isin(campaigns))).to_numpy()


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs: every numeric feature column (ids, assignment, outcome and display-only scores excluded)."""
    return [c for c in frame.columns if c not in NOT_FEATURES and not c.startswith("split")
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def features_as_of(transactions, customers, as_of, snapshot_profile: bool = False) -> pd.DataFrame:
    """The one feature builder's rows as of ``as_of`` (profile mode without transactions)."""
    try:
        return build_customer_features(transactions if transactions is not None and len(transactions) else None,
                                       customers if customers is not None and len(customers) else None,
                                       as_of, snapshot_profile=snapshot_profile).frame
    except FeatureInputError as exc:
        raise UpliftInputError(f"features as of {as_of_day(as_of).date()}: {exc}") from exc


def campaign_rows(campaigns: pd.DataFrame, transactions, customers, snapshot_profile: bool = False) -> pd.DataFrame:
    """Each campaign row with the customer's features as of the day before its send day (nothing on or after it).

    A customer without a purchase by then keeps the campaign row with null transactional features
    and ``no_purchase_history`` = 1.
    """
    pieces = []
    for sent_day, rows in campaigns.groupby(campaigns["sent_at"].dt.normalize(), sort=True):
        as_of = as_of_day(sent_day) - DAY
        feats = features_as_of(transactions, customers, as_of, snapshot_profile)
        joined = rows.merge(feats.drop(columns=["as_of"]), on="customer_id", how="left")
        joined.insert(1, "as_of", as_of)
        pieces.append(joined)
    frame = pd.concat(pieces, ignore_index=True)
    frame["no_purchase_history"] = frame["feature_mode"].isna().astype(np.int8) if "feature_mode" in frame else np.int8(1)
    return frame


def assign_parts(rows: pd.DataFrame, test_share: float, folds: int, seed: int) -> pd.DataFrame:
    """``fold`` per row: -1 for the test customers (``test_share`` of them), 0..folds-1 for the rest.

    Customers, not rows, are split (a customer in two campaigns stays on one side), stratified by
    the offer x outcome of their first row.
    """
    if not 0 < test_share < 1 or folds < 2:
        raise UpliftInputError("test_share must lie in (0, 1) and folds be at least 2")
    rng = np.random.default_rng(seed)
    first = rows.drop_duplicates("customer_id")[["customer_id", "offer", "converted"]]
    stratum = first["offer"].astype(str) + "|" + first["converted"].astype(str)
    fold = pd.Series(0, index=first["customer_id"].to_numpy())
    for _, ids in first.groupby(stratum.to_numpy())["customer_id"]:
        ids = ids.to_numpy()[rng.permutation(len(ids))]
        n_test = int(round(test_share * len(ids)))
        fold.loc[ids[:n_test]] = -1
        fold.loc[ids[n_test:]] = np.arange(len(ids) - n_test) % folds
    return rows.assign(fold=fold.reindex(rows["customer_id"].to_numpy()).to_numpy().astype(np.int16))


def build_uplift_split(campaigns: pd.DataFrame, transactions=None, customers=None, *, control_arm: str = CONTROL,
                       window_days: int = 30, test_share: float = 0.3, folds: int = 3, seed: int = 0,
                       snapshot_profile: bool = False, refit: bool = True, test_index=None) -> TimeSplit:
    """The holdout split of every campaign row (see the module docstring).

    ``test_index``: customer ids of a given test part instead of the stratified draw (e.g. a split
    fixed by an earlier study); the rest is the train part, folded as usual.
    """
    rows = normalise_campaigns(campaigns, control_arm)
    has_tx = transactions is not None and len(transactions)
    if has_tx:  # a campaign whose window has not closed by the last data day has responses still to come: left out
        last_day = as_of_day(transactions["ts"].max())
        open_window = (rows["sent_at"].dt.normalize() + pd.Timedelta(days=window_days)) > last_day
        if open_window.all():
            raise UpliftInputError(f"every campaign's {window_days}-day response window is still open on the last data day {last_day.date()}: "
                                   "its conversions are incomplete; wait, or shorten window_days")
        if open_window.any():  # the whole campaign: a part of it would leave its arms unbalanced
            dropped = sorted(rows.loc[open_window, "campaign_id"].unique())
            logger.warning("uplift: campaigns %s left out: their %d-day window is still open on %s", ", ".join(dropped), window_days,
                           last_day.date())
            rows = rows.loc[~rows["campaign_id"].isin(dropped)].reset_index(drop=True)
            if rows.empty:
                raise UpliftInputError(f"every campaign has a row whose {window_days}-day response window is still open on the last data "
                                       f"day {last_day.date()}: its conversions are incomplete; wait, or shorten window_days")
            normalise_check(rows)
    rows = campaign_rows(rows, transactions, customers, snapshot_profile)
    rows = assign_parts(rows, test_share, folds, seed)
    if test_index is not None:
        held = rows["customer_id"].isin(pd.Index(pd.Series(list(test_index)).astype(str)))
        if not held.any():
            raise UpliftInputError("the given test index names none of the campaign's customers")
        train = assign_parts(rows.loc[~held], 1e-9, folds, seed)  # the rest folded as usual: stratified, shuffled
        rows["fold"] = np.int16(-1)
        rows.loc[~held, "fold"] = train["fold"].clip(lower=0).to_numpy()
        rows["fold"] = rows["fold"].astype(np.int16)
    cutoff = rows["as_of"].max()
    parts = {VALIDATION: rows.loc[rows["fold"] >= 0].reset_index(drop=True), TEST: rows.loc[rows["fold"] < 0].reset_index(drop=True)}
    for name, part in parts.items():
        for offer_name in offers(rows):
            judged = part.loc[offer_mask(part, offer_name)]
            if judged["treated"].nunique() < 2:
                raise UpliftInputError(f"the {name} part has no {'control' if judged['treated'].all() else 'treated'} row for offer "
                                       f"{offer_name!r}: too few customers for a {test_share:.0%} holdout")
    cutoffs, horizons = {VALIDATION: cutoff, TEST: cutoff}, {VALIDATION: window_days, TEST: window_days}
    if refit:
        last = as_of_day(transactions["ts"].max()) if has_tx else as_of_day(rows["sent_at"].max()) + pd.Timedelta(days=window_days)
        if last >= cutoff + pd.Timedelta(days=window_days):
            scoring = features_as_of(transactions, customers, last, snapshot_profile)
            scoring["no_purchase_history"] = np.int8(0)
            parts[REFIT], cutoffs[REFIT], horizons[REFIT] = scoring, last, window_days
    return TimeSplit(cutoff, window_days, parts, cutoffs, horizons, holdout=True)


def uplift_split_from_inputs(inputs: Mapping[str, pd.DataFrame], control_arm: str = CONTROL, window_days: int = 30,
                             test_share: float = 0.3, folds: int = 3, seed: int = 0,
                             snapshot_profile_in_training: bool = False) -> TimeSplit:
    """The split from the ingested tables (transactions optional: profile mode)."""
    campaigns = inputs.get(RAW_CAMPAIGNS)
    if campaigns is None or not len(campaigns):
        raise FamilyNotApplicable(f"{RAW_CAMPAIGNS} is not configured or empty: uplift needs a past campaign with a control group")
    return build_uplift_split(campaigns, inputs.get(RAW_TRANSACTIONS), inputs.get(RAW_CUSTOMERS), control_arm=control_arm,
                              window_days=window_days, test_share=test_share, folds=folds, seed=seed,
                              snapshot_profile=snapshot_profile_in_training)
