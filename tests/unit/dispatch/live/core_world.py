"""A `WorkerCore` over in-memory state, fed record by record as the worker's agents feed it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from contracts.geo import shard_of
from contracts.records import envelope
from dispatch.live.effects import Effects
from dispatch.live.eta import LegPredictor
from dispatch.live.worker import Record, WorkerConfig
from simulators.inprocess import InProcessDispatch
from tests import events

T0 = 1_700_000_000_000
LAT, LON = 40.75, -73.99
SHARD = shard_of(LAT, LON, 4)
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class CoreWorld:
    """One worker core; `feed` hands it the next record of a topic (partition 0)."""

    def __init__(
        self, root: Path, config: WorkerConfig | None = None, predictor: LegPredictor | None = None
    ) -> None:
        self.dispatch = InProcessDispatch(config, predictor, workdir=root)
        self.core = self.dispatch.core
        self.stores = self.dispatch.stores
        self.telemetry = self.dispatch.telemetry
        self._offsets: Counter[str] = Counter()

    def close(self) -> None:
        """Close the position store."""
        self.dispatch.close()

    def record(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | dict[str, Any] | None,
        ts_ms: int | None = T0,
        headers: tuple[tuple[str, bytes], ...] = (),
        offset: int | None = None,
    ) -> Record:
        """The next record of `topic` (or the one at `offset`); dict values become JSON."""
        if offset is None:
            offset = self._offsets[topic]
            self._offsets[topic] += 1
        raw = orjson.dumps(value) if isinstance(value, dict) else value
        return Record(topic, 0, offset, key, raw, ts_ms, headers)

    def feed(self, topic: str, key: bytes | None, value: Any, **kwargs: Any) -> Effects:
        """Handle the next record of `topic`."""
        return self.core.handle(self.record(topic, key, value, **kwargs))


def event(event_type: str, event_id: str, ts_ms: int = T0, **fields: Any) -> dict[str, Any]:
    """An input event."""
    return envelope(event_type, event_id, ts_ms, **fields)


def created(order_id: str, event_id: str | None = None, ts_ms: int = T0) -> dict[str, Any]:
    """A valid `order_created` in `SHARD`."""
    return events.order_created(order_id, ts_ms, event_id=event_id, lat=LAT, lon=LON)


def online(courier_id: str, event_id: str | None = None, ts_ms: int = T0) -> dict[str, Any]:
    """A valid `courier_online` in `SHARD`."""
    return events.courier_online(courier_id, ts_ms, event_id=event_id, lat=LAT, lon=LON)


def fix(courier_id: str, ts_ms: int = T0, **fields: Any) -> dict[str, Any]:
    """One valid fix of a ping batch at (`LAT`, `LON`); `fields` add or override."""
    return events.fix(courier_id, ts_ms, **{"lat": LAT, "lon": LON, **fields})


def batch(event_id: str, fixes: list[Any], ts_ms: int = T0) -> dict[str, Any]:
    """A `courier_ping_batch`."""
    return events.ping_batch(event_id, ts_ms, fixes)
