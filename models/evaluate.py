"""Evaluation of served ETAs against realized durations: metrics, segment bias and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def eta_metrics(
    actual_s: FloatArray,
    base_eta_s: FloatArray,
    p50_s: FloatArray,
    p90_s: FloatArray,
    fallback: npt.NDArray[np.bool_],
    train_median_residual_s: float,
) -> dict[str, float]:
    """Headline metrics in minutes (see the `eta bench` JSON keys).

    `p50_abs_err_min` and `p90_abs_err_min` are the median and 90th percentile of the p50
    absolute error; `p90_coverage` is the share of outcomes at or below p90.
    """
    y = np.asarray(actual_s, dtype=np.float64)
    err = np.abs(y - p50_s)
    n = int(y.size)
    if n == 0:
        raise ValueError("no rows to evaluate")
    return {
        "n_test": n,
        "base_mae_min": float(np.mean(np.abs(y - base_eta_s)) / 60.0),
        "base_offset_mae_min": float(
            np.mean(np.abs(y - base_eta_s - train_median_residual_s)) / 60.0
        ),
        "mae_min": float(np.mean(err) / 60.0),
        "p50_abs_err_min": float(np.quantile(err, 0.5) / 60.0),
        "p90_abs_err_min": float(np.quantile(err, 0.9) / 60.0),
        "p90_coverage": float(np.mean(y <= p90_s)),
        "fallback_rate": float(np.mean(fallback)),
    }


def bias_by_segment(
    actual_s: FloatArray, p50_s: FloatArray, segment: npt.NDArray[Any]
) -> dict[str, dict[str, float]]:
    """Mean signed error (predicted − actual, minutes) and count per segment value."""
    out: dict[str, dict[str, float]] = {}
    for value in np.unique(segment):
        m = segment == value
        out[str(value)] = {
            "bias_min": float(np.mean(p50_s[m] - actual_s[m]) / 60.0),
            "n": int(m.sum()),
        }
    return out


def calibration_curve(
    actual_s: FloatArray, p50_s: FloatArray, p90_s: FloatArray
) -> list[tuple[float, float]]:
    """Nominal vs observed coverage at the two served quantiles (0.5 and 0.9)."""
    return [
        (0.5, float(np.mean(actual_s <= p50_s))),
        (0.9, float(np.mean(actual_s <= p90_s))),
    ]


def write_plots(
    out_dir: Path,
    name: str,
    actual_s: FloatArray,
    base_eta_s: FloatArray,
    p50_s: FloatArray,
    p90_s: FloatArray,
    hour: FloatArray,
) -> list[Path]:
    """Write `<name>_calibration.png` and `<name>_error_by_hour.png`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    # Nominal levels exist only at the two served quantiles (t = 0 and t = 1); the curve shows
    # the observed coverage of p50 + t·(p90 − p50) around them.
    ts = np.linspace(-1.0, 2.0, 31)
    observed = [float(np.mean(actual_s <= p50_s + t * (p90_s - p50_s))) for t in ts]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(ts, observed, label="observed coverage of p50 + t·(p90 − p50)")
    ax.scatter([0.0, 1.0], [0.5, 0.9], color="red", zorder=3, label="nominal at p50 and p90")
    ax.axhline(0.9, color="grey", lw=0.5)
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("t")
    ax.set_ylabel("share of outcomes ≤ prediction")
    ax.set_title(f"{name}: calibration")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / f"{name}_calibration.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    paths.append(p)

    hours = np.floor(np.mod(hour, 24)).astype(int)
    model_mae = [
        float(np.mean(np.abs(actual_s - p50_s)[hours == h]) / 60) if np.any(hours == h) else np.nan
        for h in range(24)
    ]
    base_mae = [
        float(np.mean(np.abs(actual_s - base_eta_s)[hours == h]) / 60)
        if np.any(hours == h)
        else np.nan
        for h in range(24)
    ]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(range(24), base_mae, marker="o", label="base ETA")
    ax.plot(range(24), model_mae, marker="o", label="model p50")
    ax.set_xlabel("local hour of request")
    ax.set_ylabel("MAE (min)")
    ax.set_title(f"{name}: absolute error by hour")
    ax.legend()
    fig.tight_layout()
    p = out_dir / f"{name}_error_by_hour.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    paths.append(p)
    return paths
