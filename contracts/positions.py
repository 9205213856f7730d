"""`courier_position_batch`: the valid fixes of one shard, column-wise (the internal ping log).

This internal record is binary, not JSON: it is the hot path's log, written and read once per
ping message, and its size drives the cost of producing, storing and fetching it. Layout (all
little-endian):

    magic      5 bytes   b"DFPB1"
    header_len uint32    length of the JSON header that follows
    header     JSON      {"event_id", "ts_ms", "shard", "n", "base_ts_ms", "ids_len", "left"}
    ids        n lines   courier ids, UTF-8, each ended by a newline byte
    lat        float64[n]
    lon        float64[n]
    ts_delta   int32[n]  fix time minus base_ts_ms, in ms
    speed_mps  float32[n]  (NaN when absent)
    heading    float32[n]  (NaN when absent)
    accuracy_m float32[n]  (NaN when absent)

A batch with `"left": true` is a tombstone: the listed couriers left the shard at their `ts`
(only ids and times are meaningful). Tombstones live in the same log as fixes so that replaying
the log alone rebuilds the same positions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from contracts.pings import PingColumns

MAGIC = b"DFPB1"
_LEN = struct.Struct("<I")
_MAX_DELTA_MS = 2**31 - 1


class PositionBatchError(ValueError):
    """Bytes that are not a position batch."""


@dataclass(frozen=True)
class PositionBatch:
    """A decoded position batch: fixes in `shard`, or (if `left`) couriers that left it."""

    shard: str
    fixes: PingColumns
    left: bool = False


def encode_position_batch(
    shard: str, event_id: str, ts_ms: int, columns: PingColumns, *, left: bool = False
) -> bytes:
    """Binary `courier_position_batch` for `shard` (a tombstone batch when `left`)."""
    n = len(columns)
    base_ts_ms = int(columns.ts_ms.min()) if n else int(ts_ms)
    delta = columns.ts_ms - base_ts_ms
    if n and int(delta.max()) > _MAX_DELTA_MS:
        msg = "fixes of one batch must lie within 24 days of each other"
        raise PositionBatchError(msg)
    ids = "".join(f"{c}\n" for c in columns.courier_id.tolist()).encode()
    header = orjson.dumps(
        {
            "event_id": event_id,
            "ts_ms": int(ts_ms),
            "shard": shard,
            "n": n,
            "base_ts_ms": base_ts_ms,
            "ids_len": len(ids),
            "left": left,
        }
    )
    return b"".join(
        (
            MAGIC,
            _LEN.pack(len(header)),
            header,
            ids,
            columns.lat.astype("<f8", copy=False).tobytes(),
            columns.lon.astype("<f8", copy=False).tobytes(),
            delta.astype("<i4").tobytes(),
            columns.speed_mps.astype("<f4").tobytes(),
            columns.heading_deg.astype("<f4").tobytes(),
            columns.accuracy_m.astype("<f4").tobytes(),
        )
    )


def decode_position_batch(raw: bytes) -> PositionBatch:
    """Inverse of `encode_position_batch` (optional fields as float64).

    Raises `PositionBatchError` for any bytes that are not a well-formed batch, coordinates
    off the globe (or NaN) included.
    """
    if not raw.startswith(MAGIC):
        msg = "not a position batch (bad magic)"
        raise PositionBatchError(msg)
    try:
        return _decode(raw)
    except PositionBatchError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
        struct.error,
        UnicodeDecodeError,
    ) as exc:
        msg = f"malformed position batch: {type(exc).__name__}: {exc}"
        raise PositionBatchError(msg) from exc


def _decode(raw: bytes) -> PositionBatch:
    start = len(MAGIC)
    (header_len,) = _LEN.unpack_from(raw, start)
    start += _LEN.size
    header = orjson.loads(raw[start : start + header_len])
    if not isinstance(header, dict):
        msg = "position batch header is not an object"
        raise PositionBatchError(msg)
    start += header_len
    n = int(header["n"])
    ids_len = int(header["ids_len"])
    if n < 0 or ids_len < 0:
        msg = f"position batch announces {n} fixes and {ids_len} bytes of ids"
        raise PositionBatchError(msg)
    expected = start + ids_len + 32 * n
    if expected < len(raw):
        msg = f"position batch has {len(raw) - expected} trailing bytes"
        raise PositionBatchError(msg)
    if expected > len(raw):
        msg = f"position batch of {n} fixes is cut short by {expected - len(raw)} bytes"
        raise PositionBatchError(msg)
    ids = raw[start : start + ids_len - 1].decode().split("\n") if n else []
    start += ids_len
    if len(ids) != n:
        msg = f"position batch announces {n} fixes but holds {len(ids)} ids"
        raise PositionBatchError(msg)
    with np.errstate(invalid="ignore"):  # garbage bits may read as signalling NaNs
        return _columns(raw, start, n, ids, header)


def _columns(
    raw: bytes, start: int, n: int, ids: list[str], header: dict[str, Any]
) -> PositionBatch:
    """The fix columns after the ids (from `start`)."""
    view = memoryview(raw)

    def column(dtype: str, size: int) -> np.ndarray[Any, Any]:
        nonlocal start
        array = np.frombuffer(view[start : start + size * n], dtype=dtype, count=n)
        start += size * n
        return array

    lat = column("<f8", 8).astype(np.float64)
    lon = column("<f8", 8).astype(np.float64)
    left = header.get("left", False)
    if not isinstance(left, bool):
        msg = f"position batch header's left is {left!r}, not a boolean"
        raise PositionBatchError(msg)
    # Only workers write batches, but bits that do not read as a place on the globe would
    # break every geohash of the shard's next tick (zones, surge): refuse them here. A
    # tombstone's coordinates mean nothing (the worker writes NaN there) and are not read.
    if not left and (not (np.abs(lat) <= 90).all() or not (np.abs(lon) <= 180).all()):
        msg = "position batch holds coordinates off the globe (or not numbers)"
        raise PositionBatchError(msg)
    ts_ms = column("<i4", 4).astype(np.int64) + int(header["base_ts_ms"])
    speed = column("<f4", 4).astype(np.float64)
    heading = column("<f4", 4).astype(np.float64)
    accuracy = column("<f4", 4).astype(np.float64)
    columns = PingColumns(
        courier_id=np.array(ids, dtype=object).reshape(n),
        lat=lat,
        lon=lon,
        ts_ms=ts_ms,
        speed_mps=speed,
        heading_deg=heading,
        accuracy_m=accuracy,
    )
    return PositionBatch(str(header["shard"]), columns, left)
