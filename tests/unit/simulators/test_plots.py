"""Report plots are written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators.plots import ctod_distribution, metric_bars, per_instance_scatter


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
