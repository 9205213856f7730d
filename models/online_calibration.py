"""Online (adaptive) recalibration of the served p90 from realized outcomes, in event time.

A model's static p90 margin is fitted once, on a window of its training period; when the
error level drifts afterwards, its coverage drifts with it. `OnlineMarginTracker` corrects
the margin as outcomes arrive: every completed delivery or trip says whether its actual
duration exceeded the p90 that was served for it (a miss), and the margin offset moves by

    offset += step × (miss − (1 − coverage))

(online quantile tracking: a miss raises the p90, a hit lowers it slightly; at the target
coverage the two balance). Over any stretch of T outcomes the share of misses differs from
`1 − coverage` by at most (offset range + step) / (step · T), whatever the outcomes are.

Causality: an outcome is used only by predictions whose request time is strictly later than
the outcome's completion time. Outcomes may be recorded at any moment (even before they
complete, in a replay); `offset_at(now_ts_ms)` applies exactly those completed before
`now_ts_ms`, in completion order. A request older than one already served gets the offset
as it stood at an earlier request time not after its own (or no offset), never one that
includes later outcomes.

`OnlineCalibratedModel` is the served path: a `ResidualQuantileModel` whose p90 carries the
tracker's current offset (in target units: seconds for additive targets, log-ratio for
travel legs), plus `record_outcome` for the worker to call when an order completes.
"""

from __future__ import annotations

import bisect
import heapq
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.residual import ResidualPrediction, ResidualQuantileModel, Target

FloatArray = npt.NDArray[np.float64]

#: Default step as a share of the calibration scores' scale (see `score_scale_of`). Chosen
#: a priori: a coverage error of a few points is corrected within about a hundred outcomes,
#: while the offset's own jitter stays near a tenth of the score scale.
DEFAULT_LEARNING_RATE = 0.05
#: The offset never leaves ±this many score scales (guards against a broken outcome feed).
DEFAULT_MAX_OFFSET_SCALES = 3.0
#: Past (request time, offset) pairs kept to answer requests that arrive out of order.
_HISTORY = 4096


class OnlineCalibrationError(ValueError):
    """Invalid tracker settings, or an outcome or request time that cannot be used."""


@dataclass(frozen=True)
class TrackerState:
    """A snapshot of an `OnlineMarginTracker` (for metrics and reports).

    Attributes:
        offset: current margin offset (target units).
        applied: outcomes applied so far.
        missed: of those, how many exceeded their served p90.
        pending: outcomes recorded but not yet completed before the latest request time.
        cutoff_ts_ms: the latest request time seen (outcomes before it are applied).
    """

    offset: float
    applied: int
    missed: int
    pending: int
    cutoff_ts_ms: int | None

    @property
    def observed_coverage(self) -> float:
        """Share of applied outcomes that were covered by their served p90 (NaN if none)."""
        return float("nan") if self.applied == 0 else 1.0 - self.missed / self.applied


class OnlineMarginTracker:
    """Quantile tracking of the p90 margin offset from served outcomes (see the module doc).

    Args:
        step: offset change per unit of (miss − (1 − coverage)), in target units (> 0).
        coverage: target share of outcomes at or below the served p90, in (0, 1).
        max_offset: the offset is kept within ±max_offset (> 0; None = unbounded).

    Raises:
        OnlineCalibrationError: invalid settings.
    """

    def __init__(self, step: float, coverage: float = 0.9, max_offset: float | None = None):
        if not math.isfinite(step) or step <= 0.0:
            raise OnlineCalibrationError(f"step must be a positive number, got {step}")
        if not 0.0 < coverage < 1.0:
            raise OnlineCalibrationError(f"coverage must be in (0, 1), got {coverage}")
        if max_offset is not None and not max_offset > 0.0:
            raise OnlineCalibrationError(f"max_offset must be positive, got {max_offset}")
        self.step = float(step)
        self.coverage = float(coverage)
        self.max_offset = max_offset
        self._offset = 0.0
        self._pending: list[tuple[int, int, bool]] = []
        self._seq = 0
        self._applied = 0
        self._missed = 0
        self._cutoff: int | None = None
        self._history_ts: list[int] = []
        self._history_offset: list[float] = []
        self._lock = threading.Lock()

    def record(self, completion_ts_ms: int, missed: bool) -> None:
        """Queue one outcome: completed at `completion_ts_ms`, `missed` = above its served p90.

        Raises:
            OnlineCalibrationError: the completion time is not an integer epoch-ms time.
        """
        if isinstance(completion_ts_ms, bool) or not isinstance(completion_ts_ms, int | np.integer):
            raise OnlineCalibrationError("completion_ts_ms must be an integer epoch-ms time")
        with self._lock:
            heapq.heappush(self._pending, (int(completion_ts_ms), self._seq, bool(missed)))
            self._seq += 1

    def offset_at(self, now_ts_ms: int) -> float:
        """The offset for a request at `now_ts_ms`, from outcomes completed before it only.

        Every recorded outcome completed before `now_ts_ms` is applied. A request older than
        the latest one seen gets the offset of the latest earlier-or-equal request time still
        remembered, or 0 (the static margin) when there is none.
        """
        now = int(now_ts_ms)
        with self._lock:
            if self._cutoff is not None and now < self._cutoff:
                i = bisect.bisect_right(self._history_ts, now)
                return self._history_offset[i - 1] if i > 0 else 0.0
            self._cutoff = now
            pending = self._pending
            alpha = 1.0 - self.coverage
            while pending and pending[0][0] < now:
                _, _, missed = heapq.heappop(pending)
                self._applied += 1
                self._missed += int(missed)
                offset = self._offset + self.step * (float(missed) - alpha)
                if self.max_offset is not None:
                    offset = min(max(offset, -self.max_offset), self.max_offset)
                self._offset = offset
            if self._history_ts and self._history_ts[-1] == now:
                self._history_offset[-1] = self._offset
            else:
                self._history_ts.append(now)
                self._history_offset.append(self._offset)
                if len(self._history_ts) > _HISTORY:
                    del self._history_ts[: _HISTORY // 2]
                    del self._history_offset[: _HISTORY // 2]
            return self._offset

    def state(self) -> TrackerState:
        """Current snapshot (does not apply pending outcomes)."""
        with self._lock:
            return TrackerState(
                offset=self._offset,
                applied=self._applied,
                missed=self._missed,
                pending=len(self._pending),
                cutoff_ts_ms=self._cutoff,
            )


def score_scale_of(model: ResidualQuantileModel) -> float:
    """Scale of the model's calibration scores, in target units (positive).

    The spread between the 90th and 50th percentile of the calibration scores when the model
    recorded it (`p90_score_scale` in its metadata); otherwise the size of its static p90
    margins, or 1 minute (additive) / 0.1 (log-ratio) when those are zero.
    """
    raw = model.metadata.get("p90_score_scale")
    if isinstance(raw, int | float) and math.isfinite(raw) and raw > 0.0:
        return float(raw)
    margins = [model.p90_margin] if model.p90_bins is None else list(model.p90_bins[2])
    size = float(np.mean(np.abs(margins))) if margins else 0.0
    if math.isfinite(size) and size > 0.0:
        return size
    return 60.0 if model.target is Target.ADDITIVE else 0.1


def tracker_for(
    model: ResidualQuantileModel,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    max_offset_scales: float = DEFAULT_MAX_OFFSET_SCALES,
    coverage: float | None = None,
) -> OnlineMarginTracker:
    """A fresh tracker for `model`: step and bound in units of `score_scale_of(model)`.

    `coverage` defaults to the model's training coverage (`train_config.coverage`, else 0.9).

    Raises:
        OnlineCalibrationError: non-positive learning rate or bound.
    """
    if not learning_rate > 0.0 or not max_offset_scales > 0.0:
        raise OnlineCalibrationError("learning_rate and max_offset_scales must be positive")
    if coverage is None:
        cfg = model.metadata.get("train_config")
        coverage = float(cfg.get("coverage", 0.9)) if isinstance(cfg, Mapping) else 0.9
    scale = score_scale_of(model)
    return OnlineMarginTracker(
        step=learning_rate * scale, coverage=coverage, max_offset=max_offset_scales * scale
    )


class OnlineCalibratedModel:
    """A residual model served with an online-recalibrated p90 (see the module doc).

    Args:
        model: the residual model; its p50 is served unchanged.
        tracker: the margin tracker (default: `tracker_for(model)`).
    """

    def __init__(
        self, model: ResidualQuantileModel, tracker: OnlineMarginTracker | None = None
    ) -> None:
        self.model = model
        self.tracker = tracker or tracker_for(model)

    def predict(
        self,
        features: npt.NDArray[np.float32],
        base_eta_s: npt.ArrayLike,
        request_ts_ms: int,
    ) -> ResidualPrediction:
        """Served p50/p90 for rows requested at `request_ts_ms`.

        The p90 uses only outcomes completed before `request_ts_ms`.
        """
        offset = self.tracker.offset_at(request_ts_ms)
        return self.model.predict(features, base_eta_s, p90_offset=offset)

    def record_outcome(self, completion_ts_ms: int, actual_s: float, served_p90_s: float) -> None:
        """Feed back one completed order: its actual duration against the p90 it was served.

        Raises:
            OnlineCalibrationError: a non-finite duration or a bad completion time.
        """
        if not (math.isfinite(actual_s) and math.isfinite(served_p90_s)):
            raise OnlineCalibrationError("actual_s and served_p90_s must be finite")
        self.tracker.record(completion_ts_ms, actual_s > served_p90_s)

    def replay(
        self,
        features: npt.NDArray[np.float32],
        base_eta_s: FloatArray,
        request_ts_ms: npt.NDArray[np.int64],
        actual_s: FloatArray,
    ) -> ResidualPrediction:
        """Serve rows one by one in request-time order, feeding each outcome back at completion.

        Row i completes at `request_ts_ms[i] + actual_s[i]` seconds; its outcome is recorded
        right after it is served and, per the tracker's rule, only predictions requested after
        that completion see it. Returns the served predictions in the input row order.
        This is what the worker does live, compressed into one call (evaluation and tests).

        """
        base = np.asarray(base_eta_s, dtype=np.float64)
        ts = np.asarray(request_ts_ms, dtype=np.int64)
        y = np.asarray(actual_s, dtype=np.float64)
        q50, q90 = self.model.predict_target(features)
        served = self.model.apply_residuals(q50, q90, base)
        p90 = served.p90_s.copy()
        clamped = served.clamped.copy()
        done = ts + np.round(np.where(np.isfinite(y), y, 0.0) * 1000.0).astype(np.int64)
        for i in np.argsort(ts, kind="stable"):
            offset = self.tracker.offset_at(int(ts[i]))
            if offset != 0.0:
                one = self.model.apply_residuals(
                    q50[i : i + 1], q90[i : i + 1] + offset, base[i : i + 1]
                )
                p90[i] = one.p90_s[0]
                clamped[i] = one.clamped[0]
            if math.isfinite(y[i]) and served.finite[i]:
                self.tracker.record(int(done[i]), bool(y[i] > p90[i]))
        return ResidualPrediction(
            p50_s=served.p50_s, p90_s=p90, finite=served.finite, clamped=clamped
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings and state of the recalibration."""
        s = self.tracker.state()
        return {
            "method": "online quantile tracking of the p90 margin offset",
            "step": self.tracker.step,
            "coverage": self.tracker.coverage,
            "max_offset": self.tracker.max_offset,
            "score_scale": score_scale_of(self.model),
            "offset": s.offset,
            "outcomes_applied": s.applied,
            "outcomes_pending": s.pending,
            "observed_coverage": None if s.applied == 0 else s.observed_coverage,
        }
