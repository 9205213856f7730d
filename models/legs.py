"""Travel legs: leg kinds and the vectorized travel-leg feature matrix.

The same function builds the features for training rows and for the dispatch batch API, so
the model sees identical inputs offline and online.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.geo import haversine_m_np
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


#: Feature columns of the travel-leg model, in matrix order.
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
)


@dataclass(frozen=True)
class TravelFeatureConfig:
    """City-level settings of the travel-leg features.

    Attributes:
        timezone: IANA zone used for local hour and day of week.
        grid_rotation_deg: orientation of the street grid (0 = north-up); the L1 distance is
            measured along the rotated grid.
    """

    timezone: str = "UTC"
    grid_rotation_deg: float = 0.0


def travel_features(
    origin_lat: npt.NDArray[np.float64],
    origin_lon: npt.NDArray[np.float64],
    dest_lat: npt.NDArray[np.float64],
    dest_lon: npt.NDArray[np.float64],
    request_ts_ms: npt.NDArray[np.int64],
    leg: npt.NDArray[np.int64],
    base_eta_s: npt.NDArray[np.float64],
    config: TravelFeatureConfig,
) -> npt.NDArray[np.float32]:
    """Feature matrix (n × len(TRAVEL_FEATURES), float32, C order) for n travel legs."""
    olat = np.asarray(origin_lat, dtype=np.float64)
    olon = np.asarray(origin_lon, dtype=np.float64)
    dlat = np.asarray(dest_lat, dtype=np.float64)
    dlon = np.asarray(dest_lon, dtype=np.float64)
    n = olat.shape[0]
    out = np.empty((n, len(TRAVEL_FEATURES)), dtype=np.float32)
    dist = haversine_m_np(olat, olon, dlat, dlon)
    m_per_deg_lat = 111_195.0
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians((olat + dlat) * 0.5))
    east = (dlon - olon) * m_per_deg_lon
    north = (dlat - olat) * m_per_deg_lat
    theta = math.radians(config.grid_rotation_deg)
    gx = east * math.cos(theta) - north * math.sin(theta)
    gy = east * math.sin(theta) + north * math.cos(theta)
    hour, dow, how = local_parts(np.asarray(request_ts_ms, dtype=np.int64), zone(config.timezone))
    out[:, 0] = base_eta_s
    out[:, 1] = dist
    out[:, 2] = np.abs(gx) + np.abs(gy)
    out[:, 3] = east
    out[:, 4] = north
    out[:, 5] = np.arctan2(east, north)
    out[:, 6] = olat
    out[:, 7] = olon
    out[:, 8] = dlat
    out[:, 9] = dlon
    out[:, 10] = hour
    out[:, 11] = dow
    out[:, 12] = how
    out[:, 13] = leg
    return out
