"""Latest courier positions of the partitions a worker owns, in memory and on local RocksDB.

Positions are last-writer-wins by fix time. They are not changelogged: the `courier_positions`
topic is their log, and `streams.position_replay` rebuilds a partition from it after an assignment.
Each partition's database remembers the last log offset applied to it, so a restart that keeps its
data directory only re-reads what came after.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from rocksdict import Options, Rdict, WriteBatch

from contracts.pings import PingColumns

_OFFSET_KEY = b"\x00meta:offset"
_PACK = struct.Struct("<ddqfff")


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


class PositionStore:
    """Per-partition RocksDB databases under `directory`, mirrored in memory for reads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._dbs: dict[int, Rdict] = {}
        self._mem: dict[int, dict[str, Position]] = {}
        self._offsets: dict[int, int] = {}

    @property
    def partitions(self) -> frozenset[int]:
        """Partitions currently open."""
        return frozenset(self._dbs)

    def _path(self, partition: int) -> Path:
        return self.directory / f"p{partition}"

    def open(self, partition: int) -> None:
        """Open (or create) the database of `partition` and load it into memory."""
        if partition in self._dbs:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        db = Rdict(str(self._path(partition)), Options(raw_mode=True))
        mem: dict[str, Position] = {}
        for raw_key, raw_value in db.items():
            key, value = cast(bytes, raw_key), cast(bytes, raw_value)
            if key == _OFFSET_KEY:
                self._offsets[partition] = int(value.decode())
            else:
                courier_id = key.decode()
                mem[courier_id] = Position.unpack(courier_id, value)
        self._dbs[partition] = db
        self._mem[partition] = mem

    def close(self, partition: int) -> None:
        """Close the database of `partition` (its files stay)."""
        db = self._dbs.pop(partition, None)
        self._mem.pop(partition, None)
        self._offsets.pop(partition, None)
        if db is not None:
            db.close()

    def close_all(self) -> None:
        """Close every open database."""
        for partition in list(self._dbs):
            self.close(partition)

    def wipe(self, partition: int) -> None:
        """Delete the files of a closed partition."""
        if partition in self._dbs:
            msg = f"partition {partition} is open"
            raise RuntimeError(msg)
        shutil.rmtree(self._path(partition), ignore_errors=True)

    def last_offset(self, partition: int) -> int | None:
        """Offset of the last log record applied to `partition`, or None if none was."""
        return self._offsets.get(partition)

    def apply(self, partition: int, offset: int, shard: str, fixes: PingColumns) -> list[Arrival]:
        """Apply the fixes of one log record; return couriers new to `shard` in this partition.

        Older fixes than what is stored are ignored, so re-applying a record changes nothing.
        """
        db = self._dbs.get(partition)
        if db is None:
            msg = f"partition {partition} is not open"
            raise KeyError(msg)
        mem = self._mem[partition]
        batch = WriteBatch(raw_mode=True)
        arrivals: list[Arrival] = []
        for i in _latest_per_courier(fixes):
            courier_id = str(fixes.courier_id[i])
            ts_ms = int(fixes.ts_ms[i])
            current = mem.get(courier_id)
            if current is not None and current.ts_ms >= ts_ms:
                continue
            position = Position(
                courier_id,
                shard,
                float(fixes.lat[i]),
                float(fixes.lon[i]),
                ts_ms,
                float(fixes.speed_mps[i]),
                float(fixes.heading_deg[i]),
                float(fixes.accuracy_m[i]),
            )
            mem[courier_id] = position
            batch.put(courier_id.encode(), position.pack())
            if current is None or current.shard != shard:
                arrivals.append(
                    Arrival(courier_id, shard, current.shard if current else None, ts_ms)
                )
        if offset > self._offsets.get(partition, -1):
            self._offsets[partition] = offset
            batch.put(_OFFSET_KEY, str(offset).encode())
        db.write(batch)
        return arrivals

    def remove(self, partition: int, courier_id: str, shard: str) -> bool:
        """Forget a courier that left `shard`, unless a newer fix already placed it elsewhere."""
        db = self._dbs.get(partition)
        current = self._mem.get(partition, {}).get(courier_id)
        if db is None or current is None or current.shard != shard:
            return False
        del self._mem[partition][courier_id]
        db.delete(courier_id.encode())
        return True

    def get(self, courier_id: str) -> Position | None:
        """The courier's position in any open partition, or None."""
        for mem in self._mem.values():
            position = mem.get(courier_id)
            if position is not None:
                return position
        return None

    def __iter__(self) -> Iterator[Position]:
        for mem in self._mem.values():
            yield from mem.values()

    def __len__(self) -> int:
        return sum(len(mem) for mem in self._mem.values())

    def in_shard(self, shard: str, since_ts_ms: int = 0) -> list[Position]:
        """Positions in `shard` with a fix at or after `since_ts_ms`, by courier id."""
        found = [p for p in self if p.shard == shard and p.ts_ms >= since_ts_ms]
        return sorted(found, key=lambda p: p.courier_id)


def _latest_per_courier(fixes: PingColumns) -> list[int]:
    """Index of each courier's newest fix (ties: the later one), in first-seen order."""
    n = len(fixes)
    if n == 0:
        return []
    order = np.lexsort((np.arange(n), fixes.ts_ms, fixes.courier_id))
    ids = fixes.courier_id[order]
    last_of_group = np.ones(n, dtype=bool)
    last_of_group[:-1] = ids[1:] != ids[:-1]
    return sorted(int(i) for i in order[last_of_group])
