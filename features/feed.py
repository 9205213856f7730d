"""The online feature store fed by a worker: accepted events at once, pings in bulk.

The worker core calls `FeatureFeed.on_event` right after it accepts an event of
`order_events`, `merchant_ready`, `delivery_events` or `assignment_responses` (and for the
events that were parked waiting for an order, when they are accepted with it), inside the same
stream iteration, so each table write goes to the changelog partition of that event. Every key
is scoped to that partition (`p<partition>|...`): one partition's keys are written only while
iterating it, and the city and global priors are per partition, as is a courier's acceptance
rate (the answers it gave to offers of that partition's shards).

Courier pings feed the zone features (supply and observed speed, with their city and global
priors) through `on_pings`, called with each batch of positions applied (already grouped by
shard, so in the partition of that shard). They are buffered per partition and applied in bulk
(`features.pings`) once `ping_features_flush_s` seconds have passed since the partition's last
flush, or its buffer holds `max_buffered_pings`; a tick of the partition also flushes a due
buffer, so a quiet partition's pings do not wait for the next ping. With `ping_flush_s=None`
(replays, where wall time means nothing) pings wait for a read: a tick, or an order's features
at placement, applies the buffer first. The cadence is wall time so
that the table writes stay bounded when a backlog drains; the values are event time. A crash or
a rebalance loses at most one flush interval of pings from these features (supply refills with
the next ping of each courier; speeds are means over an hour or more). Pings also feed each
courier's own travel speed (one table write per courier and flush).

Reads for decisions: `order_row` is an order's feature row at its placement (read before its
`order_created` is applied, as the offline builder does), `read` one feature of an entity,
degraded to its city or global prior when missing or stale and reported to `on_degrade`.

Events too old for a feature's window are reported to `on_late` (feature, level); an accepted
event whose feature update is refused is logged and reported to `on_rejected` (type).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts.pings import PingColumns
from features.definitions import COURIER, ZONE
from features.events import MAX_SPEED_MPS, EventError
from features.from_contracts import MerchantOf, to_feature_event
from features.pings import PingBatch, apply_pings
from features.store import DegradeCallback, FeatureRead, LateCallback, OnlineFeatureStore

logger = logging.getLogger(__name__)

FEATURES_TABLE = "online_features"

#: Entities whose features pings feed online: zones (supply, observed speed) and couriers
#: (their own travel speed).
PING_FED_ENTITIES = (ZONE, COURIER)


class PartitionScoped(MutableMapping[bytes, bytes]):
    """The keys of one partition in a bytes mapping, under the prefix `p<partition>|`."""

    def __init__(self, mapping: MutableMapping[bytes, bytes], partition: int) -> None:
        self._mapping = mapping
        self._prefix = f"p{partition}|".encode()

    def __getitem__(self, key: bytes) -> bytes:
        return self._mapping[self._prefix + key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._mapping[self._prefix + key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._mapping[self._prefix + key]

    def __iter__(self) -> Iterator[bytes]:
        n = len(self._prefix)
        return (bytes(k)[n:] for k in list(self._mapping) if bytes(k).startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class FeatureFeed:
    """Applies accepted contract events to the per-partition online feature stores."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        on_late: LateCallback | None = None,
        on_rejected: Callable[[str], None] | None = None,
        *,
        ping_flush_s: float | None = 0.0,
        max_buffered_pings: int = 1_000_000,
        on_flush: Callable[[int, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_degrade: DegradeCallback | None = None,
    ) -> None:
        if (ping_flush_s is not None and ping_flush_s < 0) or max_buffered_pings < 1:
            raise ValueError("ping_flush_s must be >= 0 and max_buffered_pings >= 1")
        self.table = table
        self.on_late = on_late
        self.on_rejected = on_rejected
        self.ping_flush_s = ping_flush_s
        self.max_buffered_pings = max_buffered_pings
        self.on_flush = on_flush
        self.on_degrade = on_degrade
        self.clock = clock
        self._stores: dict[int, OnlineFeatureStore] = {}
        self._pings: dict[int, _PingBuffer] = {}

    def store(self, partition: int) -> OnlineFeatureStore:
        """The feature store of one partition."""
        store = self._stores.get(partition)
        if store is None:
            store = OnlineFeatureStore(
                PartitionScoped(self.table, partition),
                on_degrade=self.on_degrade,
                on_late=self.on_late,
            )
            self._stores[partition] = store
        return store

    def on_event(self, event: Mapping[str, Any], partition: int, merchant_of: MerchantOf) -> bool:
        """Update the features from one validated contract event; True if any were updated.

        Must be called inside the stream iteration of `partition` (table writes go to its
        changelog partition). A feature event the engine rejects is logged, reported to
        `on_rejected` (with its type) and skipped.
        """
        feature_event = to_feature_event(event, merchant_of)
        if feature_event is None:
            return False
        try:
            self.store(partition).apply(feature_event)
        except EventError as exc:
            logger.warning("feature update skipped for %s: %s", event.get("event_id"), exc)
            if self.on_rejected is not None:
                self.on_rejected(str(feature_event.get("type")))
            return False
        return True

    def order_row(self, event: Mapping[str, Any], partition: int) -> dict[str, float | None]:
        """The numeric features of a validated `order_created` before it is applied.

        Keys as `FeatureEngine.order_features` (levels left out). Reads only (but for applying
        waiting pings when `ping_flush_s` is None); call it before `on_event` of the same event.
        """
        if self.ping_flush_s is None:
            self.flush(partition)
        pickup = event["pickup"]
        row = self.store(partition).order_features(
            str(event["merchant_id"]),
            float(pickup["lat"]),
            float(pickup["lon"]),
            int(event["ts_ms"]),
        )
        return {k: v for k, v in row.items() if "@" not in k}

    def read(self, partition: int, feature: str, key: str, now_ms: int) -> FeatureRead:
        """`feature` of entity `key` at `now_ms`, degraded when missing or stale (see `store`)."""
        return self.store(partition).read(feature, key, now_ms)

    def zone_supply_demand(self, partition: int, zone: str, now_ms: int) -> tuple[float, float]:
        """A zone's supply and demand at `now_ms` (`FeatureEngine.zone_supply_demand`)."""
        return self.store(partition).zone_supply_demand(zone, now_ms)

    def read_global(self, partition: int, feature: str, now_ms: int) -> FeatureRead:
        """The partition's marketplace-wide prior of `feature` (nothing counted as degraded)."""
        return self.store(partition).read_global(feature, now_ms)

    def on_pings(self, fixes: PingColumns, partition: int) -> int:
        """Buffer the fixes of `partition`; flush when due. Returns the pings flushed.

        Fixes outside the coordinates' ranges are left out, and an implausible speed
        (negative, above `features.events.MAX_SPEED_MPS`, not finite) counts as unknown. Must
        be called inside the stream iteration of `partition` (a flush writes the table).
        """
        with np.errstate(invalid="ignore"):
            usable = (np.abs(fixes.lat) <= 90.0) & (np.abs(fixes.lon) <= 180.0)
        if not usable.all():
            fixes = fixes.take(np.flatnonzero(usable))
        if len(fixes) == 0:
            return 0
        buffer = self._pings.get(partition)
        if buffer is None:
            buffer = self._pings[partition] = _PingBuffer(since_s=self.clock())
        # Ids as a fixed-width string array: buffered object arrays would slow every GC pass.
        ids = fixes.courier_id.astype(np.str_)
        with np.errstate(invalid="ignore"):
            plausible = (fixes.speed_mps >= 0.0) & (fixes.speed_mps <= MAX_SPEED_MPS)
        speed = np.where(plausible, fixes.speed_mps, np.nan)
        buffer.batches.append(PingBatch(ids, fixes.lat, fixes.lon, fixes.ts_ms, speed))
        buffer.count += len(fixes)
        if self.ping_flush_s is None and buffer.count < self.max_buffered_pings:
            return 0
        return self.flush_due(partition)

    def flush_due(self, partition: int) -> int:
        """Apply the buffered pings of `partition` if a flush is due; returns how many.

        Due when `ping_flush_s` (by `clock`) has passed since the partition's last flush (or
        since its first buffered batch), or when its buffer holds `max_buffered_pings`; always
        due when `ping_flush_s` is None (a tick reads the features). Must be called inside the
        stream iteration of `partition`.
        """
        buffer = self._pings.get(partition)
        if buffer is None or buffer.count == 0:
            return 0
        waiting = self.ping_flush_s is not None and buffer.count < self.max_buffered_pings
        if waiting and self.clock() - buffer.since_s < (self.ping_flush_s or 0.0):
            return 0
        return self.flush(partition)

    def flush(self, partition: int) -> int:
        """Apply every buffered ping of `partition` now; returns how many."""
        buffer = self._pings.get(partition)
        if buffer is None:
            return 0
        started = time.perf_counter()
        pings = PingBatch.concat(buffer.batches)
        self._pings[partition] = _PingBuffer(since_s=self.clock())
        applied = apply_pings(self.store(partition), pings, entities=PING_FED_ENTITIES)
        if self.on_flush is not None and applied:
            self.on_flush(applied, time.perf_counter() - started)
        return applied

    def keep_only(self, partitions: set[int]) -> int:
        """Drop the buffered pings of every other partition; returns how many.

        Called after a rebalance: the new owner of a partition taken away reads on from the
        committed offsets, so these pings are lost from the features (one flush interval).
        """
        gone = set(self._pings) - partitions
        return sum(self._pings.pop(partition).count for partition in gone)

    def buffered(self, partition: int) -> int:
        """Pings of `partition` waiting for the next flush."""
        buffer = self._pings.get(partition)
        return 0 if buffer is None else buffer.count


@dataclass
class _PingBuffer:
    """One partition's pings waiting for a flush, and when the wait began."""

    since_s: float
    batches: list[PingBatch] = field(default_factory=list)
    count: int = 0
