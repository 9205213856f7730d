"""One travel leg at a time: the `POST /eta` fast path, in plain Python scalars.

A single request through the vectorized path pays numpy's per-call overhead dozens of times
(hundreds of microseconds in all). `SingleLegModel` computes the same travel features with
the same float32 arithmetic as `models.legs.travel_features` (IEEE float32 scalar operations;
the transcendental functions through the same numpy kernels), walks the trees in Python
(`models.treewalk`) and applies the residual, margin and clamp as `ResidualQuantileModel`
does, so a leg gets the same answer on either path.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from models.legs import TravelFeatureConfig
from models.residual import ResidualQuantileModel, Target
from models.timeparts import zone
from models.treewalk import TreeWalker

_F32 = np.float32
_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 86_400_000
_EARTH_RADIUS_M = 6_371_008.8


class SingleLegUnsupported(ValueError):
    """The model cannot be served by the scalar path (the vectorized path serves it)."""


def haversine_m_scalar(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres, term for term as `contracts.geo.haversine_m`."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    h = math.sin((p2 - p1) * 0.5) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl * 0.5) ** 2
    return 2.0 * _EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))


@dataclass
class _Offsets:
    """UTC offsets of one timezone per epoch hour (a small memo)."""

    tz: ZoneInfo
    memo: dict[int, int]

    def at_hour(self, hour: int) -> int:
        got = self.memo.get(hour)
        if got is None:
            moment = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(self.tz)
            delta = moment.utcoffset()
            got = int(delta.total_seconds() * 1000) if delta is not None else 0
            if len(self.memo) > 4096:
                self.memo.clear()
            self.memo[hour] = got
        return got


@dataclass(frozen=True)
class SingleEta:
    """Served quantiles of one leg (before any fallback decision).

    Attributes:
        p50_s: p50 ETA, seconds.
        p90_s: p90 ETA, seconds (≥ p50_s).
        finite: False when the model's output or the base was NaN/inf.
        clamped: True when a residual hit the clamp.
    """

    p50_s: float
    p90_s: float
    finite: bool
    clamped: bool


class SingleLegFeatures:
    """`models.legs.travel_features` for one leg, in Python scalars (same float32 values)."""

    def __init__(self, config: TravelFeatureConfig) -> None:
        self._landmarks = tuple((float(a), float(b)) for a, b in config.landmarks)
        theta = math.radians(config.grid_rotation_deg)
        self._c = _F32(math.cos(theta))
        self._s = _F32(math.sin(theta))
        self._offsets = _Offsets(zone(config.timezone), {})

    def __call__(
        self,
        olat: float,
        olon: float,
        dlat: float,
        dlon: float,
        request_ts_ms: int,
        leg: int,
        base_eta_s: float,
        dist_m: float,
        extra: tuple[float, ...] = (),
    ) -> list[float]:
        """The feature row (float32 values as Python floats) of `travel_features`, plus `extra`."""
        f32 = _F32
        mlat = f32(111_195.0)
        lat32 = f32(olat)
        mlon = mlat * np.cos(np.radians(lat32))
        east = f32(dlon - olon) * mlon
        north = f32(dlat - olat) * mlat
        gx = east * self._c - north * self._s
        gy = east * self._s + north * self._c
        local_ms = request_ts_ms + self._offsets.at_hour(request_ts_ms // _MS_PER_HOUR)
        day, ms_of_day = divmod(local_ms, _MS_PER_DAY)
        hour = ms_of_day / _MS_PER_HOUR
        dow = float((day + 3) % 7)
        row = [
            float(f32(base_eta_s)),
            float(f32(dist_m)),
            float(abs(gx) + abs(gy)),
            float(east),
            float(north),
            float(np.arctan2(east, north)),
            float(lat32),
            float(f32(olon)),
            float(f32(dlat)),
            float(f32(dlon)),
            float(f32(hour)),
            float(f32(dow)),
            float(f32(dow * 24.0 + hour)),
            float(f32(leg)),
            float(gx),
            float(gy),
        ]
        for lat, lon in self._landmarks:
            for la, lo in ((olat, olon), (dlat, dlon)):
                dy = f32(la - lat) * mlat
                dx = f32(lo - lon) * mlon
                row.append(float(np.hypot(dx, dy)))
        row.extend(float(f32(v)) for v in extra)
        return row


class SingleLegModel:
    """A travel-leg `ResidualQuantileModel` compiled for one leg per call.

    Raises:
        SingleLegUnsupported: the model's trees cannot be walked in Python, or its feature
            list does not start with `config.feature_names()`.
    """

    def __init__(self, model: ResidualQuantileModel, config: TravelFeatureConfig) -> None:
        names = config.feature_names()
        if model.feature_names[: len(names)] != names:
            raise SingleLegUnsupported("model features do not start with the travel features")
        walkers = model._walkers()
        if walkers is None:
            raise SingleLegUnsupported("the model's trees cannot be walked in Python")
        self.model = model
        self.n_travel = len(names)
        w50: TreeWalker = walkers[0]
        w90: TreeWalker | None = walkers[1]
        self._p50 = w50.compile_row()
        self._p90 = w90.compile_row() if w90 is not None else None
        self.features = SingleLegFeatures(config)
        if model.p90_bins is not None:
            col, edges, margins = model.p90_bins
            self._bin_col = col
            self._edges = [float(_F32(e)) for e in edges]
            self._margins = [float(m) for m in margins]
        else:
            self._bin_col = -1
            self._edges = []
            self._margins = [float(model.p90_margin)]

    def predict(self, row: list[float], base_eta_s: float, p90_offset: float = 0.0) -> SingleEta:
        """Served p50/p90 of one feature row, as `ResidualQuantileModel.predict` would give."""
        model = self.model
        q50 = self._p50(row)
        if self._p90 is not None:
            q90 = self._p90(row) + (self._margins[0] + p90_offset)
        else:
            b = bisect.bisect_right(self._edges, row[self._bin_col])
            q90 = q50 + (self._margins[b] + p90_offset)
        base = float(base_eta_s)
        if model.target is Target.ADDITIVE:
            r50, r90 = q50, q90
        else:
            floor = max(base, model.ratio_floor_s)
            try:
                r50 = floor * math.exp(q50) - base
                r90 = floor * math.exp(q90) - base
            except OverflowError:
                r50 = r90 = math.inf
        finite = math.isfinite(r50) and math.isfinite(r90) and math.isfinite(base)
        if not finite:
            return SingleEta(base, base, False, False)
        clamp = model.clamp
        lo = max(clamp.residual_min_s, -clamp.max_reduction_frac * base)
        hi = clamp.residual_max_s
        c50 = min(max(r50, lo), hi)
        c90 = min(max(r90, lo), hi)
        p50 = base + c50
        return SingleEta(p50, max(base + c90, p50), True, c50 != r50 or c90 != r90)
