"""Base-ETA providers: the physical estimate the learned residual corrects.

Every provider satisfies `BaseEtaProvider`. `StraightLineProvider` (great-circle distance ×
detour factor ÷ zone speed) is the embedded default and also has a vectorized form for the
dispatch batch path; `models.osrm.OsrmRouteProvider` asks an OSRM-compatible routing service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from contracts.geo import check_lat_lon, geohash_to_int
from contracts.geo import distance_m as haversine_m
from contracts.geo import encode as geohash_encode
from contracts.geo import encode_ints as geohash_int_np


@dataclass(frozen=True)
class LatLon:
    """A WGS84 point in degrees; construction validates the range."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        check_lat_lon(self.lat, self.lon)


class BaseEtaUnavailableError(RuntimeError):
    """The provider could not produce a base ETA (timeout, HTTP error, no route)."""


@runtime_checkable
class BaseEtaProvider(Protocol):
    """Contract of a base-ETA provider.

    `eta_s` returns the physical travel time in seconds (finite, ≥ 0) from `origin` to
    `destination` departing at `request_ts_ms`, or raises `BaseEtaUnavailableError`. It never
    returns NaN and never blocks the event loop longer than its own timeout.
    """

    name: str

    async def eta_s(self, origin: LatLon, destination: LatLon, request_ts_ms: int) -> float:
        """Base travel time in seconds."""
        ...


#: 30 km/h: a typical urban driving speed along the road, used where no zone speed is known.
DEFAULT_SPEED_MPS = 8.33
#: Ratio of road distance to great-circle distance typical of urban street networks.
DEFAULT_DETOUR_FACTOR = 1.3


@dataclass(frozen=True)
class StraightLineProvider:
    """Great-circle distance × `detour_factor` ÷ speed of the origin's zone.

    Attributes:
        detour_factor: road distance over straight-line distance (≥ 1).
        default_speed_mps: speed used where the origin zone has no entry.
        zone_speeds_mps: speed per geohash cell at `zone_precision` characters.
        zone_precision: geohash precision of the zone keys.
    """

    detour_factor: float = DEFAULT_DETOUR_FACTOR
    default_speed_mps: float = DEFAULT_SPEED_MPS
    zone_speeds_mps: Mapping[str, float] = field(default_factory=dict)
    zone_precision: int = 5
    name: str = "straight_line"

    def __post_init__(self) -> None:
        if not self.detour_factor >= 1.0:
            raise ValueError(f"detour_factor must be ≥ 1, got {self.detour_factor}")
        speeds = [self.default_speed_mps, *self.zone_speeds_mps.values()]
        if not all(np.isfinite(s) and s > 0 for s in speeds):
            raise ValueError("speeds must be finite and > 0")
        if any(len(k) != self.zone_precision for k in self.zone_speeds_mps):
            raise ValueError(f"zone keys must be geohashes of {self.zone_precision} characters")

    def speed_mps(self, origin: LatLon) -> float:
        """Speed used for legs starting at `origin`."""
        if not self.zone_speeds_mps:
            return self.default_speed_mps
        cell = geohash_encode(origin.lat, origin.lon, self.zone_precision)
        return float(self.zone_speeds_mps.get(cell, self.default_speed_mps))

    def eta_s_sync(self, origin: LatLon, destination: LatLon) -> float:
        """Base travel time in seconds, computed in-process."""
        dist = haversine_m(origin.lat, origin.lon, destination.lat, destination.lon)
        return dist * self.detour_factor / self.speed_mps(origin)

    async def eta_s(self, origin: LatLon, destination: LatLon, request_ts_ms: int) -> float:
        """Base travel time in seconds (see `BaseEtaProvider`)."""
        return self.eta_s_sync(origin, destination)

    def eta_s_batch(
        self,
        origin_lat: npt.NDArray[np.float64],
        origin_lon: npt.NDArray[np.float64],
        dist_m: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Vectorized base ETA for legs whose great-circle distances are already known."""
        speed = np.full(np.shape(dist_m), self.default_speed_mps, dtype=np.float64)
        if self.zone_speeds_mps:
            cells = geohash_int_np(origin_lat, origin_lon, self.zone_precision)
            keys, values = self._zone_table()
            pos = np.searchsorted(keys, cells)
            pos_c = np.minimum(pos, len(keys) - 1)
            hit = keys[pos_c] == cells
            speed = np.where(hit, values[pos_c], speed)
        return np.asarray(dist_m, dtype=np.float64) * self.detour_factor / speed

    def _zone_table(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        cached: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = self.__dict__.get(
            "_table"
        )
        if cached is None:
            items = sorted((geohash_to_int(k), float(v)) for k, v in self.zone_speeds_mps.items())
            cached = (
                np.array([k for k, _ in items], dtype=np.int64),
                np.array([v for _, v in items], dtype=np.float64),
            )
            object.__setattr__(self, "_table", cached)
        return cached
