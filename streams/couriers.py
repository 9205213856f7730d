"""The courier directory agent: `courier_events` and `courier_sightings` (both keyed by courier).

It only decodes and validates, calls `dispatch.live.directory.CourierDirectory`, and produces
what it returns (courier state updates for the shards, handoff events).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from contracts.validation import EventRejected, validate_schema
from dispatch.lifecycle import CourierState, Source
from dispatch.live.directory import CourierDirectory
from dispatch.live.kv import KV
from streams.runtime import Runtime, record_ts_ms

COURIER_EVENTS_TOPIC = "courier_events"
SIGHTINGS_TOPIC = "courier_sightings"
DIRECTORY_TABLE = "courier_directory"


def register(rt: Runtime) -> CourierDirectory:
    """Attach the directory table and agent; return the directory handler."""
    app = rt.app
    partitions = rt.topics[COURIER_EVENTS_TOPIC].partitions
    table = rt.table(DIRECTORY_TABLE, partitions, "Courier status and current shard by courier.")
    directory = CourierDirectory(
        KV(table, CourierState.to_json, CourierState.from_json), rt.settings.shard_precision
    )

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
                effects = directory.on_sighting(sighting)
                ts_ms = int(sighting["ts_ms"])
            else:
                try:
                    courier_event = rt.validator.check(
                        message.topic, message.key, message.value, record_ts_ms(message)
                    )
                except EventRejected as exc:
                    await rt.reject(message, exc)
                    rt.processed(message)
                    rt.observe("courier_directory", message.topic, started, None)
                    continue
                source = Source(message.topic, message.partition, message.offset)
                effects = directory.on_courier_event(courier_event, source)
                ts_ms = int(courier_event["ts_ms"])
            await rt.apply(effects)
            rt.metrics.handoffs.inc(
                sum(1 for o in effects.outputs if o.topic == "courier_handoffs")
            )
            rt.processed(message)
            rt.observe("courier_directory", message.topic, started, ts_ms)

    return directory
