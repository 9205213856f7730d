"""Event-time window primitives with JSON-serializable state.

Windows are split into fixed buckets of `bucket_ms`; a window of `window_ms` at time `now_ms`
covers the buckets whose index is within `window_ms // bucket_ms` of `now_ms // bucket_ms`.
All arithmetic is deterministic so that replays and the offline builder give equal values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Sorted batches up to this size are added in a plain loop: below it numpy's per-call
#: overhead costs more than the loop.
SMALL_BATCH = 32


@dataclass
class _Bucket:
    count: int = 0
    total: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)


@dataclass
class BucketedStats:
    """Count, mean and (optionally) histogram quantiles of values over a sliding window.

    Attributes:
        window_ms: window length.
        bucket_ms: bucket length; `window_ms` must be a multiple of it.
        bin_width: histogram bin width in value units, or 0 for no histogram.
        max_bins: values beyond `bin_width * max_bins` go to the last bin.

    Example:
        >>> w = BucketedStats(window_ms=60_000, bucket_ms=10_000, bin_width=10.0)
        >>> for ts, x in [(0, 100.0), (5_000, 200.0), (20_000, 300.0)]:
        ...     _ = w.add(ts, x)
        >>> w.count(20_000), w.mean(20_000)
        (3, 200.0)
        >>> w.count(65_000)  # the first bucket has left the window
        1
    """

    window_ms: int
    bucket_ms: int
    bin_width: float = 0.0
    max_bins: int = 512
    buckets: dict[int, _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0 or self.window_ms <= 0 or self.window_ms % self.bucket_ms:
            raise ValueError("window_ms must be a positive multiple of bucket_ms")

    @property
    def n_buckets(self) -> int:
        """Number of buckets in the window."""
        return self.window_ms // self.bucket_ms

    def _live(self, now_ms: int) -> list[_Bucket]:
        newest = now_ms // self.bucket_ms
        oldest = newest - self.n_buckets + 1
        return [b for i, b in self.buckets.items() if oldest <= i <= newest]

    def _oldest_bucket(self) -> int | None:
        """Index of the oldest bucket in the newest bucket's window (None when empty)."""
        return max(self.buckets) - self.n_buckets + 1 if self.buckets else None

    def _purge(self) -> None:
        """Drop the buckets outside the newest bucket's window."""
        oldest = self._oldest_bucket()
        for old in [i for i in self.buckets if oldest is not None and i < oldest]:
            del self.buckets[old]

    def is_late(self, ts_ms: int) -> bool:
        """Whether a value at `ts_ms` is too old to count (before the newest bucket's window)."""
        oldest = self._oldest_bucket()
        return oldest is not None and ts_ms // self.bucket_ms < oldest

    def late_mask(self, ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """`is_late` of many times at once."""
        oldest = self._oldest_bucket()
        if oldest is None:
            return np.zeros(ts_ms.shape, dtype=bool)
        return ts_ms // self.bucket_ms < oldest

    def add(self, ts_ms: int, value: float) -> BucketedStats:
        """Record `value` at event time `ts_ms`; buckets that left the window are dropped."""
        idx = ts_ms // self.bucket_ms
        b = self.buckets.get(idx)
        if b is None:
            b = self.buckets[idx] = _Bucket()
            self._purge()
            if idx not in self.buckets:
                return self
        b.count += 1
        b.total += value
        if self.bin_width > 0:
            k = min(max(int(value // self.bin_width), 0), self.max_bins - 1)
            b.hist[k] = b.hist.get(k, 0) + 1
        return self

    def add_sorted(self, ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> int:
        """Record many values whose times are in ascending order; returns how many were late.

        The buckets end as if each value had gone through `add` in that order (bucket totals
        are summed per bucket first, so they may differ from sequential adds by float
        rounding). Late means `is_late` before the batch: in time order, a value is never too
        old for the values before it. Only for windows without a histogram.
        """
        if self.bin_width > 0:
            raise ValueError("add_sorted needs a window without a histogram")
        late = self.late_mask(ts_ms)
        keep = ts_ms[~late] // self.bucket_ms
        if 0 < keep.size <= SMALL_BATCH:
            for i, v in zip(keep.tolist(), values[~late].tolist(), strict=True):
                b = self.buckets.setdefault(i, _Bucket())
                b.count += 1
                b.total += v
            self._purge()
        elif keep.size:
            starts = np.flatnonzero(np.concatenate(([True], keep[1:] != keep[:-1])))
            sums = np.add.reduceat(values[~late], starts)
            counts = np.diff(np.concatenate((starts, [keep.size])))
            for i, c, t in zip(keep[starts].tolist(), counts.tolist(), sums.tolist(), strict=True):
                b = self.buckets.setdefault(i, _Bucket())
                b.count += c
                b.total += t
            self._purge()
        return int(late.sum())

    def count(self, now_ms: int) -> int:
        """Number of values in the window ending at `now_ms`."""
        return sum(b.count for b in self._live(now_ms))

    def total(self, now_ms: int) -> float:
        """Sum of the values in the window."""
        return math.fsum(b.total for b in self._live(now_ms))

    def mean(self, now_ms: int) -> float | None:
        """Mean of the values in the window, or None when it is empty."""
        live = self._live(now_ms)
        n = sum(b.count for b in live)
        return math.fsum(b.total for b in live) / n if n else None

    def quantile(self, now_ms: int, q: float) -> float | None:
        """Histogram quantile (linear within a bin), or None when empty or without histogram."""
        if self.bin_width <= 0:
            return None
        merged: dict[int, int] = {}
        for b in self._live(now_ms):
            for k, c in b.hist.items():
                merged[k] = merged.get(k, 0) + c
        n = sum(merged.values())
        if n == 0:
            return None
        target = q * n
        seen = 0
        for k in sorted(merged):
            c = merged[k]
            if seen + c >= target:
                frac = (target - seen) / c
                return (k + frac) * self.bin_width
            seen += c
        return (max(merged) + 1) * self.bin_width

    def to_state(self) -> list[Any]:
        """JSON-ready state (buckets only; parameters live in the definition)."""
        return [
            [i, b.count, b.total, sorted(b.hist.items())] for i, b in sorted(self.buckets.items())
        ]

    def load_state(self, state: list[Any]) -> BucketedStats:
        """Replace the buckets with those of `to_state` output."""
        self.buckets = {
            int(i): _Bucket(int(c), float(t), {int(k): int(v) for k, v in h})
            for i, c, t, h in state
        }
        return self


@dataclass
class LastSeen:
    """Distinct ids seen within a sliding window (e.g. couriers pinging in a zone).

    Example:
        >>> s = LastSeen(window_ms=1_000)
        >>> _ = s.add(0, "a").add(500, "b").add(900, "a")
        >>> s.distinct(1_200), s.distinct(2_000)
        (2, 0)
    """

    window_ms: int
    last_ts: dict[str, int] = field(default_factory=dict)

    def _horizon(self) -> int | None:
        """Oldest time still within the window of the newest sighting (None when empty)."""
        return max(self.last_ts.values()) - self.window_ms if self.last_ts else None

    def _purge(self) -> None:
        """Drop the ids last seen before the window of the newest sighting."""
        horizon = self._horizon()
        for k in [k for k, t in self.last_ts.items() if horizon is not None and t < horizon]:
            del self.last_ts[k]

    def is_late(self, ts_ms: int) -> bool:
        """Whether a sighting at `ts_ms` is too old to count: before the window of the newest."""
        horizon = self._horizon()
        return horizon is not None and ts_ms < horizon

    def late_mask(self, ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """`is_late` of many times at once."""
        horizon = self._horizon()
        if horizon is None:
            return np.zeros(ts_ms.shape, dtype=bool)
        return ts_ms < horizon

    def add(self, ts_ms: int, ident: str) -> LastSeen:
        """Record that `ident` was seen at `ts_ms`; ids older than the window are dropped."""
        if ident not in self.last_ts or ts_ms > self.last_ts[ident]:
            self.last_ts[ident] = ts_ms
        self._purge()
        return self

    def add_sorted(
        self, ts_ms: npt.NDArray[np.int64], idents: npt.NDArray[np.object_] | npt.NDArray[np.str_]
    ) -> int:
        """Record many sightings whose times are in ascending order; returns how many were late.

        The state ends exactly as if each sighting had gone through `add` in that order.
        """
        late = self.late_mask(ts_ms)
        last = self.last_ts
        # In ascending time order the last sighting of an id is its newest.
        newest = dict(zip(idents[~late].tolist(), ts_ms[~late].tolist(), strict=True))
        for ident, ts in newest.items():
            if ts > last.get(ident, ts - 1):
                last[ident] = ts
        self._purge()
        return int(late.sum())

    def distinct(self, now_ms: int) -> int:
        """Ids seen in (now_ms − window_ms, now_ms]."""
        return sum(1 for t in self.last_ts.values() if now_ms - self.window_ms < t <= now_ms)

    def to_state(self) -> list[Any]:
        """JSON-ready state."""
        return sorted(self.last_ts.items())

    def load_state(self, state: list[Any]) -> LastSeen:
        """Replace the state with `to_state` output."""
        self.last_ts = {str(k): int(t) for k, t in state}
        return self
