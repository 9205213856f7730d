"""Travel-time providers for dispatch: the `EtaProvider` protocol and two plain implementations.

Every provider answers in seconds, for arrays of origin and destination points in the local
planar frame (metres), with a median (p50) and a pessimistic (p90) quantile per pair.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class EtaQuantiles(NamedTuple):
    """Travel-time quantiles in seconds, one value per origin/destination pair.

    Attributes:
        p50_s: median travel time in seconds.
        p90_s: 90th-percentile travel time in seconds (never below `p50_s`).
    """

    p50_s: FloatArray
    p90_s: FloatArray


class EtaProvider(Protocol):  # pragma: no cover - a protocol has no body to test
    """Protocol every travel-time source used by `decide()` and `rank()` implements."""

    def travel_s(
        self,
        origin_xy_m: FloatArray,
        destination_xy_m: FloatArray,
        courier_row: IntArray | None = None,
    ) -> EtaQuantiles:
        """Travel-time quantiles from each origin to its destination.

        Args:
            origin_xy_m: points in metres, shape `(..., 2)` (last axis is x, y).
            destination_xy_m: points in metres, shape broadcastable with `origin_xy_m`.
            courier_row: the snapshot's courier row driving each leg (broadcastable with the
                legs' shape; -1 or None: unknown), for providers that know couriers' speeds.

        Returns:
            p50 and p90 travel times in seconds, each of the broadcast shape without the last
            axis. Values are finite, non-negative and `p90_s >= p50_s`.
        """
        ...


def _distance_m(origin_xy_m: FloatArray, destination_xy_m: FloatArray) -> FloatArray:
    """Straight-line distance in metres, computed as sqrt(dx**2 + dy**2) in float64."""
    delta = np.asarray(destination_xy_m, dtype=np.float64) - np.asarray(
        origin_xy_m, dtype=np.float64
    )
    dx = delta[..., 0]
    dy = delta[..., 1]
    return np.asarray(np.sqrt(dx**2 + dy**2), dtype=np.float64)


class _DistanceEta(abc.ABC):
    """A provider whose travel time depends only on the straight-line distance of each leg.

    `travel_s` is the `EtaProvider` method for all of them; each says how its distance in
    metres becomes p50 and p90 seconds in `_quantiles`. The courier does not matter.
    """

    def travel_s(
        self,
        origin_xy_m: FloatArray,
        destination_xy_m: FloatArray,
        courier_row: IntArray | None = None,
    ) -> EtaQuantiles:
        """Travel-time quantiles in seconds, the same for every courier."""
        return self._quantiles(_distance_m(origin_xy_m, destination_xy_m))

    @abc.abstractmethod
    def _quantiles(self, distance_m: FloatArray) -> EtaQuantiles:
        """p50 and p90 seconds of legs `distance_m` metres long."""


@dataclass(frozen=True)
class GridTravelTime(_DistanceEta):
    """The MDRP travel rule: `ceil(distance_m / meters_per_minute)` whole minutes, p50 == p90.

    Attributes:
        meters_per_minute: travel speed in metres per minute (positive).
    """

    meters_per_minute: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.meters_per_minute) and self.meters_per_minute > 0):
            raise ValueError(f"meters_per_minute must be positive, got {self.meters_per_minute}")

    def _quantiles(self, distance_m: FloatArray) -> EtaQuantiles:
        """Whole minutes of travel, in seconds."""
        seconds = np.ceil(distance_m / self.meters_per_minute) * 60.0
        return EtaQuantiles(seconds, seconds)


@dataclass(frozen=True)
class StraightLineEta(_DistanceEta):
    """Straight-line distance times a detour factor over a constant speed; p90 scaled up.

    Attributes:
        speed_mps: travel speed in metres per second (positive).
        detour_factor: road distance over straight-line distance (at least 1).
        p90_factor: p90 travel time over p50 travel time (at least 1).
    """

    speed_mps: float = 5.0
    detour_factor: float = 1.3
    p90_factor: float = 1.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ValueError(f"speed_mps must be positive, got {self.speed_mps}")
        if not (math.isfinite(self.detour_factor) and self.detour_factor >= 1):
            raise ValueError(f"detour_factor must be at least 1, got {self.detour_factor}")
        if not (math.isfinite(self.p90_factor) and self.p90_factor >= 1):
            raise ValueError(f"p90_factor must be at least 1, got {self.p90_factor}")

    def _quantiles(self, distance_m: FloatArray) -> EtaQuantiles:
        """Distance over speed, stretched by the detour factor; p90 scaled by its factor."""
        p50 = distance_m * (self.detour_factor / self.speed_mps)
        return EtaQuantiles(p50, p50 * self.p90_factor)
