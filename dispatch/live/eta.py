"""Travel times for live dispatch, and the online calibration of announced drop-off ETAs.

A `LegPredictor` answers in degrees; `ShardEta` presents it to `decide()` in a shard's planar
frame (metres), as `dispatch.eta.EtaProvider` requires. With live context (`LegContext`) each
leg also carries the observed speed of its origin's zone in the last hour and, when `decide()`
names the courier driving it, that courier's own speed (`LEG_CONTEXT` names; NaN: unknown).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from contracts.geo import encode_many, haversine_m, unproject_m
from dispatch.eta import EtaQuantiles
from models.legs import Leg
from models.service import EtaService, LegBatch

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Context of a leg, by name: its origin zone's observed speed and its courier's own speed.
ZONE_SPEED = "zone_speed_mps"
COURIER_SPEED = "courier_speed_mps"
LEG_CONTEXT = (ZONE_SPEED, COURIER_SPEED)
#: Geohash length of the zones whose observed speed a leg carries (`features.store`).
ZONE_PRECISION = 6


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
        context: Mapping[str, FloatArray] | None = None,
    ) -> LegPrediction:
        """Finite, non-negative p50 and p90 (p90 >= p50) per leg.

        `context` holds per-leg arrays by `LEG_CONTEXT` name (NaN: unknown); a predictor
        without a use for them ignores them.
        """
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
        context: Mapping[str, FloatArray] | None = None,
    ) -> LegPrediction:
        """Straight-line legs (context is ignored)."""
        p50 = haversine_m(origin_lat, origin_lon, dest_lat, dest_lon) * self.detour / self.speed_mps
        return LegPrediction(p50, p50 * self.p90_factor, np.zeros(p50.shape, dtype=bool))


@dataclass
class LegContext:
    """Live context of a tick's legs.

    Attributes:
        zone_speed_mps: a zone's (geohash of `ZONE_PRECISION`) observed speed, NaN if unknown;
            asked once per zone and tick.
        courier_speed_mps: each snapshot courier's own speed, by courier row (NaN: unknown).
    """

    zone_speed_mps: Callable[[str], float]
    courier_speed_mps: FloatArray
    _zones: dict[str, float] = field(default_factory=dict)

    def of(
        self, lat: FloatArray, lon: FloatArray, courier_row: IntArray | None
    ) -> dict[str, FloatArray]:
        """Context arrays of legs leaving (`lat`, `lon`), driven by `courier_row` (-1: unknown)."""
        zones = encode_many(lat, lon, ZONE_PRECISION)
        unique, inverse = np.unique(zones, return_inverse=True)
        for zone in unique.tolist():
            if zone not in self._zones:
                self._zones[zone] = float(self.zone_speed_mps(str(zone)))
        zone_speed = np.array([self._zones[z] for z in unique.tolist()], dtype=np.float64)
        courier = np.full(lat.shape[0], np.nan)
        if courier_row is not None and self.courier_speed_mps.size:
            known = courier_row >= 0
            courier[known] = self.courier_speed_mps[courier_row[known]]
        return {ZONE_SPEED: zone_speed[inverse.reshape(-1)], COURIER_SPEED: courier}


@dataclass
class ShardEta:
    """The `dispatch.eta.EtaProvider` of one shard at one tick: planar metres in, seconds out.

    With a `context`, every leg goes to the predictor with its live context.
    """

    predictor: LegPredictor
    origin_lat: float
    origin_lon: float
    request_ts_ms: int
    context: LegContext | None = None
    legs: int = 0
    fallbacks: int = 0

    def travel_s(
        self,
        origin_xy_m: FloatArray,
        destination_xy_m: FloatArray,
        courier_row: IntArray | None = None,
    ) -> EtaQuantiles:
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
        context = None
        if self.context is not None:
            rows = (
                None
                if courier_row is None
                else np.broadcast_to(np.asarray(courier_row, dtype=np.int64), shape).reshape(-1)
            )
            context = self.context.of(olat, olon, rows)
        prediction = self.predictor.predict(
            olat, olon, dlat, dlon, self.request_ts_ms, context=context
        )
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


class ServiceLegPredictor:
    """Legs predicted by an `EtaService` (model residual on the base ETA, with fallback).

    A leg's live context (`LEG_CONTEXT`) goes to the model as its context features, stamped
    with the request time: the feature store already degraded what was stale.
    """

    def __init__(self, service: EtaService, leg: Leg = Leg.PICKUP, timeout_s: float | None = None):
        self.service = service
        self.leg = leg
        self.timeout_s = timeout_s
        self._version = "base"

    @property
    def version(self) -> str:
        """Version of the model that served the last batch ("base" when none did)."""
        return self._version

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
        context: Mapping[str, FloatArray] | None = None,
    ) -> LegPrediction:
        """Quantiles from the service; rows it could not model carry the base ETA."""
        n = int(np.shape(origin_lat)[0])
        stamp = np.full(n, request_ts_ms, dtype=np.int64)
        batch = LegBatch(
            origin_lat=origin_lat,
            origin_lon=origin_lon,
            dest_lat=dest_lat,
            dest_lon=dest_lon,
            request_ts_ms=stamp,
            leg=np.full(n, int(self.leg), dtype=np.int64),
            context={
                k: (np.asarray(v, dtype=np.float64), stamp) for k, v in (context or {}).items()
            },
        )
        result = self.service.predict_legs(batch, timeout_s=self.timeout_s)
        self._version = result.model_version or "base"
        return LegPrediction(result.p50_s, result.p90_s, result.fallback)
