from pathlib import Path

import numpy as np
import pytest

from models.evaluate import bias_by_segment, eta_metrics, write_plots


def test_metrics_follow_their_definitions() -> None:
    """MAE, coverage, offset MAE and fallback rate match direct computation."""
    rng = np.random.default_rng(0)
    y = rng.uniform(300, 3000, 500)
    base = y * 0.8
    p50 = y + rng.normal(0, 60, 500)
    p90 = p50 + 120
    fb = rng.random(500) < 0.1
    m = eta_metrics(y, base, p50, p90, fb, train_median_residual_s=100.0)
    assert m["mae_min"] == pytest.approx(np.mean(np.abs(y - p50)) / 60)
    assert m["base_offset_mae_min"] == pytest.approx(np.mean(np.abs(y - base - 100.0)) / 60)
    assert m["p90_coverage"] == pytest.approx(np.mean(y <= p90))
    assert m["fallback_rate"] == pytest.approx(np.mean(fb))


def test_bias_by_segment_is_signed_mean_error() -> None:
    """Bias is predicted minus actual per segment, in minutes."""
    out = bias_by_segment(np.array([60.0, 120.0]), np.array([120.0, 60.0]), np.array([0, 1]))
    assert out == {"0": {"bias_min": 1.0, "n": 1}, "1": {"bias_min": -1.0, "n": 1}}


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    """Calibration and error-by-hour plots are PNG files."""
    rng = np.random.default_rng(1)
    y = rng.uniform(100, 900, 200)
    paths = write_plots(tmp_path, "t", y, y * 0.9, y, y * 1.2, rng.uniform(0, 24, 200))
    assert [p.name for p in paths] == ["t_calibration.png", "t_error_by_hour.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
