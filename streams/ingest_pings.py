"""The ping hot path.

1. `pings`: a `courier_pings` record (one fix or a batch) → valid fixes, grouped by shard, one
   `courier_positions` record per shard; invalid fixes → `courier_pings_dlq`, one letter each.
2. `positions`: a `courier_positions` record → the partition's `PositionStore` in one write;
   couriers new to a shard → `courier_sightings` for the courier directory; the fixes → the
   partition's buffer of ping features (`streams.features_agent.FeatureFeed.on_pings`).

Work per record is vectorized; nothing is written per fix to a Faust table.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any, cast

import numpy as np
import orjson

from contracts.geo import encode_many
from contracts.pings import decode_pings, latest_per_courier
from contracts.positions import decode_position_batch, encode_position_batch
from contracts.schemas import SCHEMA_VERSION
from contracts.validation import EventRejected
from dispatch.live.sightings import SightingFilter
from streams.dead_letters import DeadLetter
from streams.kafka_config import aiokafka_kwargs
from streams.partitioning import partition_for_key
from streams.position_replay import replay_positions
from streams.runtime import Runtime, record_ts_ms

logger = logging.getLogger(__name__)

PINGS_TOPIC = "courier_pings"
POSITIONS_TOPIC = "courier_positions"
SIGHTINGS_TOPIC = "courier_sightings"


def register(rt: Runtime) -> None:
    """Attach the ping and position agents and the position rebuild hooks to `rt.app`."""
    app = rt.app
    settings = rt.settings
    sighting_partitions = rt.topics[SIGHTINGS_TOPIC].partitions
    sighting_filter = SightingFilter()
    bounds = rt.validator.time_bounds

    @app.agent(rt.topic(PINGS_TOPIC), name="pings")
    @rt.guarded("pings")
    async def pings(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            try:
                decoded = decode_pings(
                    message.value, record_ts_ms(message), bounds, settings.max_ping_batch
                )
            except EventRejected as exc:
                await rt.reject(message, exc)
                rt.processed(message)
                rt.observe("pings", PINGS_TOPIC, started, None)
                continue
            for reject in decoded.rejects:
                await rt.dead_letter(
                    DeadLetter(
                        source_topic=message.topic,
                        source_partition=message.partition,
                        source_offset=message.offset,
                        key=message.key,
                        value=orjson.dumps(reject.fix),
                        reason=reject.reason.value,
                        message=reject.message,
                        index=reject.index,
                    )
                )
            fixes = decoded.columns
            if len(fixes):
                shards = encode_many(fixes.lat, fixes.lon, settings.shard_precision)
                batch_ts_ms = int(fixes.ts_ms.max())
                for shard in np.unique(shards):
                    index = np.flatnonzero(shards == shard)
                    value = encode_position_batch(
                        str(shard), f"{decoded.event_id}:{shard}", batch_ts_ms, fixes.take(index)
                    )
                    await rt.send(POSITIONS_TOPIC, str(shard).encode(), value)
                rt.metrics.pings.inc(len(fixes))
            rt.processed(message)
            rt.observe(
                "pings", PINGS_TOPIC, started, int(fixes.ts_ms.max()) if len(fixes) else None
            )

    @app.agent(rt.topic(POSITIONS_TOPIC), name="positions")
    @rt.guarded("positions")
    async def positions(stream: Any) -> None:
        store = rt.positions
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            partition = message.partition
            store.open(partition)
            batch = decode_position_batch(message.value)
            shard, fixes = batch.shard, batch.fixes
            if batch.left:
                store.apply_left(partition, message.offset, shard, fixes)
                rt.metrics.couriers_tracked.set(len(store))
                rt.processed(message)
                rt.observe("positions", POSITIONS_TOPIC, started, None)
                continue
            store.apply(partition, message.offset, shard, fixes)
            if rt.features is not None:
                rt.features.on_pings(fixes, partition)
            holds = rt.engine.holds if rt.engine is not None else (lambda _s, _c: False)
            couriers = dict(sighting_filter.sightings(shard, latest_per_courier(fixes), holds))
            by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for courier_id, ts_ms in couriers.items():
                target = partition_for_key(courier_id.encode(), sighting_partitions)
                by_partition[target].append({"courier_id": courier_id, "ts_ms": ts_ms})
            for target, seen in sorted(by_partition.items()):
                await rt.send(
                    SIGHTINGS_TOPIC,
                    shard.encode(),
                    _sighting(shard, message.partition, message.offset, seen),
                    partition=target,
                )
            rt.metrics.positions_applied.inc(len(fixes))
            rt.metrics.couriers_tracked.set(len(store))
            rt.processed(message)
            rt.observe(
                "positions",
                POSITIONS_TOPIC,
                started,
                int(fixes.ts_ms.max()) if len(fixes) else None,
            )

    async def rebuild_positions(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        wanted = {tp.partition for tp in assigned if tp.topic == POSITIONS_TOPIC}
        if rt.features is not None:
            dropped = rt.features.keep_only(wanted)
            if dropped:
                logger.info("dropped %d buffered pings of partitions moved away", dropped)
        store = rt.positions
        for partition in store.partitions - wanted:
            store.close(partition)
        new = wanted - store.partitions
        if not new:
            return
        started = time.perf_counter()
        rt.health.positions_replaying = True
        try:
            for partition in new:
                store.open(partition)
            read = await replay_positions(
                store,
                POSITIONS_TOPIC,
                new,
                aiokafka_kwargs(settings),
                int(settings.position_replay_window_s * 1000),
            )
            store.flush_all()
        finally:
            rt.health.positions_replaying = False
        rt.metrics.position_replay_records.inc(read)
        rt.metrics.position_replay_seconds.observe(time.perf_counter() - started)
        rt.metrics.couriers_tracked.set(len(store))

    async def snapshot_positions(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        rt.positions.close_all()

    app.on_partitions_assigned.connect(cast(Any, rebuild_positions))
    app.on_before_shutdown.connect(cast(Any, snapshot_positions))


def _sighting(shard: str, partition: int, offset: int, couriers: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"sighting:{shard}:{partition}:{offset}:{couriers[0]['courier_id']}",
            "type": "courier_sighting",
            "v": SCHEMA_VERSION,
            "ts_ms": max(c["ts_ms"] for c in couriers),
            "shard": shard,
            "couriers": couriers,
        }
    )
