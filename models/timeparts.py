"""Local calendar parts (hour, day of week, hour of week) of epoch-millisecond timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

_MS_PER_HOUR = 3_600_000
_MS_PER_DAY = 86_400_000


class TimezoneError(ValueError):
    """An unknown IANA timezone name."""


def zone(name: str) -> ZoneInfo:
    """The `ZoneInfo` for an IANA name, or `TimezoneError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimezoneError(f"unknown timezone {name!r}") from exc


def utc_offset_ms(ts_ms: npt.NDArray[np.int64], tz: ZoneInfo) -> npt.NDArray[np.int64]:
    """UTC offset in milliseconds of `tz` at each timestamp (DST-aware, vectorized by hour)."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    hours = ts // _MS_PER_HOUR
    lo, hi = int(hours.min()), int(hours.max())

    def offset_at(hour: int) -> int:
        moment = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(tz)
        delta = moment.utcoffset()
        return int(delta.total_seconds() * 1000) if delta is not None else 0

    if offset_at(lo) == offset_at(hi) and hi - lo < 24 * 7:
        return np.full(ts.shape, offset_at(lo), dtype=np.int64)
    # Find the hours where the offset changes (DST switches) by bisecting daily samples.
    starts = [lo]
    values = [offset_at(lo)]
    day = lo
    while day < hi:
        nxt = min(day + 24, hi)
        if offset_at(nxt) != values[-1]:
            a, b = day, nxt
            while b - a > 1:
                mid = (a + b) // 2
                if offset_at(mid) == values[-1]:
                    a = mid
                else:
                    b = mid
            starts.append(b)
            values.append(offset_at(b))
        day = nxt
    idx = np.searchsorted(np.array(starts, dtype=np.int64), hours, side="right") - 1
    return np.array(values, dtype=np.int64)[idx]


def local_parts(
    ts_ms: npt.NDArray[np.int64], tz: ZoneInfo
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Fractional local hour [0, 24), day of week (Monday = 0) and hour of week [0, 168)."""
    local_ms = np.asarray(ts_ms, dtype=np.int64) + utc_offset_ms(ts_ms, tz)
    day, ms_of_day = np.divmod(local_ms, _MS_PER_DAY)
    hour = ms_of_day / _MS_PER_HOUR
    # 1970-01-01 was a Thursday (weekday 3).
    dow = ((day + 3) % 7).astype(np.float64)
    return hour, dow, dow * 24.0 + hour
