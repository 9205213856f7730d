"""`courier_position_batch`: valid fixes of one shard, column-wise (the internal ping log)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from contracts.pings import PingColumns
from contracts.schemas import SCHEMA_VERSION


def encode_position_batch(shard: str, event_id: str, ts_ms: int, columns: PingColumns) -> bytes:
    """JSON bytes of a `courier_position_batch` for `shard` (NaN optional fields become null)."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "courier_position_batch",
        "v": SCHEMA_VERSION,
        "ts_ms": int(ts_ms),
        "shard": shard,
        "courier_id": columns.courier_id.tolist(),
        "lat": columns.lat,
        "lon": columns.lon,
        "pos_ts_ms": columns.ts_ms,
        "speed_mps": columns.speed_mps,
        "heading_deg": columns.heading_deg,
        "accuracy_m": columns.accuracy_m,
    }
    return orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_position_batch(raw: bytes) -> tuple[str, PingColumns]:
    """Inverse of `encode_position_batch`: the shard and its fixes."""
    event = orjson.loads(raw)
    n = len(event["courier_id"])

    def floats(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        values = event[name]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64).reshape(n)

    columns = PingColumns(
        courier_id=np.array(event["courier_id"], dtype=np.str_).reshape(n),
        lat=np.asarray(event["lat"], dtype=np.float64).reshape(n),
        lon=np.asarray(event["lon"], dtype=np.float64).reshape(n),
        ts_ms=np.asarray(event["pos_ts_ms"], dtype=np.int64).reshape(n),
        speed_mps=floats("speed_mps"),
        heading_deg=floats("heading_deg"),
        accuracy_m=floats("accuracy_m"),
    )
    return str(event["shard"]), columns
