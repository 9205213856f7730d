"""Couriers' movements in the simulator: straight legs between two points over a time span."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.geo import bearing_deg, distance_m


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
