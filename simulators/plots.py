"""PNG plots for replay reports (matplotlib, Agg backend): policies side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch


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
    return _save(fig, path)


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
    return _save(fig, path)


def metric_bars(means: Mapping[str, Mapping[str, float]], keys: Sequence[str], path: Path) -> Path:
    """Grouped bars of mean metrics, one group per metric, one bar per column (policy/paper)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(2.2 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    names = list(means)
    colors = [f"C{i}" for i in range(len(names))]
    for ax, key in zip(axes, keys, strict=True):
        vals = [means[n].get(key, np.nan) for n in names]
        ax.bar(range(len(names)), vals, color=colors)
        ax.set_xticks([])
        ax.set_title(key, fontsize=9)
    # One legend under the panels names the bars, however long a policy variant's name is.
    handles = [Patch(color=c) for c in colors]
    fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    return _save(fig, path, rect=(0.0, 0.1, 1.0, 1.0))


def seed_bars(
    rows: Sequence[Mapping[str, object]], keys: Sequence[str], path: Path, title: str
) -> Path:
    """One panel per metric: each variant's mean over seeds as a bar, each seed as a dot."""
    variants = list(dict.fromkeys(str(r["variant"]) for r in rows))
    cols = 5
    fig, axes = plt.subplots(
        -(-len(keys) // cols), cols, figsize=(2.6 * cols, 2.6 * -(-len(keys) // cols))
    )
    flat = np.atleast_1d(axes).reshape(-1)
    for ax, key in zip(flat, keys, strict=False):
        for i, variant in enumerate(variants):
            values = [
                float(v)  # type: ignore[arg-type]
                for r in rows
                if r["variant"] == variant and (v := r.get(key)) is not None
            ]
            if not values:
                continue
            ax.bar(i, float(np.mean(values)), color=f"C{i}", alpha=0.6)
            ax.scatter(np.full(len(values), i), values, color=f"C{i}", s=10, zorder=3)
        ax.set_xticks(range(len(variants)), variants, fontsize=8)
        ax.set_title(key, fontsize=9)
    for ax in flat[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def ctod_breakdown(
    means: Mapping[str, Mapping[str, Mapping[str, float]]],
    parts: Sequence[str],
    path: Path,
    base: str = "direct",
) -> Path:
    """Minutes above the direct minimum per instance class, policies side by side.

    `means` maps policy to class to part to mean minutes (as `class_means` returns them).
    Each bar stacks the `parts` other than `base` for one policy and class; its label is the
    class's `ctod` (mean click-to-door, the base included).
    """
    names = list(means)
    classes = list(next(iter(means.values()), {}))
    stacked = [p for p in parts if p != base]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.5 * len(classes) * max(len(names), 2)), 4.2))
    x = np.arange(len(classes))
    width = 0.8 / max(len(names), 1)
    hatches = ["", "//", "..", "xx"]
    policies: list[Patch] = []
    for j, name in enumerate(names):
        offset = x - 0.4 + width * (j + 0.5)
        bottom = np.zeros(len(classes))
        for k, part in enumerate(stacked):
            vals = np.array([means[name].get(c, {}).get(part, np.nan) for c in classes])
            ax.bar(
                offset,
                vals,
                width,
                bottom=bottom,
                color=f"C{k + 1}",
                hatch=hatches[j % len(hatches)],
                edgecolor="white",
                label=part.replace("_", " ") if j == 0 else None,
            )
            bottom += np.nan_to_num(vals)
        totals = [means[name].get(c, {}).get("ctod", np.nan) for c in classes]
        for xi, top, total in zip(offset, bottom, totals, strict=True):
            if np.isnan(total):
                continue
            ax.text(xi, top, f"{total:.1f}", ha="center", va="bottom", fontsize=6)
        policies.append(Patch(facecolor="lightgrey", hatch=hatches[j % len(hatches)], label=name))
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel(f"minutes per order above {base}")
    ax.set_title(
        f"Click-to-door above the {base} minimum (bar label: click-to-door mean), by class",
        fontsize=10,
    )
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=[*handles, *policies], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0)
    )
    return _save(fig, path)


def food_wait_bands(
    bands: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]], path: Path
) -> Path:
    """Food waiting per band, one panel per grouping, policies side by side.

    `bands` maps grouping to policy to band to values (as `band_means` returns them; its `all`
    row is left out). Each bar stacks the band's contributions of the wait at placement and
    the wait after placement to the mean; its label is the band's share of delivered orders.
    """
    groupings = list(bands)
    fig, axes = plt.subplots(1, max(len(groupings), 1), figsize=(6.0 * max(len(groupings), 1), 4))
    axes = np.atleast_1d(axes)
    hatches = ["", "//", "..", "xx"]
    policies: list[Patch] = []
    for ax, grouping in zip(axes, groupings, strict=False):
        per_policy = bands[grouping]
        names = list(per_policy)
        labels = [b for b in next(iter(per_policy.values()), {}) if b != "all"]
        x = np.arange(len(labels))
        width = 0.8 / max(len(names), 1)
        for j, name in enumerate(names):
            offset = x - 0.4 + width * (j + 0.5)
            rows = [per_policy[name].get(b, {}) for b in labels]
            at = np.array([r.get("wait_at_placement", np.nan) for r in rows])
            after = np.array([r.get("wait_after_placement", np.nan) for r in rows])
            hatch = hatches[j % len(hatches)]
            first = j == 0
            ax.bar(
                offset,
                at,
                width,
                color="C1",
                hatch=hatch,
                edgecolor="white",
                label="wait at placement" if first else None,
            )
            ax.bar(
                offset,
                after,
                width,
                bottom=np.nan_to_num(at),
                color="C2",
                hatch=hatch,
                edgecolor="white",
                label="wait after placement" if first else None,
            )
            for xi, top, row in zip(
                offset, np.nan_to_num(at) + np.nan_to_num(after), rows, strict=True
            ):
                if "share" in row:
                    ax.text(
                        xi, top, f"{100 * row['share']:.0f}%", ha="center", va="bottom", fontsize=6
                    )
            if ax is axes[0]:
                policies.append(Patch(facecolor="lightgrey", hatch=hatch, label=name))
        ax.set_xticks(x, labels)
        ax.set_xlabel(grouping)
        ax.set_ylabel("minutes added to the mean food wait")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    handles, _ = axes[0].get_legend_handles_labels()
    axes[0].legend(handles=[*handles, *policies], fontsize=8, loc="upper right")
    fig.suptitle("Which orders the food waiting comes from (bar label: share of orders)")
    return _save(fig, path)


def _save(fig: Figure, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay `fig` out (within `rect` of the figure, if given), write it to `path` and close it."""
    fig.tight_layout(rect=rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
