"""Plots of a segmentation for asset metadata: a radar chart per segment and the k-selection curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from customer_intel.reporting import png_markdown
from customer_intel.segmentation.naming import SegmentProfile, _label


def radar_markdown(profile: SegmentProfile, limit: float = 2.0) -> str:
    """One segment's mean z-scores (clipped to ±``limit``) on every input column, against the population's 0."""
    columns = list(profile.z)
    values = np.clip([profile.z[c] for c in columns], -limit, limit)
    angles = np.linspace(0, 2 * np.pi, len(columns), endpoint=False)
    fig, ax = plt.subplots(figsize=(3.0, 3.0), subplot_kw={"polar": True})
    ax.plot(np.r_[angles, angles[:1]], np.r_[values, values[:1]] + limit, color="#3b6ea8")
    ax.fill(np.r_[angles, angles[:1]], np.r_[values, values[:1]] + limit, color="#3b6ea8", alpha=0.25)
    ax.plot(np.r_[angles, angles[:1]], np.full(len(columns) + 1, limit), color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 2 * limit)
    ax.set_yticklabels([])
    ax.set_xticks(angles)
    ax.set_xticklabels([_label(c) for c in columns], fontsize=6)
    ax.set_title(f"{profile.segment_id}: {profile.name}", fontsize=8)
    return png_markdown(fig, f"segment {profile.segment_id} radar")


def curves_markdown(curves: dict[str, dict[int, float]], title: str) -> str:
    """k on x, one panel per curve (e.g. K-Means inertia and silhouette by k, GMM BIC by k)."""
    curves = {name: c for name, c in curves.items() if c}
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(3.0 * max(len(curves), 1), 2.4), squeeze=False)
    for ax, (name, curve) in zip(axes[0], curves.items()):
        ks = sorted(curve)
        ax.plot(ks, [curve[k] for k in ks], marker="o", color="#3b6ea8")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("k", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return png_markdown(fig, title)
