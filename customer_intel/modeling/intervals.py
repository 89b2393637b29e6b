"""Predictive intervals from posterior draws, for any family whose predictive is simulated.

Predictive distributions here are often discrete with an atom at zero (purchase counts of
customers who may have dropped out): the shortest window holding at least the nominal
probability, plus the end weights that make it a randomised interval of exactly that
probability (``Interval``), is the construction that stays calibrated for them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


def shortest_window(samples: np.ndarray, probability: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the lowest of the shortest windows holding ``ceil(probability * n)`` of the samples.

    Returns the sorted samples and the window's ends; the window holds at least
    ``probability`` (more when its ends are tied values of a discrete distribution).
    """
    ordered = np.sort(samples, axis=1)
    n = ordered.shape[1]
    k = int(np.ceil(probability * n)) - 1  # window of k + 1 samples
    rows = np.arange(ordered.shape[0])
    start = np.argmin(ordered[:, k:] - ordered[:, : n - k], axis=1)  # lowest of the shortest windows
    return ordered, ordered[rows, start], ordered[rows, start + k]


def shortest_interval(samples: np.ndarray, probability: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the shortest interval whose probability under the samples is closest to ``probability``.

    Predictive distributions here have an atom at zero (customers who have dropped out) and,
    for purchases, are discrete. A central interval whose lower quantile sits on the atom holds
    the whole atom and over-covers; the shortest window of ``probability`` of the samples starts
    at zero instead. On a discrete distribution that window usually holds more than
    ``probability`` (ties at its ends), so each end is also tried one distinct value inward and
    the candidate whose probability is nearest the target is kept (the window itself on ties).
    """
    ordered, lo, hi = shortest_window(samples, probability)
    n = ordered.shape[1]
    rows = np.arange(ordered.shape[0])

    def count(op, bound):
        return op(ordered, bound[:, None]).sum(axis=1)

    below_lo, upto_lo = count(np.less, lo), count(np.less_equal, lo)
    below_hi, upto_hi = count(np.less, hi), count(np.less_equal, hi)
    candidates = [
        (lo, hi, (upto_hi - below_lo) / n, np.ones(len(rows), dtype=bool)),
        (lo, ordered[rows, np.maximum(below_hi - 1, 0)], (below_hi - below_lo) / n, below_hi > upto_lo),
        (ordered[rows, np.minimum(upto_lo, n - 1)], hi, (upto_hi - upto_lo) / n, upto_lo < below_hi),
    ]
    best_lo, best_hi = lo.copy(), hi.copy()
    best_gap = np.abs(candidates[0][2] - probability)
    for cand_lo, cand_hi, mass, valid in candidates[1:]:
        better = valid & (np.abs(mass - probability) < best_gap)
        best_lo, best_hi = np.where(better, cand_lo, best_lo), np.where(better, cand_hi, best_hi)
        best_gap = np.where(better, np.abs(mass - probability), best_gap)
    return best_lo, best_hi


class Interval(NamedTuple):
    """A predictive interval per row, with the randomisation that makes its probability exact.

    A discrete predictive (purchase counts, an atom at zero) rarely puts exactly 80% on any set
    of values: [0, 0] holds 95% for a customer who has almost surely dropped out. ``low`` and
    ``high`` bound the shortest window holding at least the nominal probability; the
    randomised interval includes its lower end with probability ``low_weight`` and its upper
    end with ``high_weight`` (1 = always), chosen so that it holds exactly the nominal
    probability -- the standard construction for discrete distributions (as for randomised
    tests, and the PIT of Czado, Gneiting & Held 2009). Its expected coverage of the actual
    value is the calibration check for the whole population.
    """

    low: np.ndarray
    high: np.ndarray
    low_weight: np.ndarray
    high_weight: np.ndarray

    @classmethod
    def from_columns(cls, frame: pd.DataFrame, prefix: str) -> Interval:
        """The interval stored as ``<prefix>_low``, ``_high``, ``_low_weight``, ``_high_weight`` (as ``predict`` writes it)."""
        return cls(*(frame[f"{prefix}_{field}"].to_numpy() for field in cls._fields))


def interval_from_samples(samples: np.ndarray, probability: float) -> Interval:
    """The shortest window holding at least ``probability`` and the end weights that make it hold exactly that."""
    _, lo, hi = shortest_window(samples, probability)
    mass = ((samples >= lo[:, None]) & (samples <= hi[:, None])).mean(axis=1)
    mass_lo = (samples == lo[:, None]).mean(axis=1)
    mass_hi = (samples == hi[:, None]).mean(axis=1)
    excess = np.maximum(mass - probability, 0.0)
    trim_lo = np.minimum(excess, mass_lo)  # trim the lower end first: it is the atom at zero when there is one
    low_weight = 1.0 - np.divide(trim_lo, mass_lo, out=np.zeros_like(mass), where=mass_lo > 0)
    rest = np.where(hi > lo, excess - trim_lo, 0.0)
    high_weight = 1.0 - np.divide(rest, mass_hi, out=np.zeros_like(mass), where=mass_hi > 0)
    high_weight = np.where(hi > lo, high_weight, low_weight)
    return Interval(lo, hi, np.clip(low_weight, 0, 1), np.clip(high_weight, 0, 1))
