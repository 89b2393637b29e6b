"""The churn training split: the CLTV split's origins, each row labelled by its own window.

A customer is **churned** at an origin when they made at least one purchase by its as-of day
and none in the ``window_days`` after it. The rows, as-of days and windows are exactly CLTV's
(``customer_intel.cltv.frames``): ``fit`` (the ML candidates' training rows), ``validation``
(every choice is made there), ``test`` (features as of the cutoff, label in the churn window
after it: only reports) and ``refit`` (features as of the last day of the test window, no label:
what production is fitted to). Labels come only from transactions after each as-of day.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from customer_intel.cltv.frames import CLTVInputError, build_cltv_split, transaction_inputs
from customer_intel.features.rfm import build_customer_features
from customer_intel.modeling.family import FamilyInputError
from customer_intel.modeling.split import REFIT, TEST, VALIDATION, TimeSplit

LABEL = "churned"
TARGET_COLUMNS = (LABEL, "holdout_purchases", "holdout_spend", "holdout_days")


class ChurnInputError(FamilyInputError):
    """The inputs cannot make a churn split (no transactions, or no churner or no stayer in a window)."""


class LeakageError(AssertionError):
    """A feature of a split row differs from the one feature builder's value computed with data up to its as-of day only."""


def label(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows plus ``churned``: no purchase day in the row's target window."""
    return frame.assign(**{LABEL: (frame["holdout_purchases"].to_numpy() == 0).astype(np.int8)})


def build_churn_split(transactions: pd.DataFrame, customers: pd.DataFrame | None, cutoff, window_days: int,
                      snapshot_profile: bool = False, refit: bool = True) -> TimeSplit:
    """CLTV's origins around ``cutoff`` (validation window ``min(window, history / 2)``), each part labelled."""
    try:
        split = build_cltv_split(transactions, customers, cutoff, window_days, snapshot_profile=snapshot_profile, refit=refit)
    except CLTVInputError as exc:
        raise ChurnInputError(str(exc)) from exc
    parts = {name: (rows if name == REFIT else label(rows)) for name, rows in split.parts.items()}
    for name, rows in parts.items():  # the fit rows may be one class: the classifiers skip, BG/NBD needs no label
        if name in (VALIDATION, TEST) and rows[LABEL].nunique() < 2:
            what = f"none of the {len(rows):,} customers" if rows[LABEL].sum() == 0 else f"all {len(rows):,} customers"
            raise ChurnInputError(f"the {name} window ({split.cutoff_of(name).date()} + {split.horizon_of(name)} days): {what} "
                                  "churned, so there is nothing to learn or judge; choose another cutoff or window")
    return TimeSplit(split.cutoff, split.horizon_days, parts, split.part_cutoffs, split.part_horizons)


def churn_split_from_inputs(inputs: Mapping[str, pd.DataFrame], cutoff: str | None = None, window_days: int = 90,
                            snapshot_profile_in_training: bool = False) -> TimeSplit:
    """The split from the ingested tables; the default cutoff is the last transaction day minus the window."""
    transactions, customers, day = transaction_inputs(inputs, cutoff, window_days, "churn", ChurnInputError)
    return build_churn_split(transactions, customers, day, window_days, snapshot_profile=snapshot_profile_in_training)


def assert_point_in_time(split: TimeSplit, transactions: pd.DataFrame, customers: pd.DataFrame | None = None,
                         snapshot_profile: bool = False, atol: float = 1e-9) -> None:
    """Raise ``LeakageError`` unless every part's features equal the builder's on transactions cut at that part's as-of day.

    Features are rebuilt from ``transactions`` with every row after the as-of day removed: a
    feature that saw past it (a later purchase, the label's window) differs there.
    """
    for name, rows in split.parts.items():
        day = split.cutoff_of(name)
        seen = transactions.loc[transactions["ts"] < day + pd.Timedelta(days=1)]
        truth = build_customer_features(seen, customers, day, snapshot_profile=snapshot_profile).frame.set_index("customer_id")
        frame = rows.set_index("customer_id")
        extra = sorted(set(frame.index) - set(truth.index))
        if extra:
            raise LeakageError(f"{name} (as of {day.date()}): customers {extra[:5]} have no purchase by the as-of day")
        columns = [c for c in truth.columns if c in frame.columns and pd.api.types.is_numeric_dtype(truth[c])]
        columns += [c for c in frame.columns if c not in truth.columns and c not in TARGET_COLUMNS
                    and pd.api.types.is_numeric_dtype(frame[c])]
        for column in columns:
            if column not in truth.columns:
                raise LeakageError(f"{name} (as of {day.date()}): column {column!r} is not made by the feature builder, so its "
                                   "point in time cannot be checked")
            got = frame[column].to_numpy(dtype=float)
            want = truth.loc[frame.index, column].to_numpy(dtype=float)
            bad = ~np.isclose(got, want, atol=atol, equal_nan=True)
            if bad.any():
                ids = frame.index[bad][:3].tolist()
                raise LeakageError(f"{name} (as of {day.date()}): {column!r} of {int(bad.sum()):,} customers differs from its value "
                                   f"with data up to the as-of day only, e.g. {ids}: {got[bad][:3].tolist()} vs {want[bad][:3].tolist()}")
