"""Order events that arrived before their order: parked until it is created, or dead-lettered.

Records of different topics have no common order in Kafka, so an `order_ready` can be consumed
before the `order_created` it follows (a backlog drains topic by topic). Such events are kept in
the `order_orphans` table, keyed by order id in the order's partition, and applied when the order
appears. An orphan still waiting `ttl_ms` of event time after it was first seen is dead-lettered
as `unknown_id`, and kept one more ttl as a tombstone naming the record that expired it: the
expiry's state write and its dead letters reach the broker separately, and a worker killed in
between would otherwise find nothing left to expire when it reads that record again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import orjson

from dispatch.lifecycle import Source


@dataclass(frozen=True)
class ParkedRecord:
    """An input record waiting for its order: the decoded event and where it came from."""

    event: dict[str, Any]
    source: Source

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"event": self.event, "source": self.source.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParkedRecord:
        """Inverse of `to_dict`."""
        return cls(data["event"], Source.from_dict(data["source"]))


@dataclass(frozen=True)
class Orphans:
    """All records parked for one order id.

    `parked_tick_ms` is the partition's newest tick time when the first of them was parked (or
    the first tick after that), None until a tick was seen; it is stored with the records so
    that the wait for expiry by ticks survives a rebalance or a restart.
    """

    order_id: str
    partition: int
    first_seen_ts_ms: int
    records: tuple[ParkedRecord, ...]
    parked_tick_ms: int | None = None
    #: Set once the records were dead-lettered: the record whose handling expired them (its
    #: place only) and the partition's time then. The orphans stay as a tombstone for one more
    #: ttl, so that this record, handled again after a crash, sends the same dead letters again
    #: (a letter lost with the crash is not lost for good).
    expired_by: Source | None = None
    expired_at_ms: int | None = None

    @property
    def expired(self) -> bool:
        """True for a tombstone (the records were dead-lettered)."""
        return self.expired_by is not None

    def add(self, record: ParkedRecord) -> Orphans:
        """These orphans plus `record`."""
        first = min(self.first_seen_ts_ms, int(record.event["ts_ms"]))
        return replace(self, first_seen_ts_ms=first, records=(*self.records, record))

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        return orjson.dumps(
            {
                "order_id": self.order_id,
                "partition": self.partition,
                "first_seen_ts_ms": self.first_seen_ts_ms,
                "records": [r.to_dict() for r in self.records],
                "parked_tick_ms": self.parked_tick_ms,
                "expired_by": self.expired_by.to_dict() if self.expired_by else None,
                "expired_at_ms": self.expired_at_ms,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Orphans:
        """Inverse of `to_json` (values written before `parked_tick_ms` existed have none)."""
        data = orjson.loads(raw)
        records = tuple(ParkedRecord.from_dict(r) for r in data["records"])
        return cls(
            data["order_id"],
            data["partition"],
            data["first_seen_ts_ms"],
            records,
            data.get("parked_tick_ms"),
            Source.from_dict(data["expired_by"]) if data.get("expired_by") else None,
            data.get("expired_at_ms"),
        )

    @property
    def shard(self) -> str:
        """The shard the parked events name (the order's, once it is created)."""
        return str(self.records[0].event["shard"]) if self.records else ""


#: Where a record is: (topic, partition, offset).
_Place = tuple[str, int, int]


def _place(source: Source) -> _Place:
    return (source.topic, source.partition, source.offset)


class OrphanIndex:
    """Which orders of each partition have parked records, since when, and in which shard.

    Records expire two ways. By event time: against a per-partition watermark, the least, over
    the topics seen on the partition, of the newest event time seen on each (a topic consumed
    ahead of the others thus cannot expire events whose order is still in an unread part of
    another topic). By ticks: a partition whose order topics have gone quiet has no newer events
    to move that watermark, so each parked order also notes the partition's newest tick time
    when it was parked (stored with the orphans, so a rebalance or restart does not start the
    wait again), and expires once a tick of its shard comes `ttl` later. Live ticks come from
    the wall clock, so an order that never appears is dead-lettered about `ttl` after its
    events were read, traffic or not.
    """

    def __init__(self) -> None:
        self._by_partition: dict[int, dict[str, int]] = defaultdict(dict)
        self._newest: dict[int, dict[str, int]] = defaultdict(dict)
        self._shards: dict[int, dict[str, str]] = defaultdict(dict)
        self._parked_tick: dict[int, dict[str, int]] = defaultdict(dict)
        self._tick: dict[int, int] = {}
        # Tombstones: expired orphans of each partition -> when they expired and the record
        # (topic, partition, offset) that expired them; and the orders each such record expired.
        self._tombstones: dict[int, dict[str, tuple[int, _Place]]] = defaultdict(dict)
        self._expired_by: dict[_Place, set[str]] = defaultdict(set)
        self.loaded = False

    def tick(self, partition: int, ts_ms: int) -> list[str]:
        """A tick of one of `partition`'s shards at `ts_ms` was read.

        Orders parked before the partition's first tick start waiting from this one; their ids
        are returned (their stored orphans should note the tick, `Orphans.parked_tick_ms`).
        """
        now = self._tick[partition] = max(ts_ms, self._tick.get(partition, ts_ms))
        parked = self._parked_tick[partition]
        started = [o for o in self._by_partition[partition] if o not in parked]
        for order_id in started:
            parked[order_id] = now
        return started

    def newest_tick(self, partition: int) -> int | None:
        """The newest tick time read for `partition`, or None before its first tick."""
        return self._tick.get(partition)

    def expired_by_ticks(self, partition: int, ttl_ms: int) -> list[str]:
        """Order ids of `partition` parked `ttl_ms` of ticks ago or more."""
        now = self._tick.get(partition)
        if now is None:
            return []
        parked = self._parked_tick[partition]
        return sorted(o for o, since in parked.items() if now - since >= ttl_ms)

    def shards(self) -> set[str]:
        """Shards that have parked records (ticks must reach them)."""
        return {s for by_order in self._shards.values() for s in by_order.values()}

    def observe(self, partition: int, topic: str, ts_ms: int) -> None:
        """Advance the newest event time seen on `topic` in `partition`."""
        newest = self._newest[partition]
        if ts_ms > newest.get(topic, -1):
            newest[topic] = ts_ms

    def watermark(self, partition: int) -> int | None:
        """Event time every topic seen on `partition` has reached, or None before any record."""
        newest = self._newest.get(partition)
        return min(newest.values()) if newest else None

    def load(self, all_orphans: list[Orphans]) -> None:
        """Replace every entry with those of `all_orphans` (after a rebalance or recovery)."""
        self._by_partition.clear()
        self._shards.clear()
        self._parked_tick.clear()
        self._tombstones.clear()
        self._expired_by.clear()
        for orphans in all_orphans:
            self.add_orphans(orphans.partition, orphans)
        self.loaded = True

    def reset(self) -> None:
        """Mark the index stale; it is loaded again before its next use."""
        self._by_partition.clear()
        self._newest.clear()
        self._shards.clear()
        self._parked_tick.clear()
        self._tick.clear()
        self._tombstones.clear()
        self._expired_by.clear()
        self.loaded = False

    def add(
        self,
        partition: int,
        order_id: str,
        first_seen_ts_ms: int,
        shard: str,
        parked_tick_ms: int | None = None,
    ) -> None:
        """Note parked records for `order_id` (of `shard`).

        Their wait for expiry by ticks starts at `parked_tick_ms` when it is known (stored
        with the orphans), else at the partition's newest tick, else at its next tick.
        """
        current = self._by_partition[partition].get(order_id)
        if current is None or first_seen_ts_ms < current:
            self._by_partition[partition][order_id] = first_seen_ts_ms
        self._shards[partition][order_id] = shard
        parked = self._parked_tick[partition]
        tick = parked_tick_ms if parked_tick_ms is not None else self._tick.get(partition)
        if tick is not None:
            parked[order_id] = min(tick, parked.get(order_id, tick))

    def add_orphans(self, partition: int, orphans: Orphans) -> None:
        """Note stored `orphans` of `partition`: `add` with what they carry, `bury` a tombstone."""
        if orphans.expired:
            self.bury(orphans)
            return
        self.add(
            partition,
            orphans.order_id,
            orphans.first_seen_ts_ms,
            orphans.shard,
            parked_tick_ms=orphans.parked_tick_ms,
        )

    def discard(self, partition: int, order_id: str) -> None:
        """Forget `order_id` (waiting or tombstone)."""
        self._forget_waiting(partition, order_id)
        tombstone = self._tombstones[partition].pop(order_id, None)
        if tombstone is not None:
            place = tombstone[1]
            orders = self._expired_by[place]
            orders.discard(order_id)
            if not orders:
                del self._expired_by[place]

    def bury(self, orphans: Orphans) -> None:
        """Note `orphans` (expired) as a tombstone: no longer waiting, kept for redeliveries."""
        if orphans.expired_by is None or orphans.expired_at_ms is None:
            msg = f"orphans of {orphans.order_id!r} are not expired"
            raise ValueError(msg)
        partition, order_id = orphans.partition, orphans.order_id
        self._forget_waiting(partition, order_id)
        place = _place(orphans.expired_by)
        self._tombstones[partition][order_id] = (orphans.expired_at_ms, place)
        self._expired_by[place].add(order_id)

    def _forget_waiting(self, partition: int, order_id: str) -> None:
        self._by_partition[partition].pop(order_id, None)
        self._shards[partition].pop(order_id, None)
        self._parked_tick[partition].pop(order_id, None)

    def expired_by(self, source: Source) -> list[str]:
        """Order ids whose orphans the record at `source` expired (tombstones still kept)."""
        return sorted(self._expired_by.get(_place(source), ()))

    def now(self, partition: int) -> int | None:
        """The partition's time: the later of its newest tick and its event-time watermark."""
        times = [t for t in (self._tick.get(partition), self.watermark(partition)) if t is not None]
        return max(times) if times else None

    def tombstones_past(self, partition: int, ttl_ms: int) -> list[str]:
        """Order ids of `partition` whose tombstones are `ttl_ms` old or more (to delete)."""
        now = self.now(partition)
        if now is None:
            return []
        return sorted(o for o, (at, _) in self._tombstones[partition].items() if now - at >= ttl_ms)

    def expired(self, partition: int, ttl_ms: int) -> list[str]:
        """Order ids of `partition` whose orphans were first seen `ttl_ms` before the watermark."""
        watermark = self.watermark(partition)
        if watermark is None:
            return []
        cutoff = watermark - ttl_ms
        return sorted(o for o, ts in self._by_partition[partition].items() if ts < cutoff)
