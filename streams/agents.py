"""The worker's agents, tables, ticker and rebalance hooks around one `WorkerCore`.

Four agents read the topics; each is `Runtime.consume` (decode, call the core, apply its effects,
count), so a record is handled the same way whichever agent reads it:

* `shard`: every shard-keyed input of a partition (order, merchant, delivery events, responses,
  policy flags) and the internal ticks and courier state updates, in order, so that a shard's
  table updates never interleave;
* `pings`: `courier_pings` → valid fixes regrouped by shard into `courier_positions`;
* `positions`: `courier_positions` → the position store, the zone features and sightings;
* `courier_directory`: `courier_events` and `courier_sightings` (both keyed by courier).

In live mode a timer (`ticker`) emits a tick per owned shard every `tick_interval_s`. With a
model registry, another timer (`model_refresher`) re-reads it every `model_refresh_s` (in a
thread: loading a model reads files), so promotions and shadow candidates reach the core. After a
rebalance the core forgets its in-memory indices and takes the new shard generation, and the
positions of newly assigned partitions are rebuilt from their log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from contracts.validation import default_rules
from dispatch.lifecycle import CourierState, OrderState
from dispatch.live.eta import LegPredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
from dispatch.live.outputs import tick_event
from dispatch.live.positions import PositionStore
from dispatch.live.records import CourierRecord, DecisionRecord, ShardControl
from dispatch.live.state import ShardStores
from dispatch.live.topic_names import COURIER_EVENTS as COURIER_EVENTS_TOPIC
from dispatch.live.topic_names import COURIER_PINGS as PINGS_TOPIC
from dispatch.live.topic_names import COURIER_POSITIONS as POSITIONS_TOPIC
from dispatch.live.topic_names import COURIER_SIGHTINGS as SIGHTINGS_TOPIC
from dispatch.live.topic_names import COURIER_STATE_UPDATES as STATE_UPDATES_TOPIC
from dispatch.live.topic_names import DISPATCH_TICKS as TICKS_TOPIC
from dispatch.live.topic_names import SHARD_INPUTS
from dispatch.live.worker import WorkerConfig, WorkerCore, WorkerStores
from features.feed import FeatureFeed
from models.registry import ModelRegistry
from streams.kafka_config import aiokafka_kwargs
from streams.position_replay import replay_positions
from streams.runtime import Runtime
from streams.telemetry import PrometheusTelemetry

logger = logging.getLogger(__name__)

FEATURES_TABLE = "online_features"
#: Topics of each agent.
AGENT_TOPICS = {
    "shard": (*SHARD_INPUTS, TICKS_TOPIC, STATE_UPDATES_TOPIC),
    "pings": (PINGS_TOPIC,),
    "positions": (POSITIONS_TOPIC,),
    "courier_directory": (COURIER_EVENTS_TOPIC, SIGHTINGS_TOPIC),
}


def _stores(rt: Runtime) -> WorkerStores:
    """The worker's state over changelogged Faust tables."""
    shard_partitions = rt.topics["order_events"].partitions
    courier_partitions = rt.topics[COURIER_EVENTS_TOPIC].partitions

    def kv(name: str, help_text: str, encode: Any, decode: Any, partitions: int) -> KV[Any]:
        return KV(rt.table(name, partitions, help_text), encode, decode)

    return WorkerStores(
        shard=ShardStores(
            orders=kv(
                "orders",
                "Order lifecycle and dispatch state by order id.",
                OrderState.to_json,
                OrderState.from_json,
                shard_partitions,
            ),
            couriers=kv(
                "couriers",
                "Couriers of each shard: status, route, lease.",
                CourierRecord.to_json,
                CourierRecord.from_json,
                shard_partitions,
            ),
            decisions=kv(
                "decisions",
                "Proposals and their outcome by decision id.",
                DecisionRecord.to_json,
                DecisionRecord.from_json,
                shard_partitions,
            ),
            controls=kv(
                "dispatch_controls",
                "Runtime policy flags by shard.",
                ShardControl.to_json,
                ShardControl.from_json,
                shard_partitions,
            ),
            orphans=kv(
                "order_orphans",
                "Order events waiting for their order.",
                Orphans.to_json,
                Orphans.from_json,
                shard_partitions,
            ),
        ),
        directory=kv(
            "courier_directory",
            "Courier status and current shard by courier.",
            CourierState.to_json,
            CourierState.from_json,
            courier_partitions,
        ),
    )


def _features(rt: Runtime) -> FeatureFeed:
    """The online feature feed over its changelogged table."""
    table = rt.table(
        FEATURES_TABLE,
        rt.topics["order_events"].partitions,
        "Online feature state, keyed by partition and feature key.",
    )
    metrics = rt.metrics

    def flushed(pings: int, seconds: float) -> None:
        metrics.feature_pings.inc(pings)
        metrics.feature_ping_flush_seconds.observe(seconds)

    return FeatureFeed(
        table,
        on_late=lambda feature, level: metrics.feature_events_late.labels(feature, level).inc(),
        on_rejected=lambda kind: metrics.feature_updates_rejected.labels(kind).inc(),
        ping_flush_s=rt.settings.ping_features_flush_s,
        on_flush=flushed,
    )


def register(
    rt: Runtime,
    predictor: LegPredictor,
    wall_clock_ms: Callable[[], int] | None = None,
    models: ModelRegistry | None = None,
) -> WorkerCore:
    """Build the worker core over the tables; attach the agents, timers and hooks; return it."""
    settings = rt.settings
    rules_topics = {t.name: t.value_schemas for t in rt.topics.inputs()}
    telemetry = PrometheusTelemetry(rt.metrics)
    core = WorkerCore(
        WorkerConfig.from_settings(settings, rt.topics[SIGHTINGS_TOPIC].partitions),
        _stores(rt),
        PositionStore(settings.datadir / "positions"),
        default_rules(rules_topics),
        predictor=predictor,
        features=_features(rt),
        telemetry=telemetry,
        clock=time.perf_counter,
        models=models,
    )
    rt.core = core
    for name, topics in AGENT_TOPICS.items():
        _agent(rt, name, topics)
    if settings.ticker_enabled:
        _ticker(rt, core, wall_clock_ms or (lambda: time.time_ns() // 1_000_000))
    if models is not None:
        _model_refresher(rt, models, telemetry)
    _hooks(rt, core)
    return core


def _agent(rt: Runtime, name: str, topics: tuple[str, ...]) -> None:
    """One agent over `topics`: every record through `Runtime.consume`."""

    async def body(stream: Any) -> None:
        await rt.consume(name, stream)

    body.__name__ = body.__qualname__ = f"{name}_agent"
    rt.app.agent(rt.topic(*topics), name=name)(rt.guarded(name)(body))


def _ticker(rt: Runtime, core: WorkerCore, clock_ms: Callable[[], int]) -> None:
    app = rt.app

    @app.timer(interval=rt.settings.tick_interval_s)
    async def ticker() -> None:
        if not app.tables.actives_ready or app.rebalancing:
            return
        now_ms = clock_ms()
        for shard in core.engine.shards():
            await rt.send(TICKS_TOPIC, shard.encode(), tick_event(shard, now_ms))


def _loaded_versions(models: ModelRegistry) -> tuple[str | None, str | None]:
    served, candidate = models.current_set(), models.candidate_set()
    return (
        None if served is None else served.version,
        None if candidate is None else candidate.version,
    )


def _model_refresher(rt: Runtime, models: ModelRegistry, telemetry: PrometheusTelemetry) -> None:
    telemetry.model_sets(*_loaded_versions(models))

    @rt.app.timer(interval=rt.settings.model_refresh_s)
    async def model_refresher() -> None:
        await asyncio.get_running_loop().run_in_executor(None, models.refresh)
        telemetry.model_sets(*_loaded_versions(models))


def _hooks(rt: Runtime, core: WorkerCore) -> None:
    """Rebalance hooks: reset the core, rebuild positions; snapshot positions on shutdown."""
    app = rt.app
    original = app._on_partitions_assigned

    async def on_assigned(assigned: Any, generation_id: int = 0) -> None:
        core.reset(int(generation_id))
        # Streams resume from the committed offsets: what was handled before no longer counts.
        rt.forget_progress()
        await original(assigned, generation_id)

    app._on_partitions_assigned = cast(Any, on_assigned)  # type: ignore[method-assign]

    async def rebuild_positions(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned: set[Any] = args[0] if args else kwargs.get("assigned", set())
        wanted = {tp.partition for tp in assigned if tp.topic == POSITIONS_TOPIC}
        if core.features is not None:
            dropped = core.features.keep_only(wanted)
            if dropped:
                logger.info("dropped %d buffered pings of partitions moved away", dropped)
        store = core.positions
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
                aiokafka_kwargs(rt.settings),
                int(rt.settings.position_replay_window_s * 1000),
            )
            store.flush_all()
        finally:
            rt.health.positions_replaying = False
        rt.metrics.position_replay_records.inc(read)
        rt.metrics.position_replay_seconds.observe(time.perf_counter() - started)
        rt.metrics.couriers_tracked.set(len(store))

    async def on_shutdown(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        core.positions.close_all()
        # After a crash the slots stay: they name the record that was being handled.
        rt.inflight.close(clear=rt.health.alive)

    app.on_partitions_assigned.connect(cast(Any, rebuild_positions))
    app.on_before_shutdown.connect(cast(Any, on_shutdown))
