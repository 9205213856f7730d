"""Report plots are written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators.plots import (
    ctod_breakdown,
    ctod_distribution,
    food_wait_bands,
    metric_bars,
    per_instance_scatter,
)


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_are_png_files(tmp_path: Path) -> None:
    """Each plot helper writes a PNG where it was asked to."""
    values = {"ours": np.array([20.0, 30, 41]), "greedy": np.array([25.0, 35, 50])}
    assert _is_png(ctod_distribution(values, tmp_path / "a" / "ctod.png"))
    assert _is_png(
        per_instance_scatter([30.0, 31], [32.0, 35], "ours", "greedy", tmp_path / "s.png")
    )
    assert _is_png(
        metric_bars(
            {"ours": {"ctod_mean": 30.0}, "paper": {"ctod_mean": 32.7}},
            ["ctod_mean"],
            tmp_path / "b.png",
        )
    )


def test_breakdown_plot_is_a_png_file(tmp_path: Path) -> None:
    """The breakdown plot draws every policy's classes, a class missing in one included."""
    parts = {"direct": 30.0, "food_wait": 1.0, "bundle_delay": 0.2}
    means = {
        "ours": {"all": parts, "o50": parts},
        "greedy": {"all": {**parts, "food_wait": 4.0}},
    }
    assert _is_png(ctod_breakdown(means, list(parts), tmp_path / "c" / "breakdown.png"))


def test_food_wait_bands_plot_is_a_png_file(tmp_path: Path) -> None:
    """The food-wait plot draws every grouping and policy, a band missing in one included."""
    band = {"share": 0.5, "wait_at_placement": 0.3, "wait_after_placement": 0.1}
    bands = {
        "prep": {"ours": {"0-5": band, "6-10": band, "all": band}, "greedy": {"0-5": band}},
        "history": {"ours": {"0": band}, "greedy": {"0": {**band, "share": 0.4}}},
    }
    assert _is_png(food_wait_bands(bands, tmp_path / "d" / "bands.png"))
