"""Small-scale geometry on the sphere for the simulator: offsets, distances, bearings, legs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from contracts.geo import EARTH_RADIUS_M

_M_PER_DEG = math.pi / 180 * EARTH_RADIUS_M


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m` east and `north_m` north of (lat, lon) (equirectangular, metro scale)."""
    dlat = north_m / _M_PER_DEG
    dlon = east_m / (_M_PER_DEG * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from the first point to the second, in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    x = math.sin(dlmb) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dlmb)
    return math.degrees(math.atan2(x, y)) % 360.0


@dataclass(frozen=True)
class Leg:
    """A straight-line movement between two points over [depart_ts_ms, arrive_ts_ms].

    Before departure the courier is at the origin, after arrival at the destination, and in
    between at the linear interpolation of the two (by elapsed time).
    """

    from_lat: float
    from_lon: float
    to_lat: float
    to_lon: float
    depart_ts_ms: int
    arrive_ts_ms: int

    def position(self, ts_ms: int) -> tuple[float, float]:
        """Where the courier is at `ts_ms`."""
        if ts_ms <= self.depart_ts_ms:
            return self.from_lat, self.from_lon
        if ts_ms >= self.arrive_ts_ms:
            return self.to_lat, self.to_lon
        f = (ts_ms - self.depart_ts_ms) / (self.arrive_ts_ms - self.depart_ts_ms)
        return (
            self.from_lat + f * (self.to_lat - self.from_lat),
            self.from_lon + f * (self.to_lon - self.from_lon),
        )

    def moving_at(self, ts_ms: int) -> bool:
        """Whether the courier is between origin and destination at `ts_ms`."""
        return self.depart_ts_ms < ts_ms < self.arrive_ts_ms

    def road_speed_mps(self, detour_factor: float) -> float:
        """Speed along the road implied by the leg (straight distance × detour ÷ duration)."""
        duration_s = (self.arrive_ts_ms - self.depart_ts_ms) / 1000
        if duration_s <= 0:
            return 0.0
        straight = distance_m(self.from_lat, self.from_lon, self.to_lat, self.to_lon)
        return straight * detour_factor / duration_s

    def heading_deg(self) -> float:
        """Compass bearing of the leg."""
        return bearing_deg(self.from_lat, self.from_lon, self.to_lat, self.to_lon)


def standing(lat: float, lon: float, ts_ms: int) -> Leg:
    """A leg that stays at one point from `ts_ms` on."""
    return Leg(lat, lon, lat, lon, ts_ms, ts_ms)
