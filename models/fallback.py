"""Why a served ETA fell back to the base, and counts of fallbacks by reason."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt


class FallbackReason(enum.IntEnum):
    """Reason codes; the lower-case name is the `fallback_reason` string on the wire."""

    NONE = 0
    NON_FINITE_OUTPUT = 1
    MODEL_TIMEOUT = 2
    MISSING_FEATURE = 3
    STALE_FEATURE = 4
    MISSING_MODEL = 5
    CORRUPT_MODEL = 6
    MODEL_ERROR = 7

    @property
    def wire(self) -> str | None:
        """The `fallback_reason` string (None for no fallback)."""
        return None if self is FallbackReason.NONE else self.name.lower()


#: `on_fallback(reason, count)`: called once per served batch and reason with the row count.
FallbackCallback = Callable[[FallbackReason, int], None]


class FallbackCounts:
    """Thread-safe served/fallback counters the worker can export as metrics.

    Pass an instance as `on_fallback` to `EtaService`; `served` counts every row answered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.served = 0
        self.by_reason: dict[str, int] = {}
        self.clamped = 0

    def __call__(self, reason: FallbackReason, count: int) -> None:
        """Count `count` served rows answered with `reason`."""
        with self._lock:
            if reason is FallbackReason.NONE:
                self.served += count
                return
            self.served += count
            key = reason.wire or ""
            self.by_reason[key] = self.by_reason.get(key, 0) + count

    def add_clamped(self, count: int) -> None:
        """Count residuals that hit the clamp."""
        with self._lock:
            self.clamped += count

    def fallback_rate(self) -> float:
        """Share of served rows that fell back (0 when nothing was served)."""
        with self._lock:
            total_fb = sum(self.by_reason.values())
            return total_fb / self.served if self.served else 0.0


def report_reasons(codes: npt.NDArray[np.int8], callback: FallbackCallback) -> None:
    """Call `callback` once per reason present in `codes` (NONE included) with its count."""
    counts = np.bincount(codes.astype(np.int64), minlength=len(FallbackReason))
    for reason in FallbackReason:
        if counts[reason]:
            callback(reason, int(counts[reason]))
