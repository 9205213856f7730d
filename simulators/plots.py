"""PNG plots for replay reports (matplotlib, Agg backend): policies side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def ctod_distribution(
    values: Mapping[str, np.ndarray], path: Path, target_min: float = 40.0
) -> Path:
    """Histogram and empirical CDF of click-to-door minutes, one curve per policy."""
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    finite = [v for v in values.values() if v.size]
    top = float(np.percentile(np.concatenate(finite), 99.5)) if finite else 90.0
    bins = np.arange(0, max(top, target_min) + 2, 1.0)
    for name, v in values.items():
        if v.size == 0:
            continue
        hist.hist(
            v, bins=bins, histtype="step", density=True, label=f"{name} (mean {v.mean():.2f})"
        )
        xs = np.sort(v)
        cdf.plot(xs, np.arange(1, xs.size + 1) / xs.size, label=name)
    for ax in (hist, cdf):
        ax.axvline(target_min, color="grey", linestyle=":", label="target")
        ax.set_xlabel("click-to-door (min)")
        ax.legend()
    hist.set_ylabel("share of delivered orders")
    cdf.set_ylabel("cumulative share")
    cdf.set_xlim(0, max(top, target_min) + 2)
    fig.suptitle("Click-to-door distribution over all delivered orders")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def per_instance_scatter(
    ours: Sequence[float], theirs: Sequence[float], ours_name: str, theirs_name: str, path: Path
) -> Path:
    """Per-instance click-to-door means, one policy against the other, with the diagonal."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(theirs, ours, s=14)
    both = [*ours, *theirs]
    lo, hi = (min(both), max(both)) if both else (0.0, 1.0)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":")
    ax.set_xlabel(f"{theirs_name}: click-to-door mean (min)")
    ax.set_ylabel(f"{ours_name}: click-to-door mean (min)")
    ax.set_title("Per instance (below the diagonal: ours better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def metric_bars(means: Mapping[str, Mapping[str, float]], keys: Sequence[str], path: Path) -> Path:
    """Grouped bars of mean metrics, one group per metric, one bar per column (policy/paper)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(2.2 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    names = list(means)
    for ax, key in zip(axes, keys, strict=True):
        vals = [means[n].get(key, np.nan) for n in names]
        ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_title(key, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
