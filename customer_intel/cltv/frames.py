"""The CLTV training split: four origins in time, each a row set of the one feature builder.

With ``cutoff`` c and horizon h (the window the registered model forecasts):

- ``test``: features as of c, repeat purchase days and spend in ``(c, c + h]``. Only reported:
  every candidate is refitted at c and scored here; nothing is chosen on it.
- ``validation``: features as of ``c - w``, targets in ``(c - w, c]`` with ``w = min(h, history / 2)``
  (the longest window that leaves half the history for features: 90 days on the synthetic bank,
  136 on CDNOW's 39-week calibration period). The champion, the ensemble weights and the
  conformal bands are chosen here.
- ``fit``: features as of ``c - w - w'``, targets in the ``w'`` days before ``c - w``: the ML
  candidates' training rows at the validation origin (at the test origin they train on the
  validation rows, at the refit origin on the test rows).
- ``refit``: features as of ``c + h``, no targets: the champion's recipe is refitted there on all
  the data and registered.

No target is a formula of the features and no feature sees past its as-of day.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from customer_intel.features.rfm import DAY, as_of_day, build_customer_features, calibration_holdout_frame
from customer_intel.modeling.family import FamilyInputError
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION, TimeSplit
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

TARGET = "holdout_purchases"
TARGET_COLUMNS = ("holdout_purchases", "holdout_spend", "holdout_days")  # what calibration_holdout_frame adds to the features


class CLTVInputError(FamilyInputError):
    """The inputs cannot make a CLTV split (no transactions: profile mode)."""


def _window(first_day: pd.Timestamp, origin: pd.Timestamp, longest: int) -> int:
    """The longest target window (at most ``longest`` days) that leaves half the history before ``origin`` for features."""
    return int(min(longest, int((origin - first_day) / DAY) // 2))


def build_cltv_split(transactions: pd.DataFrame, customers: pd.DataFrame | None, cutoff, horizon_days: int,
                     snapshot_profile: bool = False, refit: bool = True) -> TimeSplit:
    """The validation, fit, test and (``refit``) refit rows around ``cutoff`` (see the module docstring).

    A profile table without ``valid_from`` is a snapshot taken after every cutoff, so its attributes
    stay out of the training features unless ``snapshot_profile`` (they may postdate the as-of day);
    the rows' ``profile_basis`` says what was used. The refit rows need the test window to be
    complete: without data to ``cutoff + horizon`` there is no refit part.
    """
    cutoff = as_of_day(cutoff)
    first_day, last_day = as_of_day(transactions["ts"].min()), as_of_day(transactions["ts"].max())
    window = _window(first_day, cutoff, horizon_days)
    if window < 1:
        raise CLTVInputError(f"{int((cutoff - first_day) / DAY)} days of history before the cutoff {cutoff.date()}: "
                             "too short for a validation window inside it")
    origin = cutoff - DAY * window

    def rows(as_of: pd.Timestamp, days: int) -> pd.DataFrame:
        return calibration_holdout_frame(transactions, customers, as_of, days, snapshot_profile=snapshot_profile)

    parts = {VALIDATION: rows(origin, window), TEST: rows(cutoff, horizon_days)}
    cutoffs, horizons = {VALIDATION: origin, TEST: cutoff}, {VALIDATION: window, TEST: int(horizon_days)}
    fit_window = _window(first_day, origin, window)
    if fit_window > 0:
        parts[FIT] = rows(origin - DAY * fit_window, fit_window)
        cutoffs[FIT], horizons[FIT] = origin - DAY * fit_window, fit_window
    end = cutoff + DAY * int(horizon_days)
    if refit and end <= last_day:
        parts[REFIT] = build_customer_features(transactions, customers, end, snapshot_profile=snapshot_profile).frame
        cutoffs[REFIT], horizons[REFIT] = end, int(horizon_days)
    return TimeSplit(origin, window, parts, cutoffs, horizons)


def transaction_inputs(inputs: Mapping[str, pd.DataFrame], cutoff: str | None, window_days: int, family: str,
                       error: type[FamilyInputError]) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.Timestamp]:
    """(transactions, customers or None, cutoff day) for a family that needs transactions; the default cutoff is the
    last transaction day minus the window. Raises ``error`` naming the family when there are no transactions."""
    transactions = inputs.get(RAW_TRANSACTIONS)
    if transactions is None or transactions.empty:
        raise error(f"{RAW_TRANSACTIONS} is not configured; {family} needs transactions (profile mode skips it)")
    customers = inputs.get(RAW_CUSTOMERS)
    customers = customers if customers is not None and len(customers) else None
    day = as_of_day(cutoff) if cutoff else as_of_day(transactions["ts"].max()) - pd.Timedelta(days=window_days)
    return transactions, customers, day


def cltv_split_from_inputs(inputs: Mapping[str, pd.DataFrame], cutoff: str | None = None, horizon_days: int = 90,
                           snapshot_profile_in_training: bool = False) -> TimeSplit:
    """The split from the ingested tables; the default cutoff is the last transaction day minus the horizon."""
    transactions, customers, day = transaction_inputs(inputs, cutoff, horizon_days, "CLTV", CLTVInputError)
    return build_cltv_split(transactions, customers, day, horizon_days, snapshot_profile=snapshot_profile_in_training)
