"""Small, Dagster-free helpers that turn frames into Markdown tables and PNG plots for asset metadata."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and in tests
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3g", index: bool = True) -> str:
    return frame.to_markdown(floatfmt=floatfmt, index=index)


def png_markdown(figure, alt: str) -> str:
    """Embed a matplotlib figure as a base64 PNG in Markdown (Dagster has no image metadata type)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def histograms_markdown(frame: pd.DataFrame, columns: list[str], title: str) -> str:
    """One small histogram per column, side by side, clipped at the 99th percentile for readability."""
    columns = [c for c in columns if c in frame.columns]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 2.4), squeeze=False)
    for ax, column in zip(axes[0], columns):
        values = pd.to_numeric(frame[column], errors="coerce").dropna().to_numpy()
        if values.size:
            hi = np.percentile(values, 99)
            ax.hist(np.clip(values, None, hi), bins=30, color="#3b6ea8")
        ax.set_title(column, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return png_markdown(fig, title)


def summary_table(frame: pd.DataFrame, columns: list[str]) -> str:
    """count / mean / quartiles / max of numeric columns as a Markdown table."""
    numeric = frame[[c for c in columns if c in frame.columns]].apply(pd.to_numeric, errors="coerce")
    stats = numeric.describe(percentiles=[0.25, 0.5, 0.75]).T[["mean", "std", "min", "25%", "50%", "75%", "max"]]
    return markdown_table(stats)


def calibration_plot_markdown(actual: np.ndarray, predictions: dict[str, np.ndarray], bins: int = 10) -> str:
    """Mean predicted vs mean actual per decile of each model's prediction: on the diagonal is calibrated."""
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    top = 0.0
    for name, predicted in predictions.items():
        predicted = np.asarray(predicted, dtype=float)
        if np.isnan(predicted).any():
            continue
        order = np.argsort(predicted, kind="stable")
        groups = np.array_split(order, bins)
        x = [predicted[g].mean() for g in groups]
        y = [np.asarray(actual, dtype=float)[g].mean() for g in groups]
        ax.plot(x, y, marker="o", ms=3, label=name)
        top = max(top, max(x), max(y))
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mean predicted (decile)", fontsize=8)
    ax.set_ylabel("mean actual", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("holdout calibration", fontsize=9)
    return png_markdown(fig, "holdout calibration")
