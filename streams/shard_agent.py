"""The shard agent: every shard-keyed input of a partition, in order, through the shard engine.

One agent consumes order, merchant and delivery events, courier state updates, responses,
policy flags and ticks, so that the engine's table updates for a shard never interleave. It
only decodes, validates, calls `dispatch.live.engine.ShardEngine` and produces what the engine
returns; in live mode a timer (`ticker`) emits a tick per owned shard every `tick_interval_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import orjson

from contracts.schemas import SCHEMA_VERSION
from contracts.validation import EventRejected, validate_schema
from dispatch.lifecycle import OrderState, Source
from dispatch.live.engine import EngineConfig, ShardEngine, ShardStores, order_topic
from dispatch.live.eta import LegPredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
from dispatch.live.records import CourierRecord, DecisionRecord, ShardControl
from dispatch.policy import policy_by_name
from dispatchflow.settings import Settings
from streams.features_agent import FeatureFeed
from streams.runtime import Runtime, record_ts_ms
from streams.telemetry import PrometheusTelemetry

SHARD_TOPICS = (
    "order_events",
    "merchant_ready",
    "delivery_events",
    "assignment_responses",
    "dispatch_control",
    "dispatch_ticks",
    "courier_state_updates",
)
INTERNAL = {"dispatch_ticks": "dispatch_tick", "courier_state_updates": "courier_state_update"}
TICKS_TOPIC = "dispatch_ticks"


def engine_config(settings: Settings) -> EngineConfig:
    """The engine's tunables from the worker settings."""
    policy = policy_by_name(settings.policy).replace(reposition=False)
    return EngineConfig(
        tick_s=settings.tick_interval_s,
        tick_budget_s=settings.tick_budget_s,
        lease_s=settings.lease_s,
        cooldown_s=settings.cooldown_s,
        max_order_age_s=settings.max_order_age_s,
        orphan_ttl_s=settings.orphan_ttl_s,
        policy=policy,
    )


def tick_event(shard: str, now_ms: int) -> bytes:
    """A `dispatch_tick` record value."""
    return orjson.dumps(
        {
            "event_id": f"tick:{shard}:{now_ms}",
            "type": "dispatch_tick",
            "v": SCHEMA_VERSION,
            "ts_ms": now_ms,
            "shard": shard,
        }
    )


def register(
    rt: Runtime,
    predictor: LegPredictor,
    wall_clock_ms: Callable[[], int] | None = None,
    features: FeatureFeed | None = None,
) -> ShardEngine:
    """Attach the shard tables, the shard agent and the ticker; return the engine.

    With `features`, every accepted order, merchant and delivery event also updates the online
    feature store, in the same stream iteration; so do the events that were waiting for an order
    and are accepted when it is created.
    """
    app = rt.app
    partitions = rt.topics["order_events"].partitions
    stores = ShardStores(
        orders=KV(
            rt.table("orders", partitions, "Order lifecycle and dispatch state by order id."),
            OrderState.to_json,
            OrderState.from_json,
        ),
        couriers=KV(
            rt.table("couriers", partitions, "Couriers of each shard: status, route, lease."),
            CourierRecord.to_json,
            CourierRecord.from_json,
        ),
        decisions=KV(
            rt.table("decisions", partitions, "Proposals and their outcome by decision id."),
            DecisionRecord.to_json,
            DecisionRecord.from_json,
        ),
        controls=KV(
            rt.table("dispatch_controls", partitions, "Runtime policy flags by shard."),
            ShardControl.to_json,
            ShardControl.from_json,
        ),
        orphans=KV(
            rt.table("order_orphans", partitions, "Order events waiting for their order."),
            Orphans.to_json,
            Orphans.from_json,
        ),
    )
    engine = ShardEngine(
        stores,
        rt.positions,
        config=engine_config(rt.settings),
        predictor=predictor,
        telemetry=PrometheusTelemetry(rt.metrics),
        clock=time.perf_counter,
    )
    last_tick_s: dict[str, float] = {}

    def merchant_of(order_id: str) -> str | None:
        order = stores.orders.get(order_id)
        return None if order is None else order.merchant_id

    @app.agent(rt.topic(*SHARD_TOPICS), name="shard")
    @rt.guarded("shard")
    async def shard_agent(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            topic = message.topic
            source = Source(
                topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
                rt.trace_context(message),
            )
            if topic in INTERNAL:
                decoded = validate_schema(
                    orjson.loads(message.value), frozenset((INTERNAL[topic],))
                )
            else:
                try:
                    decoded = rt.validator.check(
                        topic, message.key, message.value, record_ts_ms(message)
                    )
                except EventRejected as exc:
                    await rt.reject(message, exc)
                    rt.processed(message)
                    rt.observe("shard", topic, started, None)
                    continue
            if order_topic(topic):
                effects = engine.on_order_event(decoded, source)
            elif topic == "assignment_responses":
                effects = engine.on_response(decoded, source)
            elif topic == "dispatch_control":
                effects = engine.on_control(decoded, source)
            elif topic == "courier_state_updates":
                effects = engine.on_courier_update(decoded)
            else:
                shard = str(decoded["shard"])
                previous = last_tick_s.get(shard)
                if previous is not None:
                    rt.metrics.tick_interval_seconds.observe(started - previous)
                last_tick_s[shard] = started
                effects = engine.on_tick(decoded)
                if features is not None:
                    features.flush_due(message.partition)
            if features is not None and effects.applied:  # once per event, valid ones only
                features.on_event(decoded, message.partition, merchant_of)
                for adopted in effects.adopted:
                    features.on_event(adopted, message.partition, merchant_of)
            await rt.apply(effects)
            rt.processed(message)
            rt.observe("shard", topic, started, int(decoded["ts_ms"]))

    if rt.settings.ticker_enabled:
        clock_ms = wall_clock_ms or (lambda: time.time_ns() // 1_000_000)

        @app.timer(interval=rt.settings.tick_interval_s)
        async def ticker() -> None:
            if not app.tables.actives_ready or app.rebalancing:
                return
            now_ms = clock_ms()
            for shard in engine.shards():
                await rt.send(TICKS_TOPIC, shard.encode(), tick_event(shard, now_ms))

    original = app._on_partitions_assigned

    async def on_assigned(assigned: Any, generation_id: int = 0) -> None:
        engine.reset(int(generation_id))
        # Streams resume from the committed offsets: what was handled before no longer counts.
        rt.forget_progress()
        await original(assigned, generation_id)

    app._on_partitions_assigned = cast(Any, on_assigned)  # type: ignore[method-assign]
    return engine
