"""Conformal calibration of the upper quantile on a recent window of the training period."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


class CalibrationError(ValueError):
    """Too few calibration rows, or an invalid coverage level."""


def conformal_margin(
    scores: npt.NDArray[np.float64],
    coverage: float = 0.9,
    blocks: int = 1,
    ts_ms: npt.NDArray[np.int64] | None = None,
) -> float:
    """Margin to add to an upper-quantile prediction so it covers `coverage` of outcomes.

    `scores` are `target - predicted_upper_quantile` on calibration rows the model did not
    train on. With `blocks == 1` this is split conformal: the ⌈(n + 1)·coverage⌉-th smallest
    score. With `blocks > 1` the rows are cut into that many consecutive time blocks (by
    `ts_ms`), the split-conformal margin is taken in each, and the median of the block margins is
    returned, so that one exceptional block (a holiday, a sports final) does not set the margin
    for every other day.

    Raises:
        CalibrationError: fewer than 10 rows per block or coverage outside (0, 1).
    """
    if not 0.0 < coverage < 1.0:
        raise CalibrationError(f"coverage must be in (0, 1), got {coverage}")
    s = np.asarray(scores, dtype=np.float64)
    s_finite = np.isfinite(s)
    if blocks < 1:
        raise CalibrationError(f"blocks must be ≥ 1, got {blocks}")
    if ts_ms is not None:
        order = np.argsort(np.asarray(ts_ms)[s_finite], kind="stable")
        s = s[s_finite][order]
    else:
        s = s[s_finite]
    if s.size < 10 * blocks:
        raise CalibrationError(
            f"need at least {10 * blocks} finite calibration scores for {blocks} blocks, "
            f"got {s.size}"
        )
    margins = [_split_conformal(part, coverage) for part in np.array_split(s, blocks)]
    return float(np.median(margins))


def _split_conformal(s: npt.NDArray[np.float64], coverage: float) -> float:
    n = s.size
    k = min(n, math.ceil((n + 1) * coverage))
    return float(np.partition(s, k - 1)[k - 1])


def coverage_rate(y: npt.NDArray[np.float64], upper: npt.NDArray[np.float64]) -> float:
    """Share of outcomes at or below the predicted upper quantile."""
    yy = np.asarray(y, dtype=np.float64)
    if yy.size == 0:
        return float("nan")
    return float(np.mean(yy <= np.asarray(upper, dtype=np.float64)))
