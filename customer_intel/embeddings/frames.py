"""The rows every embedding is fitted on and scores: the one feature builder's features plus each customer's token bag.

``embedding_rows(transactions, customers, as_of)`` is the frame a registered embedding scores,
nightly and in the API: the customer's features as of the day (what a feature-based embedding
reads) and a ``tokens`` column, the customer's token bag (``tokens.py``) as JSON ``{token: count}``,
so the scorer's input is one plain table that MLflow's signature and the pyfunc boundary carry.

``build_embedding_split`` makes the family's ``TimeSplit`` in successive windows of ``horizon``
days (default 90) before the last data day ``L``:

- ``fit``: rows as of ``C = L - 2h`` (the bags an embedding learns from);
- ``validation``: the same customers as of ``C``, with ``next_top_category``, the category each
  bought most in ``(C, C + h]``: a candidate's vectors are **inferred** for them as the nightly run
  would, and its neighbours vote on it (the champion is chosen here);
- ``test``: rows as of ``C + h`` with the category of ``(C + h, C + 2h]``, only reported (the
  shared lifecycle fits each candidate again on the validation rows' bags, as of ``C``);
- ``refit``: rows as of ``L``: the chosen recipe is refitted on the test rows' bags (data up to
  ``C + h``, ``L - h`` by default) and registered; its vectors for everyone are inferred nightly from
  their whole history.

At the validation origin a Customer2Vec is judged on the bags it was trained on (inferred again,
0 days old); at the test origin and in production its token vectors are ``h`` days older than
the bags it reads. Choices are made on the first, the second only reports: the test column says
what staleness costs.

With less history than ``3h`` days the test window is dropped (``C = L - h``).

**Lookalike roles.** With a campaign table, the latest campaign sent after the last scored as-of
day (``C + h`` with a test window, else ``C``) whose outcomes have had ``MIN_OBSERVED_DAYS`` to
arrive by ``L`` and that gives the validation rows enough seed responders and a treated pool
(``can_judge_lookalikes``) is the lookalike campaign (a customer counts as treated, or converted,
if any of its rows in it is). Its customers among
the rows are split at random by a hash of the campaign and customer ids into seeds and pools:
with a test window a third each for ``seed``, the validation pool and the test pool (the
validation rows' ``lookalike_role`` is ``pool`` for the first, the test rows' for the second),
else a half each for ``seed`` and the validation pool. The seeds' treated converters seed an
audience drawn from the pool (``family.lookalike_metrics``). The vectors are as of the part's own
day (``C``, or ``C + h`` for the test rows), before the send; the outcomes come after it: split in
time, and the pool that reports was never chosen on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from customer_intel.embeddings.evaluate import top_category_between
from customer_intel.embeddings.tokens import TokenBags, token_bags
from customer_intel.engine import TableInput, session
from customer_intel.features import build_customer_features
from customer_intel.features.rfm import as_of_day
from customer_intel.modeling.family import FamilyInputError, FamilyNotApplicable
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION, TimeSplit
from customer_intel.table_names import RAW_CAMPAIGNS, RAW_CUSTOMERS, RAW_TRANSACTIONS

TOKENS_COLUMN = "tokens"
TARGET = "next_top_category"
MIN_FIT_DAYS = 30  # a fit part needs this much history before its as-of day
LOOKALIKE_CAMPAIGN, LOOKALIKE_ROLE = "lookalike_campaign", "lookalike_role"
LOOKALIKE_TREATED, LOOKALIKE_CONVERTED = "lookalike_treated", "lookalike_converted"
LOOKALIKE_COLUMNS = (LOOKALIKE_CAMPAIGN, LOOKALIKE_ROLE, LOOKALIKE_TREATED, LOOKALIKE_CONVERTED)
SEED, POOL = "seed", "pool"
MIN_OBSERVED_DAYS = 30  # a campaign's conversions need this long after the send to be counted
MIN_LOOKALIKE_SEEDS = 20  # fewer seeds (treated converters of the seed share) make no audience worth judging


class EmbeddingSplitError(FamilyInputError):
    """The inputs cannot make an embedding split."""


def encode_bags(bags: TokenBags) -> pd.Series:
    """customer_id -> the bag as JSON ``{token: count}`` (tokens in vocabulary order)."""
    vocabulary = np.asarray(bags.vocabulary, dtype=object)
    text = [json.dumps(dict(zip(vocabulary[t].tolist(), c.tolist())), separators=(",", ":"))
            for t, c in (bags.bag(i) for i in range(len(bags)))]
    return pd.Series(text, index=pd.Index(bags.customer_ids, name="customer_id"), name=TOKENS_COLUMN, dtype=object)


def has_bags(frame: pd.DataFrame) -> bool:
    return TOKENS_COLUMN in frame.columns or BAGS_ATTR in frame.attrs


def bags_from_frame(frame: pd.DataFrame, as_of=None) -> TokenBags:
    """The token bags of ``frame``'s rows, in row order (an empty or null ``tokens`` is an empty bag): the ``TokenBags``
    ``with_bags`` kept in ``attrs`` when their customers are still the rows', else parsed from the JSON column."""
    kept = frame.attrs.get(BAGS_ATTR)
    if kept is not None and len(kept) == len(frame) and np.array_equal(kept.customer_ids, frame["customer_id"].astype(str).to_numpy(dtype=object)):
        return kept
    if TOKENS_COLUMN not in frame.columns:
        raise ValueError(f"an embedding needs a {TOKENS_COLUMN!r} column (customer_intel.embeddings.frames.embedding_rows)")
    parsed = [json.loads(text) if isinstance(text, str) and text else {} for text in frame[TOKENS_COLUMN]]
    vocabulary = tuple(sorted({token for bag in parsed for token in bag}))
    index = {t: j for j, t in enumerate(vocabulary)}
    ordered = [sorted(bag, key=index.get) for bag in parsed]
    lengths = np.array([len(bag) for bag in parsed], dtype=np.int64)
    tokens = np.fromiter((index[t] for keys in ordered for t in keys), dtype=np.int64, count=int(lengths.sum()))
    counts = np.fromiter((bag[t] for bag, keys in zip(parsed, ordered) for t in keys), dtype=np.int64, count=int(lengths.sum()))
    day = as_of_day(as_of if as_of is not None else frame["as_of"].iloc[0]) if len(frame) and (as_of is not None or "as_of" in frame) else None
    return TokenBags(frame["customer_id"].astype(str).to_numpy(), np.r_[0, np.cumsum(lengths)].astype(np.int64), tokens, counts,
                     vocabulary, day)


def embedding_rows(transactions: TableInput, customers: TableInput | None, as_of, con=None, snapshot_profile: bool = True) -> pd.DataFrame:
    """Every customer of the feature builder as of ``as_of``, with its token bag (``{}`` without a purchase yet);
    ``snapshot_profile=False`` leaves a snapshot profile table (no ``valid_from``) out, as for a past as-of day."""
    with session(con) as con:
        features = build_customer_features(transactions, customers, as_of, con=con, snapshot_profile=snapshot_profile).frame
        return with_bags(features, token_bags(transactions, as_of, con=con))


BAGS_ATTR = "customer_intel.token_bags"


def with_bags(features: pd.DataFrame, bags: TokenBags, encode: bool = True) -> pd.DataFrame:
    """``features`` with each customer's bag (empty for a customer without one): as JSON in the ``tokens`` column,
    the scorer's input wherever a frame travels (MLflow's pyfunc, a file, the serving API), and in ``attrs`` as
    ``TokenBags`` in row order, which ``bags_from_frame`` reads when they still match the rows. ``encode=False``
    leaves the JSON out: the nightly scores pass the frame straight to the scorer in the same process, and a
    million bags cost half a minute to write and parse as JSON."""
    aligned = bags.take(features["customer_id"])
    out = features.assign(**{TOKENS_COLUMN: encode_bags(aligned).to_numpy(dtype=object)}) if encode else features.copy()
    out.attrs[BAGS_ATTR] = aligned
    return out


def lookalike_campaigns(campaigns: pd.DataFrame | None, after: pd.Timestamp, last: pd.Timestamp) -> Iterator[tuple[str, pd.DataFrame]]:
    """(campaign id, one row per customer: treated and converted if any of its rows was) of every campaign sent after the
    day ``after`` whose outcomes have had ``MIN_OBSERVED_DAYS`` to arrive by ``last``, the latest first (each made when
    asked for: the split stops at the first it can judge on)."""
    from customer_intel.uplift.frames import campaign_assignments

    if campaigns is None or not len(campaigns):
        return
    rows = campaign_assignments(campaigns)
    sent = rows.groupby("campaign_id")["sent_at"].min().dt.floor("D")  # the send day: after ``after``, 30+ days before ``last``
    usable = sent.loc[(sent >= after + pd.Timedelta(days=1)) & (sent <= last - pd.Timedelta(days=MIN_OBSERVED_DAYS))]
    for campaign_id in usable.sort_values(ascending=False, kind="stable").index:
        mine = rows.loc[rows["campaign_id"] == campaign_id]
        yield str(campaign_id), mine.groupby("customer_id", as_index=False)[["treated", "converted"]].max()


def lookalike_masks(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(seed responders: seeds treated and converted, the treated pool) of ``rows`` (all False without the columns)."""
    if LOOKALIKE_ROLE not in rows.columns:
        return np.zeros(len(rows), dtype=bool), np.zeros(len(rows), dtype=bool)
    role = rows[LOOKALIKE_ROLE].to_numpy(dtype=object)
    treated, converted = rows[LOOKALIKE_TREATED].to_numpy(dtype=float) == 1, rows[LOOKALIKE_CONVERTED].to_numpy(dtype=float) == 1
    return (role == SEED) & treated & converted, (role == POOL) & treated


def can_judge_lookalikes(rows: pd.DataFrame) -> bool:
    """Whether ``rows`` hold ``MIN_LOOKALIKE_SEEDS`` seed responders and a treated pool five times that with a responder."""
    seeds, pool = lookalike_masks(rows)
    if int(seeds.sum()) < MIN_LOOKALIKE_SEEDS or int(pool.sum()) < 5 * MIN_LOOKALIKE_SEEDS:
        return False
    return bool((rows[LOOKALIKE_CONVERTED].to_numpy(dtype=float)[pool] == 1).any())


def lookalike_roles(customer_ids, campaign_id: str, shares: int) -> np.ndarray:
    """Each customer's share (0 = seed, 1 = the first pool, 2 = the second) of ``shares``, from a hash of the campaign and
    customer ids: the same customer has the same role in every part and every run, whatever the row order."""
    keys = pd.Series([f"{campaign_id}\x1f{c}" for c in np.asarray(customer_ids, dtype=object)], dtype=object)
    return (pd.util.hash_pandas_object(keys, index=False).to_numpy() % np.uint64(shares)).astype(np.int64)


def with_lookalike(rows: pd.DataFrame, campaign: tuple[str, pd.DataFrame] | None, pool_share: int, shares: int) -> pd.DataFrame:
    """``rows`` with the ``LOOKALIKE_COLUMNS``: role ``seed`` (share 0) or ``pool`` (share ``pool_share``) for the
    campaign's customers, null for the rest and for every row without a campaign."""
    if campaign is None:
        return rows.assign(**{LOOKALIKE_CAMPAIGN: None, LOOKALIKE_ROLE: None, LOOKALIKE_TREATED: np.nan, LOOKALIKE_CONVERTED: np.nan})
    campaign_id, assigned = campaign
    ids = rows["customer_id"].astype(str)
    by_id = assigned.set_index(assigned["customer_id"].astype(str))
    share = lookalike_roles(ids.to_numpy(), campaign_id, shares)
    in_campaign = ids.isin(by_id.index).to_numpy()
    role = np.where(in_campaign & (share == 0), SEED, np.where(in_campaign & (share == pool_share), POOL, None))
    return rows.assign(**{LOOKALIKE_CAMPAIGN: np.where(in_campaign, campaign_id, None), LOOKALIKE_ROLE: role,
                          LOOKALIKE_TREATED: ids.map(by_id["treated"]).astype(float).to_numpy(),
                          LOOKALIKE_CONVERTED: ids.map(by_id["converted"]).astype(float).to_numpy()})


def _with_purchases(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.loc[rows[TOKENS_COLUMN] != "{}"].reset_index(drop=True)


def build_embedding_split(inputs: Mapping[str, pd.DataFrame], cutoff: str | None = None, horizon_days: int = 90,
                          snapshot_profile_in_training: bool = False) -> TimeSplit:
    """The embeddings' ``TimeSplit`` (see the module docstring); no transactions: the family does not apply.

    A snapshot profile table (no ``valid_from``) holds today's values, which postdate the fit,
    validation and test days: it is left out of those rows unless ``snapshot_profile_in_training``
    (then the profile candidates see it; with ``valid_from`` every row takes the version valid on its day)."""
    transactions, customers = inputs.get(RAW_TRANSACTIONS), inputs.get(RAW_CUSTOMERS)
    if transactions is None or not len(transactions):
        raise FamilyNotApplicable("no transactions: a Customer2Vec embedding learns from each customer's purchases")
    customers = customers if customers is not None and len(customers) else None
    if horizon_days < 7:
        raise EmbeddingSplitError(f"horizon_days must be at least 7; got {horizon_days}")
    h = pd.Timedelta(days=horizon_days)
    first, last = as_of_day(transactions["ts"].min()), as_of_day(transactions["ts"].max())
    with_test = cutoff is None and last - 2 * h - first >= pd.Timedelta(days=MIN_FIT_DAYS)
    day = as_of_day(cutoff) if cutoff else (last - 2 * h if with_test else last - h)
    if day - first < pd.Timedelta(days=MIN_FIT_DAYS) or day + h > last:
        raise EmbeddingSplitError(f"transactions span {first.date()} to {last.date()}: a cutoff {day.date()} needs {MIN_FIT_DAYS} days "
                                  f"before it and the {horizon_days}-day window after it inside the data")
    with_test = with_test or (cutoff is not None and day + 2 * h <= last)
    with session() as con:
        past = {"con": con, "snapshot_profile": snapshot_profile_in_training}
        fit = _with_purchases(embedding_rows(transactions, customers, day, **past))
        validation = fit.assign(**{TARGET: fit["customer_id"].astype(str).map(top_category_between(transactions, day, day + h, con=con))})
        # the latest campaign sent after the last scored day that the validation rows can judge lookalikes on
        shares, campaign, labelled = 3 if with_test else 2, None, None
        for found in lookalike_campaigns(inputs.get(RAW_CAMPAIGNS), day + h if with_test else day, last):
            labelled = with_lookalike(validation, found, 1, shares)
            if can_judge_lookalikes(labelled):
                campaign = found
                break
        validation = labelled if campaign is not None else with_lookalike(validation, None, 1, shares)
        parts = {FIT: fit, VALIDATION: validation}
        cutoffs, horizons = {FIT: day, VALIDATION: day}, {FIT: 0, VALIDATION: horizon_days}
        if with_test:
            test_day = day + h
            rows = _with_purchases(embedding_rows(transactions, customers, test_day, **past))
            rows = rows.assign(**{TARGET: rows["customer_id"].astype(str).map(top_category_between(transactions, test_day, test_day + h, con=con))})
            parts[TEST] = with_lookalike(rows, campaign, 2, shares)
            cutoffs[TEST], horizons[TEST] = test_day, horizon_days
        refit_day = max(last, day + (2 if with_test else 1) * h)
        parts[REFIT] = _with_purchases(embedding_rows(transactions, customers, refit_day, con=con))
        cutoffs[REFIT], horizons[REFIT] = refit_day, horizon_days
    if len(fit) < 50:
        raise EmbeddingSplitError(f"{len(fit)} customers with a purchase by {day.date()}: too few to learn neighbours from")
    categories = validation[TARGET].dropna().unique()
    if len(categories) < 2:
        raise FamilyNotApplicable(f"the transactions name {len(categories)} purchase category after {day.date()} "
                                  f"({', '.join(map(str, categories)) or 'none'}): there is nothing for neighbours to predict, "
                                  "so embeddings are not trained on this data")
    if validation[TARGET].notna().sum() < 20:
        raise EmbeddingSplitError(f"only {int(validation[TARGET].notna().sum())} customers buy in the {horizon_days} days after "
                                  f"{day.date()}: too few to judge whose neighbours predict what they buy next")
    return TimeSplit(day, horizon_days, parts, cutoffs, horizons)
