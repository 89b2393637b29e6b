"""Readable segment names and one-line descriptions from each segment's profile against the population.

The rule (deterministic: the same segments give the same names):

1. Each segment's profile is the mean z-score of its customers on every column of the input
   space (0 = the population's average, in standard deviations).
2. The **value word** comes from the first value column present (credit limit, else spend per
   purchase day, else ticket size): above +0.5 sd "High-", below -0.5 sd "Low-", else "Mid-"
   ("High-limit", "Low-spend", "Mid-ticket").
3. The **behaviour word** is the wording of the behaviour column furthest from average (largest
   |z| among the columns with a word for that side, at least 0.25 sd): "digital", "branch users",
   "callers", "in-store", "cash users", "multi-card", ...
4. Two segments with the same name: the smaller one adds its next behaviour word ("High-limit
   digital, multi-card"); still equal, a number. Names are unique.
5. The description lists the three columns furthest from average, in their own units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

VALUE_WORDS = {"Avg_Credit_Limit": "limit", "monetary": "spend", "avg_ticket": "ticket"}
# column -> (word when above average, word when below); None: no word on that side
BEHAVIOUR_WORDS = {
    "Total_visits_online": ("digital", None),
    "channel_share_online": ("online", "offline"),
    "Total_visits_bank": ("branch users", None),
    "channel_share_in_store": ("in-store", None),
    "Total_calls_made": ("callers", None),
    "channel_share_atm": ("cash users", None),
    "Total_Credit_Cards": ("multi-card", "few-card"),
    "category_entropy": ("all-round spenders", "focused spenders"),
    "refund_share": ("frequent returners", None),
    "recency": ("lapsed", "recently active"),
    "frequency": ("frequent buyers", "occasional buyers"),
    "purchase_days_90d": ("active", "quiet"),
    "spend_90d": ("active spenders", "quiet spenders"),
    "spend_trend": ("growing", "declining"),
    "T": ("long-standing", "new"),
    "avg_ticket": ("big-ticket", "small-ticket"),
    "monetary": ("high spenders", "low spenders"),
}
LABELS = {"Avg_Credit_Limit": "credit limit", "Total_Credit_Cards": "cards", "Total_visits_bank": "bank visits",
          "Total_visits_online": "online visits", "Total_calls_made": "calls", "avg_ticket": "ticket",
          "category_entropy": "category breadth", "refund_share": "refund share", "T": "tenure (days)",
          "purchase_days_90d": "purchase days (90 d)", "spend_90d": "spend (90 d)", "spend_trend": "spend trend"}
LEVEL = 0.5
BEHAVIOUR_MIN = 0.25


@dataclass(frozen=True)
class SegmentProfile:
    segment_id: int
    name: str
    description: str
    customers: int
    share: float
    z: dict[str, float]  # mean z-score per input column
    means: dict[str, float]  # mean per input column, in its own units


def _label(column: str) -> str:
    return LABELS.get(column, column.replace("channel_share_", "").replace("_", " ") + (" share" if column.startswith("channel_share_") else ""))


def _words(z: dict[str, float], value_column: str | None) -> list[str]:
    """Behaviour words, strongest first."""
    ranked = []
    for column, value in z.items():
        if column == value_column or column not in BEHAVIOUR_WORDS or abs(value) < BEHAVIOUR_MIN:
            continue
        word = BEHAVIOUR_WORDS[column][0 if value > 0 else 1]
        if word:
            ranked.append((-abs(value), column, word))
    return [word for _, _, word in sorted(ranked)]


def _value_word(z: dict[str, float], value_column: str | None) -> str:
    if value_column is None:
        return ""
    value = z[value_column]
    level = "High" if value > LEVEL else "Low" if value < -LEVEL else "Mid"
    return f"{level}-{VALUE_WORDS[value_column]}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def profile_segments(raw: pd.DataFrame, Z: np.ndarray, labels: np.ndarray) -> list[SegmentProfile]:
    """Name and describe each segment. ``raw``: the input columns in their own units (one row per
    customer, same order as ``Z``, the standardised matrix, and ``labels``)."""
    columns = list(raw.columns)
    labels = np.asarray(labels)
    value_column = next((c for c in VALUE_WORDS if c in columns), None)
    population = raw.mean()
    ids = sorted(int(v) for v in np.unique(labels))
    drafts = []
    for segment in ids:
        rows = labels == segment
        z = dict(zip(columns, Z[rows].mean(axis=0).round(6)))
        means = raw.loc[rows].mean()
        words = _words(z, value_column)
        base = " ".join(w for w in (_value_word(z, value_column), words[0] if words else "customers") if w)
        strongest = sorted(columns, key=lambda c: -abs(z[c]))[:3]
        detail = "; ".join(f"{_label(c)} {_fmt(means[c])} vs {_fmt(population[c])}" for c in strongest)
        drafts.append([segment, base, words, int(rows.sum()), detail, z, means.to_dict()])
    # unique names: the smaller of two equal names adds its next behaviour word, then a number
    drafts.sort(key=lambda d: (-d[3], d[0]))
    taken: set[str] = set()
    profiles = []
    for segment, base, words, size, detail, z, means in drafts:
        name, extra = base, 1
        while name.lower() in {t.lower() for t in taken} and extra < len(words):
            name, extra = f"{base}, {words[extra]}", extra + 1
        number = 2
        while name.lower() in {t.lower() for t in taken}:
            name, number = f"{base} {number}", number + 1
        taken.add(name)
        name = name[0].upper() + name[1:]
        profiles.append(SegmentProfile(segment, name, f"{size:,} customers ({size / len(labels):.0%}): {detail}", size,
                                       size / len(labels), z, means))
    return sorted(profiles, key=lambda p: p.segment_id)


def profile_table(profiles: list[SegmentProfile], key_columns: list[str] | None = None, revenue: pd.Series | None = None,
                  labels: np.ndarray | None = None) -> pd.DataFrame:
    """One row per segment: name, size, share, the key features' means and (given ``revenue`` per customer) the revenue share."""
    columns = key_columns or list(profiles[0].means) if profiles else []
    rows = {}
    for p in profiles:
        row = {"name": p.name, "customers": p.customers, "share": round(p.share, 3), **{_label(c): p.means[c] for c in columns}}
        if revenue is not None and labels is not None:
            total = float(np.nansum(revenue))
            row["revenue_share"] = float(np.nansum(np.asarray(revenue)[np.asarray(labels) == p.segment_id]) / total) if total else np.nan
        rows[p.segment_id] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "segment_id"
    return table
