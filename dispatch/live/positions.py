"""Latest courier positions of the partitions a worker owns: columns in memory, snapshots on disk.

Positions are last-writer-wins by fix time and are applied to numpy columns indexed by a courier
slot, so a record of hundreds of fixes costs a handful of array operations. They are not
changelogged: the `courier_positions` topic is their log, and `streams.position_replay` rebuilds a
partition from it after an assignment. Each partition's RocksDB database holds a consistent
snapshot (the rows changed since the previous snapshot, written atomically with the log offset
they include), taken every `flush_interval_s` and on `flush()`; a restart that keeps its data
directory re-reads only the log after that offset.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from rocksdict import Options, Rdict, WriteBatch

from contracts.pings import PingColumns

_OFFSET_KEY = b"\x00meta:offset"
_PACK = struct.Struct("<ddqfff")
_NO_SHARD = -1
_INITIAL_CAPACITY = 1024


@dataclass(frozen=True)
class Position:
    """A courier's latest fix and the shard it lies in."""

    courier_id: str
    shard: str
    lat: float
    lon: float
    ts_ms: int
    speed_mps: float
    heading_deg: float
    accuracy_m: float

    def pack(self) -> bytes:
        """Bytes for the database value (the key is the courier id)."""
        fixed = _PACK.pack(
            self.lat, self.lon, self.ts_ms, self.speed_mps, self.heading_deg, self.accuracy_m
        )
        return fixed + self.shard.encode()

    @classmethod
    def unpack(cls, courier_id: str, raw: bytes) -> Position:
        """Inverse of `pack`."""
        lat, lon, ts_ms, speed, heading, accuracy = _PACK.unpack_from(raw)
        shard = raw[_PACK.size :].decode()
        return cls(courier_id, shard, lat, lon, ts_ms, speed, heading, accuracy)


@dataclass(frozen=True)
class Arrival:
    """A courier whose newest fix puts it in a shard this partition did not hold it in."""

    courier_id: str
    shard: str
    previous_shard: str | None
    ts_ms: int


class _Columns:
    """Position columns of one partition, one row per courier slot."""

    def __init__(self) -> None:
        self.slot_of: dict[str, int] = {}
        self.ids: list[str] = []
        self.lat = np.zeros(_INITIAL_CAPACITY, dtype=np.float64)
        self.lon = np.zeros(_INITIAL_CAPACITY, dtype=np.float64)
        self.ts_ms = np.full(_INITIAL_CAPACITY, -1, dtype=np.int64)
        self.speed = np.zeros(_INITIAL_CAPACITY, dtype=np.float32)
        self.heading = np.zeros(_INITIAL_CAPACITY, dtype=np.float32)
        self.accuracy = np.zeros(_INITIAL_CAPACITY, dtype=np.float32)
        self.shard = np.full(_INITIAL_CAPACITY, _NO_SHARD, dtype=np.int32)
        self.dirty = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.last_offset: int | None = None
        self.flushed_offset: int | None = None
        self.last_flush_s = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def _grow(self, needed: int) -> None:
        capacity = self.lat.shape[0]
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        for name, fill in (
            ("lat", 0.0),
            ("lon", 0.0),
            ("ts_ms", -1),
            ("speed", 0.0),
            ("heading", 0.0),
            ("accuracy", 0.0),
            ("shard", _NO_SHARD),
            ("dirty", False),
        ):
            old = getattr(self, name)
            grown = np.full(new, fill, dtype=old.dtype)
            grown[:capacity] = old
            setattr(self, name, grown)

    def slots(self, ids: list[str]) -> npt.NDArray[np.int64]:
        """Slot of each id, creating slots for ids never seen."""
        get = self.slot_of.get
        found = [get(c, -1) for c in ids]
        if -1 in found:
            for i, slot in enumerate(found):
                if slot == -1:
                    courier_id = ids[i]
                    slot = self.slot_of.get(courier_id, -1)
                    if slot == -1:
                        slot = len(self.ids)
                        self.slot_of[courier_id] = slot
                        self.ids.append(courier_id)
                    found[i] = slot
            self._grow(len(self.ids))
        return np.array(found, dtype=np.int64)


class PositionStore:
    """Per-partition position columns, snapshotted to RocksDB databases under `directory`."""

    def __init__(
        self,
        directory: Path,
        flush_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if flush_interval_s < 0:
            msg = "flush_interval_s must be >= 0"
            raise ValueError(msg)
        self.directory = directory
        self.flush_interval_s = flush_interval_s
        self._clock = clock
        self._dbs: dict[int, Rdict] = {}
        self._parts: dict[int, _Columns] = {}
        self._shards: list[str] = []
        self._shard_code: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def partitions(self) -> frozenset[int]:
        """Partitions currently open."""
        return frozenset(self._dbs)

    def _path(self, partition: int) -> Path:
        return self.directory / f"p{partition}"

    def _code(self, shard: str) -> int:
        code = self._shard_code.get(shard)
        if code is None:
            code = len(self._shards)
            self._shards.append(shard)
            self._shard_code[shard] = code
        return code

    def open(self, partition: int) -> None:
        """Open (or create) the database of `partition` and load its snapshot."""
        if partition in self._dbs:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        db = Rdict(str(self._path(partition)), Options(raw_mode=True))
        part = _Columns()
        rows: list[Position] = []
        for raw_key, raw_value in db.items():
            key, value = cast(bytes, raw_key), cast(bytes, raw_value)
            if key == _OFFSET_KEY:
                part.last_offset = part.flushed_offset = int(value.decode())
            else:
                rows.append(Position.unpack(key.decode(), value))
        if rows:
            slots = part.slots([r.courier_id for r in rows])
            part.lat[slots] = [r.lat for r in rows]
            part.lon[slots] = [r.lon for r in rows]
            part.ts_ms[slots] = [r.ts_ms for r in rows]
            part.speed[slots] = [r.speed_mps for r in rows]
            part.heading[slots] = [r.heading_deg for r in rows]
            part.accuracy[slots] = [r.accuracy_m for r in rows]
            part.shard[slots] = [self._code(r.shard) for r in rows]
        part.last_flush_s = self._clock()
        self._dbs[partition] = db
        self._parts[partition] = part

    def close(self, partition: int, *, flush: bool = True) -> None:
        """Close the database of `partition`, after a snapshot unless `flush` is False."""
        if partition not in self._dbs:
            return
        if flush:
            self.flush(partition)
        self._parts.pop(partition)
        self._dbs.pop(partition).close()

    def close_all(self) -> None:
        """Close every open database."""
        for partition in list(self._dbs):
            self.close(partition)

    def last_offset(self, partition: int) -> int | None:
        """Offset of the last log record applied to `partition`, or None if none was."""
        part = self._parts.get(partition)
        return part.last_offset if part is not None else None

    # ------------------------------------------------------------------ writes
    def _part(self, partition: int) -> _Columns:
        part = self._parts.get(partition)
        if part is None:
            msg = f"partition {partition} is not open"
            raise KeyError(msg)
        return part

    def apply(self, partition: int, offset: int, shard: str, fixes: PingColumns) -> list[Arrival]:
        """Apply the fixes of one log record; return couriers new to `shard` in this partition.

        Fixes older than the stored one are ignored, so re-applying a record changes nothing.
        """
        part = self._part(partition)
        code = self._code(shard)
        arrivals: list[Arrival] = []
        if len(fixes):
            slots = part.slots(fixes.courier_id.tolist())
            order = np.argsort(fixes.ts_ms, kind="stable")
            newer = fixes.ts_ms[order] > part.ts_ms[slots[order]]
            if newer.any():
                rows = order[newer]
                targets = slots[rows]
                previous = part.shard[targets].copy()
                part.lat[targets] = fixes.lat[rows]
                part.lon[targets] = fixes.lon[rows]
                part.ts_ms[targets] = fixes.ts_ms[rows]
                part.speed[targets] = fixes.speed_mps[rows]
                part.heading[targets] = fixes.heading_deg[rows]
                part.accuracy[targets] = fixes.accuracy_m[rows]
                part.shard[targets] = code
                part.dirty[targets] = True
                moved = np.unique(targets[previous != code])
                if moved.size:
                    before = dict(zip(targets.tolist(), previous.tolist(), strict=True))
                    for slot in moved.tolist():
                        prev = before[slot]
                        arrivals.append(
                            Arrival(
                                part.ids[slot],
                                shard,
                                self._shards[prev] if prev != _NO_SHARD else None,
                                int(part.ts_ms[slot]),
                            )
                        )
        if part.last_offset is None or offset > part.last_offset:
            part.last_offset = offset
        if self._clock() - part.last_flush_s >= self.flush_interval_s:
            self.flush(partition)
        return arrivals

    def apply_left(self, partition: int, offset: int, shard: str, left: PingColumns) -> int:
        """Apply a tombstone record: forget couriers that left `shard` at their listed time.

        A courier whose stored fix is newer than its departure, or that is stored in another
        shard, is kept. Returns how many couriers were forgotten.
        """
        part = self._part(partition)
        code = self._shard_code.get(shard)
        removed = 0
        for courier_id, ts_ms in zip(left.courier_id.tolist(), left.ts_ms.tolist(), strict=True):
            slot = part.slot_of.get(courier_id)
            if slot is None or code is None or part.shard[slot] != code:
                continue
            if part.ts_ms[slot] > ts_ms:
                continue
            part.shard[slot] = _NO_SHARD
            part.dirty[slot] = True
            removed += 1
        if part.last_offset is None or offset > part.last_offset:
            part.last_offset = offset
        return removed

    def flush(self, partition: int) -> int:
        """Write the rows changed since the last snapshot, with the log offset; return how many."""
        part = self._part(partition)
        db = self._dbs[partition]
        dirty = np.flatnonzero(part.dirty)
        if dirty.size == 0 and part.flushed_offset == part.last_offset:
            part.last_flush_s = self._clock()
            return 0
        batch = WriteBatch(raw_mode=True)
        for slot in dirty.tolist():
            key = part.ids[slot].encode()
            if part.shard[slot] == _NO_SHARD:
                batch.delete(key)
            else:
                batch.put(key, self._row(part, slot).pack())
        if part.last_offset is not None:
            batch.put(_OFFSET_KEY, str(part.last_offset).encode())
        db.write(batch)
        part.dirty[dirty] = False
        part.flushed_offset = part.last_offset
        part.last_flush_s = self._clock()
        return int(dirty.size)

    def flush_all(self) -> None:
        """Snapshot every open partition."""
        for partition in list(self._dbs):
            self.flush(partition)

    # ------------------------------------------------------------------ reads
    def _row(self, part: _Columns, slot: int) -> Position:
        return Position(
            part.ids[slot],
            self._shards[int(part.shard[slot])],
            float(part.lat[slot]),
            float(part.lon[slot]),
            int(part.ts_ms[slot]),
            float(part.speed[slot]),
            float(part.heading[slot]),
            float(part.accuracy[slot]),
        )

    def get(self, courier_id: str) -> Position | None:
        """The courier's newest position over every open partition, or None.

        A courier that moved to a shard of another partition may briefly be held by both
        partitions (until the old one applies its departure); the newest fix wins.
        """
        best: tuple[_Columns, int] | None = None
        for part in self._parts.values():
            slot = part.slot_of.get(courier_id)
            if slot is None or part.shard[slot] == _NO_SHARD:
                continue
            if best is None or part.ts_ms[slot] > best[0].ts_ms[best[1]]:
                best = (part, slot)
        return self._row(*best) if best is not None else None

    def __iter__(self) -> Iterator[Position]:
        for part in self._parts.values():
            for slot in np.flatnonzero(part.shard[: len(part)] != _NO_SHARD).tolist():
                yield self._row(part, slot)

    def __len__(self) -> int:
        return sum(
            int(np.count_nonzero(part.shard[: len(part)] != _NO_SHARD))
            for part in self._parts.values()
        )
