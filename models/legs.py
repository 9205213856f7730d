"""Travel legs: leg kinds and the vectorized travel-leg feature matrix.

The same function builds the features for training rows and for the dispatch batch API, so
the model sees identical inputs offline and online.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contracts.geo import haversine_m as haversine_m_np
from models.timeparts import local_parts, zone


class Leg(enum.IntEnum):
    """Kind of travel leg; the integer is the model's `leg` feature."""

    PICKUP = 0
    DROPOFF = 1
    RIDE = 2

    @classmethod
    def parse(cls, name: str) -> Leg:
        """The leg for a lower-case name (`pickup`, `dropoff`, `ride`), or `ValueError`."""
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise ValueError(
                f"unknown leg {name!r}; expected one of pickup, dropoff, ride"
            ) from exc


#: Feature columns every travel-leg model starts with, in matrix order.
TRAVEL_FEATURES: tuple[str, ...] = (
    "base_eta_s",
    "dist_m",
    "grid_l1_m",
    "east_m",
    "north_m",
    "bearing_rad",
    "origin_lat",
    "origin_lon",
    "dest_lat",
    "dest_lon",
    "hour",
    "dow",
    "hour_of_week",
    "leg",
    "grid_x_m",
    "grid_y_m",
)


@dataclass(frozen=True)
class TravelFeatureConfig:
    """City-level settings of the travel-leg features.

    Attributes:
        timezone: IANA zone used for local hour and day of week.
        grid_rotation_deg: orientation of the street grid (0 = north-up); the L1 distance is
            measured along the rotated grid.
        landmarks: (lat, lon) of places that shape travel times (airports, bridges, stadiums);
            the distance of origin and destination to each is a feature.
    """

    timezone: str = "UTC"
    grid_rotation_deg: float = 0.0
    landmarks: tuple[tuple[float, float], ...] = ()

    def feature_names(self) -> tuple[str, ...]:
        """Column names of `travel_features` under this config."""
        extra: list[str] = []
        for i in range(len(self.landmarks)):
            extra += [f"landmark{i}_origin_m", f"landmark{i}_dest_m"]
        return TRAVEL_FEATURES + tuple(extra)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (stored in model metadata)."""
        return {
            "timezone": self.timezone,
            "grid_rotation_deg": self.grid_rotation_deg,
            "landmarks": [list(p) for p in self.landmarks],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> TravelFeatureConfig:
        """Inverse of `to_dict`."""
        marks = d.get("landmarks", [])
        assert isinstance(marks, list)  # noqa: S101 - narrowing only
        rot = d.get("grid_rotation_deg", 0.0)
        assert isinstance(rot, int | float)  # noqa: S101 - narrowing only
        return cls(
            timezone=str(d.get("timezone", "UTC")),
            grid_rotation_deg=float(rot),
            landmarks=tuple((float(a), float(b)) for a, b in marks),
        )


def travel_features(
    origin_lat: npt.NDArray[np.float64],
    origin_lon: npt.NDArray[np.float64],
    dest_lat: npt.NDArray[np.float64],
    dest_lon: npt.NDArray[np.float64],
    request_ts_ms: npt.NDArray[np.int64],
    leg: npt.NDArray[np.int64],
    base_eta_s: npt.NDArray[np.float64],
    config: TravelFeatureConfig,
    dist_m: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float32]:
    """Feature matrix (n × len(config.feature_names()), float32) for n travel legs.

    `dist_m` (great-circle distances) may be passed when already computed.
    """
    olat = np.asarray(origin_lat, dtype=np.float64)
    olon = np.asarray(origin_lon, dtype=np.float64)
    dlat = np.asarray(dest_lat, dtype=np.float64)
    dlon = np.asarray(dest_lon, dtype=np.float64)
    n = olat.shape[0]
    names = config.feature_names()
    # Column-major buffer: each feature is written contiguously; XGBoost reads it as is.
    cols = np.empty((len(names), n), dtype=np.float32)
    dist = haversine_m_np(olat, olon, dlat, dlon) if dist_m is None else dist_m
    m_per_deg_lat = np.float32(111_195.0)
    lat32 = olat.astype(np.float32)
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians(lat32))
    east = (dlon - olon).astype(np.float32) * m_per_deg_lon
    north = (dlat - olat).astype(np.float32) * m_per_deg_lat
    theta = math.radians(config.grid_rotation_deg)
    c, s = np.float32(math.cos(theta)), np.float32(math.sin(theta))
    hour, dow, how = local_parts(np.asarray(request_ts_ms, dtype=np.int64), zone(config.timezone))
    cols[0] = base_eta_s
    cols[1] = dist
    np.multiply(east, c, out=cols[14])
    cols[14] -= north * s
    np.multiply(east, s, out=cols[15])
    cols[15] += north * c
    np.abs(cols[14], out=cols[2])
    cols[2] += np.abs(cols[15])
    cols[3] = east
    cols[4] = north
    np.arctan2(east, north, out=cols[5])
    cols[6] = olat
    cols[7] = olon
    cols[8] = dlat
    cols[9] = dlon
    cols[10] = hour
    cols[11] = dow
    cols[12] = how
    cols[13] = leg
    k = 16
    for lat, lon in config.landmarks:
        for la, lo in ((olat, olon), (dlat, dlon)):
            dy = (la - lat).astype(np.float32) * m_per_deg_lat
            dx = (lo - lon).astype(np.float32) * m_per_deg_lon
            np.hypot(dx, dy, out=cols[k])
            k += 1
    return cols.T


def jittered_travel_rows(
    features: npt.NDArray[np.float32],
    ts_ms: npt.NDArray[np.int64],
    names: tuple[str, ...],
    config: TravelFeatureConfig,
    provider_eta_s: Callable[
        [npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
        npt.NDArray[np.float64],
    ],
    n: int,
    rng: np.random.Generator,
    jitter_deg: float = 0.004,
    jitter_h: float = 1.0,
) -> npt.NDArray[np.float32]:
    """Features of `n` synthetic travel legs around the given rows.

    Endpoints move by N(0, jitter_deg) degrees, request times by N(0, jitter_h) hours; the
    features are rebuilt with `travel_features`.
    """
    if features.shape[0] == 0:
        return np.zeros((0, len(names)), dtype=np.float32)
    pos = {name: i for i, name in enumerate(names)}
    i = rng.integers(0, features.shape[0], n)
    f = features.astype(np.float64)

    def jitter(name: str) -> npt.NDArray[np.float64]:
        return np.asarray(f[i, pos[name]] + rng.normal(0.0, jitter_deg, n))

    olat, olon = jitter("origin_lat"), jitter("origin_lon")
    dlat, dlon = jitter("dest_lat"), jitter("dest_lon")
    ts = ts_ms[i] + (rng.normal(0.0, jitter_h, n) * 3_600_000).astype(np.int64)
    leg = f[i, pos["leg"]].astype(np.int64)
    dist = haversine_m_np(olat, olon, dlat, dlon)
    base = provider_eta_s(olat, olon, dist)
    return travel_features(olat, olon, dlat, dlon, ts, leg, base, config, dist_m=dist)
