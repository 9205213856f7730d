"""Which couriers a shard should report to the courier directory after new positions arrive.

A courier whose fix lies in a shard that does not hold it (no record there, or its record is
leaving) is "sighted"; the directory then moves it. The decision rests on the shard's own courier
records, not on what one partition's position store happens to remember, so any number of
partitions gives the same sightings. Repeats for the same shard and courier are limited to one
per `min_interval_ms` of event time (the directory ignores repeats anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class SightingFilter:
    """Couriers to report for a batch of fixes; see the module docstring."""

    min_interval_ms: int = 30_000
    _sent: dict[tuple[str, str], int] = field(default_factory=dict)

    def sightings(
        self,
        shard: str,
        latest: Sequence[tuple[str, int]],
        holds: Callable[[str, str], bool],
    ) -> list[tuple[str, int]]:
        """(courier id, fix time) of the couriers in `latest` that `shard` does not hold."""
        out = []
        for courier_id, ts_ms in latest:
            if holds(shard, courier_id):
                continue
            last = self._sent.get((shard, courier_id))
            if last is not None and ts_ms - last < self.min_interval_ms:
                continue
            self._sent[(shard, courier_id)] = ts_ms
            out.append((courier_id, ts_ms))
        return out
