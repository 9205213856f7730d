"""Courier status across shards.

* `courier_directory` (keyed by courier, on `courier_events` partitions): status, capacity,
  vehicle and current shard of every courier, from `courier_events` and `courier_sightings`.
  Changes are forwarded to the courier's shard on `courier_state_updates`; when a sighting puts a
  courier in another shard, the old shard is told it left, the new one that it arrived, and a
  `courier_handoff` event is published.
* `couriers` (keyed by courier, in the partition of the courier's shard): what the shard's tick
  needs besides positions.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import orjson

from contracts.geo import shard_of
from contracts.pings import PingColumns
from contracts.positions import encode_position_batch
from contracts.schemas import SCHEMA_VERSION
from contracts.validation import EventRejected, validate_schema
from dispatch.lifecycle import AlreadyApplied, CourierState, Source, apply_courier_event
from streams.runtime import Runtime, record_ts_ms

COURIER_EVENTS_TOPIC = "courier_events"
SIGHTINGS_TOPIC = "courier_sightings"
STATE_UPDATES_TOPIC = "courier_state_updates"
HANDOFFS_TOPIC = "courier_handoffs"
POSITIONS_TOPIC = "courier_positions"
DIRECTORY_TABLE = "courier_directory"
COURIERS_TABLE = "couriers"


def state_update(state: CourierState, shard: str, kind: str, ts_ms: int) -> bytes:
    """A `courier_state_update` record telling `shard` about `state`."""
    return orjson.dumps(
        {
            "event_id": f"state:{state.courier_id}:{shard}:{kind}:{ts_ms}:{state.status_ts_ms}",
            "type": "courier_state_update",
            "v": SCHEMA_VERSION,
            "ts_ms": ts_ms,
            "courier_id": state.courier_id,
            "shard": shard,
            "kind": kind,
            "status": state.status.value,
            "capacity": state.capacity,
            "vehicle": state.vehicle,
            "shift_end_ts_ms": state.shift_end_ts_ms,
            "status_ts_ms": state.status_ts_ms,
        }
    )


def left_tombstone(shard: str, courier_id: str, ts_ms: int) -> bytes:
    """A `courier_positions` tombstone: `courier_id` left `shard` at `ts_ms`."""
    nan = np.array([np.nan])
    columns = PingColumns(
        np.array([courier_id], dtype=object), nan, nan, np.array([ts_ms]), nan, nan, nan
    )
    return encode_position_batch(
        shard, f"left:{courier_id}:{shard}:{ts_ms}", ts_ms, columns, left=True
    )


def handoff(courier_id: str, from_shard: str | None, to_shard: str, ts_ms: int) -> bytes:
    """A `courier_handoff` output event."""
    return orjson.dumps(
        {
            "event_id": f"handoff:{courier_id}:{to_shard}:{ts_ms}",
            "type": "courier_handoff",
            "v": SCHEMA_VERSION,
            "ts_ms": ts_ms,
            "courier_id": courier_id,
            "from_shard": from_shard,
            "to_shard": to_shard,
        }
    )


def register(rt: Runtime) -> None:
    """Attach the courier directory, the shard courier table and their agents to `rt.app`."""
    app = rt.app
    partitions = rt.topics[COURIER_EVENTS_TOPIC].partitions
    directory = rt.table(
        DIRECTORY_TABLE, partitions, "Courier status and current shard by courier id."
    )
    couriers = rt.table(
        COURIERS_TABLE,
        partitions,
        "Courier status by courier id, in the partition of the courier's shard.",
    )

    async def tell_shards(
        old: CourierState | None, new: CourierState, ts_ms: int, kind: str
    ) -> None:
        if old is not None and old.shard is not None and old.shard != new.shard:
            await rt.send(
                STATE_UPDATES_TOPIC, old.shard.encode(), state_update(old, old.shard, "left", ts_ms)
            )
        if new.shard is not None:
            moved = old is None or old.shard != new.shard
            await rt.send(
                STATE_UPDATES_TOPIC,
                new.shard.encode(),
                state_update(new, new.shard, "arrived" if moved else kind, ts_ms),
            )
            if moved:
                await rt.send(
                    HANDOFFS_TOPIC,
                    new.courier_id.encode(),
                    handoff(new.courier_id, old.shard if old else None, new.shard, ts_ms),
                )
                rt.metrics.handoffs.inc()

    @app.agent(rt.topic(COURIER_EVENTS_TOPIC, SIGHTINGS_TOPIC), name="courier_directory")
    @rt.guarded("courier_directory")
    async def directory_agent(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            if message.topic == SIGHTINGS_TOPIC:
                sighting = validate_schema(
                    orjson.loads(message.value), frozenset(("courier_sighting",))
                )
                shard = str(sighting["shard"])
                for seen in sighting["couriers"]:
                    key = str(seen["courier_id"]).encode()
                    raw = directory.get(key)
                    if raw is None:
                        continue
                    old = CourierState.from_json(raw)
                    if old.shard != shard:
                        new = replace(old, shard=shard)
                        directory[key] = new.to_json()
                        await tell_shards(old, new, int(seen["ts_ms"]), "status")
                rt.observe("courier_directory", SIGHTINGS_TOPIC, started, int(sighting["ts_ms"]))
                continue
            try:
                courier_event = rt.validator.check(
                    message.topic, message.key, message.value, record_ts_ms(message)
                )
                key = str(courier_event["courier_id"]).encode()
                raw = directory.get(key)
                old_state = CourierState.from_json(raw) if raw else None
                position_shard = (
                    shard_of(
                        courier_event["lat"], courier_event["lon"], rt.settings.shard_precision
                    )
                    if "lat" in courier_event
                    else (old_state.shard if old_state else None)
                )
                source = Source(message.topic, message.partition, message.offset)
                new_state = apply_courier_event(old_state, courier_event, position_shard, source)
            except AlreadyApplied:
                rt.observe("courier_directory", message.topic, started, None)
                continue
            except EventRejected as exc:
                await rt.reject(message, exc)
                rt.observe("courier_directory", message.topic, started, None)
                continue
            directory[key] = new_state.to_json()
            await tell_shards(old_state, new_state, int(courier_event["ts_ms"]), "status")
            rt.observe("courier_directory", message.topic, started, int(courier_event["ts_ms"]))

    @app.agent(rt.topic(STATE_UPDATES_TOPIC), name="shard_couriers")
    @rt.guarded("shard_couriers")
    async def shard_couriers(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            update = validate_schema(
                orjson.loads(message.value), frozenset(("courier_state_update",))
            )
            key = str(update["courier_id"]).encode()
            if update["kind"] == "left":
                raw = couriers.get(key)
                if raw is not None and orjson.loads(raw)["shard"] == update["shard"]:
                    del couriers[key]
                shard = str(update["shard"])
                await rt.send(
                    POSITIONS_TOPIC,
                    shard.encode(),
                    left_tombstone(shard, str(update["courier_id"]), int(update["ts_ms"])),
                )
            else:
                couriers[key] = orjson.dumps(
                    {
                        k: update[k]
                        for k in (
                            "courier_id",
                            "shard",
                            "status",
                            "capacity",
                            "vehicle",
                            "shift_end_ts_ms",
                            "status_ts_ms",
                        )
                    }
                )
            rt.observe("shard_couriers", STATE_UPDATES_TOPIC, started, int(update["ts_ms"]))
