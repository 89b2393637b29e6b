"""The CLTV training split: features as of a cutoff, repeat purchases in the horizon after it.

``validation`` rows: features as of the cutoff, targets (repeat purchase days, spend) in
``(cutoff, cutoff + horizon]``; the probabilistic models are fitted on these features and every
candidate is judged on these targets. ``fit`` rows: features as of ``cutoff - window``, targets
in the window before the cutoff, for the time-shifted ML models. Both come from the one feature
builder; no target is a formula of the features and no feature sees past its as-of day.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from customer_intel.features.rfm import DAY, as_of_day, calibration_holdout_frame
from customer_intel.modeling.family import FamilyInputError
from customer_intel.modeling.split import FIT, VALIDATION, TimeSplit
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

TARGET = "holdout_purchases"
TARGET_COLUMNS = ("holdout_purchases", "holdout_spend", "holdout_days")  # what calibration_holdout_frame adds to the features


class CLTVInputError(FamilyInputError):
    """The inputs cannot make a CLTV split (no transactions: profile mode)."""


def build_cltv_split(transactions: pd.DataFrame, customers: pd.DataFrame | None, cutoff, horizon_days: int,
                     snapshot_profile: bool = False) -> TimeSplit:
    """Validation rows as of ``cutoff`` and time-shifted fit rows as of ``cutoff - window``.

    A profile table without ``valid_from`` is a snapshot taken after every cutoff, so its attributes
    stay out of the training features unless ``snapshot_profile`` (they may postdate the as-of day);
    the rows' ``profile_basis`` says what was used.

    The window equals the horizon; a young cohort (CDNOW: 39 weeks old at a 39-week horizon) has
    no room for that, so the longest window that leaves half the history for features is used and
    ML predictions are rescaled to the horizon.
    """
    cutoff = as_of_day(cutoff)
    validation = calibration_holdout_frame(transactions, customers, cutoff, horizon_days, snapshot_profile=snapshot_profile)
    history_days = int((cutoff - as_of_day(transactions["ts"].min())) / DAY)
    window = int(min(horizon_days, history_days // 2))
    parts = {VALIDATION: validation}
    cutoffs, horizons = {VALIDATION: cutoff}, {VALIDATION: int(horizon_days)}
    if window > 0:
        parts[FIT] = calibration_holdout_frame(transactions, customers, cutoff - DAY * window, window, snapshot_profile=snapshot_profile)
        cutoffs[FIT], horizons[FIT] = cutoff - DAY * window, window
    return TimeSplit(cutoff, int(horizon_days), parts, cutoffs, horizons)


def cltv_split_from_inputs(inputs: Mapping[str, pd.DataFrame], cutoff: str | None = None, horizon_days: int = 90,
                           snapshot_profile_in_training: bool = False) -> TimeSplit:
    """The split from the ingested tables; the default cutoff is the last transaction day minus the horizon."""
    transactions = inputs.get(RAW_TRANSACTIONS)
    if transactions is None or transactions.empty:
        raise CLTVInputError(f"{RAW_TRANSACTIONS} is not configured; CLTV needs transactions (profile mode skips it)")
    customers = inputs.get(RAW_CUSTOMERS)
    customers = customers if customers is not None and len(customers) else None
    day = as_of_day(cutoff) if cutoff else as_of_day(transactions["ts"].max()) - pd.Timedelta(days=horizon_days)
    return build_cltv_split(transactions, customers, day, horizon_days, snapshot_profile=snapshot_profile_in_training)
