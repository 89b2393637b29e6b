"""``TimeSplit``: the rows a family's candidates are fitted on and judged on, split in time.

A split has a ``cutoff`` (the last day any feature may see) and a ``horizon`` (the target
window after it), and named parts:

- ``fit``: rows whose features *and* targets lie on or before the cutoff (e.g. features as of
  ``cutoff - horizon``, target in the window before the cutoff), for models that learn a
  mapping from features to the target;
- ``validation``: features as of the cutoff, targets in ``(cutoff, cutoff + horizon]``. Every
  choice (champion, weights, thresholds) is made here;
- ``test`` (optional): a later window that only reports: every candidate is refitted at the
  test origin (features as of the test part's as-of day; the validation rows are the fit rows
  there) and scored on it, and nothing chosen looks at it;
- ``refit`` (optional): features as of the last day of data, without targets: the production
  refit of the chosen recipe is fitted there (the test rows are its fit rows) and registered.

``origin(name)`` gives the split one origin sees: at ``validation`` the fit and validation parts;
at ``test`` the validation rows as fit rows and the test rows to predict; at ``refit`` the test
rows as fit rows and the refit rows. Each origin's fit targets end where its predicted window
starts, so a candidate fitted at any origin sees nothing it is judged on.

A **holdout** split (``holdout=True``) is the cross-sectional design of a randomised campaign:
every labelled part shares the as-of day and the window, and the parts are disjoint sets of
customers instead of successive windows. The validation part is then cross-validated inside
(its candidates predict it out of fold), the test part is a stratified customer holdout that only
reports, and the refit origin fits on both labelled parts.

It travels between assets as one frame with a ``split`` column (``to_frame``/``from_frame``), so
the training frame is an ordinary Parquet table in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

FIT, VALIDATION, TEST, REFIT = "fit", "validation", "test", "refit"
PARTS = (FIT, VALIDATION, TEST, REFIT)
SPLIT_COLUMN = "split"
CUTOFF_COLUMN = "split_cutoff"  # the part's as-of day: features see nothing after it
HORIZON_COLUMN = "split_horizon_days"  # the part's target window, in days
DESIGN_COLUMN = "split_design"  # written only by holdout splits: "holdout"
HOLDOUT = "holdout"
# frames written before the shared lifecycle (CLTV's "train"/"evaluate") still read
LEGACY_PART_NAMES = {"train": FIT, "evaluate": VALIDATION}


def _day(value) -> pd.Timestamp:
    """Midnight UTC of a date-like (the feature builder's convention for as-of days)."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.normalize()


@dataclass(frozen=True)
class TimeSplit:
    """Named parts of a family's training data around one cutoff.

    ``cutoff``/``horizon_days`` describe the validation part; each part may carry its own as-of
    day and window (``part_cutoffs``/``part_horizons``: the fit part of a time-shifted model is a
    horizon earlier, or shorter when history is short).
    """

    cutoff: pd.Timestamp
    horizon_days: int
    parts: dict[str, pd.DataFrame]
    part_cutoffs: dict[str, pd.Timestamp] = field(default_factory=dict)
    part_horizons: dict[str, int] = field(default_factory=dict)
    holdout: bool = False  # parts are disjoint customers over one window (a randomised campaign), not successive windows

    def __post_init__(self):
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown split parts {sorted(unknown)}; a TimeSplit has {', '.join(PARTS)}")
        if VALIDATION not in self.parts:
            raise ValueError("a TimeSplit needs a validation part: the champion is chosen on it")
        cutoff = _day(self.cutoff)
        object.__setattr__(self, "cutoff", cutoff)
        object.__setattr__(self, "horizon_days", int(self.horizon_days))
        object.__setattr__(self, "part_cutoffs", {name: _day(day) for name, day in self.part_cutoffs.items()})
        object.__setattr__(self, "part_horizons", {name: int(days) for name, days in self.part_horizons.items()})
        if self.cutoff_of(VALIDATION) != cutoff or self.horizon_of(VALIDATION) != self.horizon_days:
            raise ValueError("the validation part's as-of day and window are the split's cutoff and horizon")
        if self.holdout:
            self._check_disjoint()
        # the guard against leakage every family shares: fit targets end by the cutoff, the test window starts after validation's
        elif FIT in self.parts and self.cutoff_of(FIT) + pd.Timedelta(days=self.horizon_of(FIT)) > cutoff:
            raise ValueError(f"the fit part's target window ends after the cutoff {cutoff.date()}: it would see the validation window")
        if TEST in self.parts and not self.holdout and self.cutoff_of(TEST) < cutoff + pd.Timedelta(days=self.horizon_days):
            raise ValueError("the test part starts inside the validation window: it must only report on data no choice saw")
        if REFIT in self.parts:
            last = (self.cutoff_of(TEST) + pd.Timedelta(days=self.horizon_of(TEST)) if TEST in self.parts and not self.holdout
                    else cutoff + pd.Timedelta(days=self.horizon_days))
            if self.cutoff_of(REFIT) < last:
                raise ValueError("the refit part's as-of day is before the end of the last evaluated window")

    def _check_disjoint(self, key: str = "customer_id") -> None:
        """A holdout's labelled parts share no customer: a model is never judged on a customer it was fitted on."""
        labelled = [name for name in (FIT, VALIDATION, TEST) if name in self.parts and key in self.parts[name].columns]
        for i, a in enumerate(labelled):
            for b in labelled[i + 1:]:
                shared = pd.Index(self.parts[a][key]).intersection(pd.Index(self.parts[b][key]))
                if len(shared):
                    raise ValueError(f"a holdout split's {a} and {b} parts share {len(shared):,} customers "
                                     f"(e.g. {', '.join(map(str, shared[:3]))}): the holdout would not be held out")

    def part(self, name: str) -> pd.DataFrame:
        """The rows of one part (an empty frame with the validation columns when it is absent)."""
        if name in self.parts:
            return self.parts[name]
        return self.parts[VALIDATION].iloc[:0]

    @property
    def fit(self) -> pd.DataFrame:
        return self.part(FIT)

    @property
    def validation(self) -> pd.DataFrame:
        return self.parts[VALIDATION]

    @property
    def test(self) -> pd.DataFrame:
        return self.part(TEST)

    def cutoff_of(self, name: str) -> pd.Timestamp:
        """A part's as-of day; by default fit rows end where validation starts and test rows start where it ends."""
        if name in self.part_cutoffs:
            return self.part_cutoffs[name]
        if self.holdout and name != REFIT:
            return self.cutoff
        if name == FIT:
            return self.cutoff - pd.Timedelta(days=self.horizon_of(FIT))
        if name == TEST:
            return self.cutoff + pd.Timedelta(days=self.horizon_days)
        return self.cutoff

    def horizon_of(self, name: str) -> int:
        return int(self.part_horizons.get(name, self.horizon_days))

    def origin(self, name: str) -> TimeSplit:
        """The split a candidate is fitted on at one origin (``validation``, ``test`` or ``refit``); see the module docstring.

        At ``test`` and ``refit`` the part predicted is that origin's window; the previous origin's
        evaluated rows are its fit rows (their targets end where the window starts). A holdout split
        fits its test origin on the validation rows and its refit origin on every labelled row.
        """
        if name == VALIDATION:
            parts = {k: v for k, v in self.parts.items() if k in (FIT, VALIDATION)}
            return TimeSplit(self.cutoff, self.horizon_days, parts, {k: self.cutoff_of(k) for k in parts}, {k: self.horizon_of(k) for k in parts},
                             holdout=self.holdout)
        if self.holdout:
            if name not in self.parts or name not in (TEST, REFIT):
                raise ValueError(f"this split has no {name} origin (parts: {', '.join(self.parts)})")
            labelled = [p for p in (FIT, VALIDATION, TEST) if p in self.parts and (name == REFIT or p != TEST)]
            fit_rows = pd.concat([self.parts[p] for p in labelled], ignore_index=True)
            if name == TEST:
                return TimeSplit(self.cutoff, self.horizon_days, {FIT: fit_rows, VALIDATION: self.parts[TEST]}, holdout=True)
            return TimeSplit(self.cutoff_of(REFIT), self.horizon_of(REFIT), {FIT: fit_rows, VALIDATION: self.parts[REFIT]},
                             {FIT: self.cutoff, VALIDATION: self.cutoff_of(REFIT)}, {FIT: self.horizon_days, VALIDATION: self.horizon_of(REFIT)},
                             holdout=False)
        chain = [VALIDATION, *(p for p in (TEST, REFIT) if p in self.parts)]
        if name not in chain[1:]:
            raise ValueError(f"this split has no {name} origin (parts: {', '.join(self.parts)})")
        previous = chain[chain.index(name) - 1]
        horizon = self.horizon_of(name)  # a refit part's horizon is the forecast horizon of production
        return TimeSplit(self.cutoff_of(name), horizon, {FIT: self.parts[previous], VALIDATION: self.parts[name]},
                         {FIT: self.cutoff_of(previous), VALIDATION: self.cutoff_of(name)},
                         {FIT: self.horizon_of(previous), VALIDATION: horizon})

    def describe(self) -> dict:
        """A JSON-ready summary (the lineage tag of every model fitted on this split)."""
        return {
            "cutoff": str(self.cutoff.date()),
            "horizon_days": int(self.horizon_days),
            **({"design": HOLDOUT} if self.holdout else {}),
            "parts": {name: {"rows": len(frame), "as_of": str(self.cutoff_of(name).date()), "horizon_days": self.horizon_of(name)}
                      for name, frame in self.parts.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        """One frame, parts in the order fit, validation, test, tagged with their name, as-of day and window."""
        design = {DESIGN_COLUMN: HOLDOUT} if self.holdout else {}
        pieces = [self.parts[name].assign(**{SPLIT_COLUMN: name, CUTOFF_COLUMN: self.cutoff_of(name), HORIZON_COLUMN: self.horizon_of(name), **design})
                  for name in PARTS if name in self.parts]
        return pd.concat(pieces, ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, cutoff_column: str | None = None, horizon_column: str | None = None) -> TimeSplit:
        """Inverse of ``to_frame``. ``cutoff_column``/``horizon_column`` read frames written without
        the split columns (CLTV's frames before the shared lifecycle: ``as_of`` and ``holdout_days``)."""
        if SPLIT_COLUMN not in frame.columns:
            raise ValueError(f"not a TimeSplit frame: no {SPLIT_COLUMN!r} column")
        names = frame[SPLIT_COLUMN].map(lambda name: LEGACY_PART_NAMES.get(name, name))
        cut_col = CUTOFF_COLUMN if CUTOFF_COLUMN in frame.columns else cutoff_column
        hor_col = HORIZON_COLUMN if HORIZON_COLUMN in frame.columns else horizon_column
        if cut_col is None or hor_col is None:
            raise ValueError(f"a TimeSplit frame needs {CUTOFF_COLUMN!r} and {HORIZON_COLUMN!r} columns")
        parts, cutoffs, horizons = {}, {}, {}
        for name in PARTS:
            rows = frame.loc[names == name]
            if rows.empty and name != VALIDATION:
                continue
            parts[name] = rows.drop(columns=[c for c in (SPLIT_COLUMN, CUTOFF_COLUMN, HORIZON_COLUMN, DESIGN_COLUMN) if c in rows.columns]).reset_index(drop=True)
            if len(rows):
                cutoffs[name] = _day(rows[cut_col].iloc[0])
                horizons[name] = int(rows[hor_col].iloc[0])
        if not len(parts[VALIDATION]):
            raise ValueError("the split frame has no validation rows")
        holdout = DESIGN_COLUMN in frame.columns and (frame[DESIGN_COLUMN] == HOLDOUT).any()
        return cls(cutoffs[VALIDATION], horizons[VALIDATION], parts, cutoffs, horizons, holdout=bool(holdout))


def rolling_origins(last_cutoff, n_origins: int, step_days: int) -> list[pd.Timestamp]:
    """Cutoffs for a rolling-origin backtest, oldest first: ``last_cutoff - k * step_days`` for k < n.

    Each origin gives its own ``TimeSplit`` (the family's split builder at that cutoff); a model
    whose advantage holds across origins is not the product of one lucky window.
    """
    if n_origins < 1 or step_days < 1:
        raise ValueError("rolling_origins needs n_origins >= 1 and step_days >= 1")
    last = _day(last_cutoff)
    return [last - pd.Timedelta(days=step_days * k) for k in range(n_origins - 1, -1, -1)]
