"""SHAP reasons in words: each at-risk customer's top contributions, signed, on the log-odds of churn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_intel.churn.model import STACK_COLUMN, Explanation
from customer_intel.features.rfm import COLUMN_DESCRIPTIONS, TREND_WINDOW_DAYS

PHRASES = {
    "recency": "no purchase for {v:.0f} days",
    "frequency": "{v:.0f} repeat purchase days",
    "T": "a customer for {v:.0f} days",
    "t_x": "{v:.0f} days between the first and the last purchase",
    "monetary": "spends {v:,.2f} per purchase day",
    "monetary_value": "spends {v:,.2f} per repeat purchase day",
    "total_spend": "{v:,.2f} spent to date",
    f"spend_{TREND_WINDOW_DAYS}d": f"{{v:,.2f}} spent in the last {TREND_WINDOW_DAYS} days",
    f"spend_prev_{TREND_WINDOW_DAYS}d": f"{{v:,.2f}} spent in the {TREND_WINDOW_DAYS} days before those",
    "spend_trend": "spend trend {v:+.2f}",
    f"purchase_days_{TREND_WINDOW_DAYS}d": f"{{v:.0f}} purchase days in the last {TREND_WINDOW_DAYS} days",
    "avg_ticket": "average ticket {v:,.2f}",
    "refund_share": "{v:.0%} of transactions are refunds",
    "category_entropy": "category variety {v:.2f} bits",
    "Total_visits_online": "{v:.0f} online visits",
    "Total_visits_bank": "{v:.0f} branch visits",
    "Total_calls_made": "{v:.0f} calls made",
    "Avg_Credit_Limit": "credit limit {v:,.0f}",
    "Total_Credit_Cards": "{v:.0f} credit cards",
    STACK_COLUMN: "BG/NBD log-odds of no purchase {v:+.2f}",
}
WINDOW_REASON = "longer window than the model was trained on"


def phrase(name: str, value: float) -> str:
    """A feature's value as a reader would say it ("no purchase for 140 days")."""
    if name in PHRASES:
        try:
            return PHRASES[name].format(v=float(value))
        except (TypeError, ValueError):
            pass
    if name.startswith("channel_share_"):
        return f"{float(value):.0%} of transactions via {name.removeprefix('channel_share_')}"
    label = COLUMN_DESCRIPTIONS.get(name, name)
    return f"{label}: {float(value):.3g}"


def top_reasons(explanation: Explanation, k: int = 3) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per row the (at most) ``k`` inputs pushing the risk up most, largest positive SHAP value first: (names rows x k,
    contributions rows x k; None and NaN where fewer than ``k`` push up, readable text). Inputs that lower the risk are
    not reasons for it and are left out."""
    phi = np.asarray(explanation.contributions, dtype=float)
    n = len(phi)
    k = min(k, phi.shape[1]) if phi.ndim == 2 and phi.shape[1] else 0
    order = np.lexsort((-np.abs(phi), -(phi > 0).astype(int)), axis=1)[:, :k] if k else np.zeros((n, 0), dtype=int)
    names = np.asarray(explanation.names, dtype=object)[order] if k else np.empty((n, 0), dtype=object)
    values = np.take_along_axis(phi, order, axis=1) if k else np.empty((n, 0))
    raw = explanation.values.to_numpy(dtype=float) if len(explanation.values.columns) == phi.shape[1] else None
    names = names.copy()
    names[~(values > 0)] = None
    values = np.where(values > 0, values, np.nan)
    texts = []
    for i in range(n):
        parts = []
        for j in range(k):
            if names[i, j] is None:
                continue
            shown = raw[i, order[i, j]] if raw is not None else np.nan
            parts.append(f"{phrase(names[i, j], shown)}: {values[i, j]:+.2f}")
        if not parts:
            parts.append("no input raises the risk above the reference customer's")
        if abs(explanation.shift[i]) >= 0.005:
            parts.append(f"{WINDOW_REASON}: {explanation.shift[i]:+.2f}")
        texts.append("; ".join(parts))
    return names, values, texts


def global_importance(explanation: Explanation) -> pd.Series:
    """Mean |SHAP| per input, largest first."""
    phi = np.abs(np.asarray(explanation.contributions, dtype=float))
    return pd.Series(phi.mean(axis=0), index=explanation.names, name="mean_abs_shap").sort_values(ascending=False)
