"""Travel times for live dispatch, and the online calibration of announced drop-off ETAs.

A `LegPredictor` answers in degrees; `ShardEta` presents it to `decide()` in a shard's planar
frame (metres), as `dispatch.eta.EtaProvider` requires.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from contracts.geo import haversine_m, unproject_m
from dispatch.eta import EtaQuantiles

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LegPrediction:
    """Quantiles of many travel legs, in seconds, and which of them fell back to the base."""

    p50_s: FloatArray
    p90_s: FloatArray
    fallback: npt.NDArray[np.bool_]


class LegPredictor(Protocol):
    """Travel-time quantiles for legs given in degrees, at one request time."""

    @property
    def version(self) -> str:
        """Model version stamped on decisions."""
        ...

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
    ) -> LegPrediction:
        """Finite, non-negative p50 and p90 (p90 >= p50) per leg."""
        ...


@dataclass(frozen=True)
class StraightLinePredictor:
    """Great-circle distance × detour ÷ speed; p90 is p50 × `p90_factor` (the model-free base)."""

    speed_mps: float = 5.0
    detour: float = 1.3
    p90_factor: float = 1.3
    version: str = "straight-line"

    def __post_init__(self) -> None:
        if self.speed_mps <= 0 or self.detour < 1 or self.p90_factor < 1:
            msg = "speed must be positive, detour and p90_factor at least 1"
            raise ValueError(msg)

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
    ) -> LegPrediction:
        """Straight-line legs."""
        p50 = haversine_m(origin_lat, origin_lon, dest_lat, dest_lon) * self.detour / self.speed_mps
        return LegPrediction(p50, p50 * self.p90_factor, np.zeros(p50.shape, dtype=bool))


@dataclass
class ShardEta:
    """The `dispatch.eta.EtaProvider` of one shard at one tick: planar metres in, seconds out."""

    predictor: LegPredictor
    origin_lat: float
    origin_lon: float
    request_ts_ms: int
    legs: int = 0
    fallbacks: int = 0

    def travel_s(self, origin_xy_m: FloatArray, destination_xy_m: FloatArray) -> EtaQuantiles:
        """Quantiles for every origin/destination pair (broadcast), in seconds."""
        origin, destination = np.broadcast_arrays(
            np.asarray(origin_xy_m, dtype=np.float64),
            np.asarray(destination_xy_m, dtype=np.float64),
        )
        shape = origin.shape[:-1]
        o = origin.reshape(-1, 2)
        d = destination.reshape(-1, 2)
        if o.shape[0] == 0:
            empty = np.zeros(shape, dtype=np.float64)
            return EtaQuantiles(empty, empty.copy())
        olat, olon = unproject_m(o[:, 0], o[:, 1], self.origin_lat, self.origin_lon)
        dlat, dlon = unproject_m(d[:, 0], d[:, 1], self.origin_lat, self.origin_lon)
        prediction = self.predictor.predict(olat, olon, dlat, dlon, self.request_ts_ms)
        p50 = np.nan_to_num(np.asarray(prediction.p50_s, dtype=np.float64), nan=0.0, posinf=0.0)
        p90 = np.nan_to_num(np.asarray(prediction.p90_s, dtype=np.float64), nan=0.0, posinf=0.0)
        p50 = np.maximum(p50, 0.0)
        p90 = np.maximum(p90, p50)
        self.legs += int(p50.size)
        self.fallbacks += int(np.count_nonzero(prediction.fallback))
        return EtaQuantiles(p50.reshape(shape), p90.reshape(shape))


@dataclass
class RouteCalibrator:
    """Online split-conformal margin for announced p90 drop-off ETAs.

    Each delivery contributes the score `realized_s - raw_p90_s`; the margin is the
    ⌈(n + 1)·coverage⌉-th smallest of the last `window` scores (0 until `min_samples` exist), so
    that `raw_p90 + margin` covers about `coverage` of recent deliveries. The margin may be
    negative when the raw p90 is too pessimistic.
    """

    coverage: float = 0.9
    window: int = 300
    min_samples: int = 30
    scores: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not 0 < self.coverage < 1 or self.window < 1 or self.min_samples < 1:
            msg = "coverage must be in (0, 1); window and min_samples positive"
            raise ValueError(msg)

    def observe(self, realized_s: float, raw_p90_s: float) -> None:
        """Record one delivery: its realized duration and the raw p90 that was predicted."""
        if not (math.isfinite(realized_s) and math.isfinite(raw_p90_s)):
            return
        self.scores.append(realized_s - raw_p90_s)
        while len(self.scores) > self.window:
            self.scores.popleft()

    @property
    def margin_s(self) -> float:
        """Seconds to add to a raw p90."""
        n = len(self.scores)
        if n < self.min_samples:
            return 0.0
        k = min(n, math.ceil((n + 1) * self.coverage))
        return float(np.partition(np.fromiter(self.scores, dtype=np.float64), k - 1)[k - 1])
