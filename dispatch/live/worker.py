"""The worker core: everything a worker does with one record of any topic it reads. No Kafka.

`WorkerCore.handle(record)` takes one record of an input topic (`order_events`,
`merchant_ready`, `delivery_events`, `assignment_responses`, `dispatch_control`,
`courier_events`, `courier_pings`) or of an internal one (`courier_positions`,
`courier_sightings`, `courier_state_updates`, `dispatch_ticks`) and returns its `Effects`:
records to produce and records to dead-letter. It owns ingress validation, the position store,
the courier directory, the sighting filter, the shard engine, the online features and the
recent event ids; the stream shell (`streams/`) and the in-process driver
(`simulators.inprocess`) only feed it records and carry out its effects, so both run exactly
the same code. With the online features and a model registry (`models`), a new order keeps its
features at placement and ticks read live features (`live_inputs`) for the staged ETA, travel
legs and priced declines (`dispatch.live.staged`).

Every record is handled under a last-resort guard. A record that breaks a rule is rejected
with its reason; an unexpected exception while handling one record makes it a dead letter
with reason `internal_error` (the exception's type and message in its headers), is counted and
logged once, and the worker goes on. Only errors that mean the worker's own state is unusable
(`StateError`: a state store that cannot be read or written; `MemoryError`) escape, so that the
worker stops loudly. With `last_chance=True` (a record that was being handled when the worker
died before) even those become an `internal_error` dead letter, so no record stops a worker
twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from contracts.geo import encode_many
from contracts.limits import DecodeLimits, bounded_loads, check_record_size
from contracts.partitioning import partition_for_key
from contracts.pings import decode_pings, latest_per_courier
from contracts.positions import PositionBatchError, decode_position_batch, encode_position_batch
from contracts.rejections import EventRejected, PartRejected, RejectReason
from contracts.tracing import TRACEPARENT_HEADER, valid_traceparent
from contracts.validation import Event, IngressValidator, TimeBounds, TopicRule, validate_schema
from dispatch.lifecycle import CourierState, Source
from dispatch.live.directory import CourierDirectory
from dispatch.live.effects import Effects, Output
from dispatch.live.engine import ShardEngine
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import LegPredictor
from dispatch.live.event_ids import EventIdIndex
from dispatch.live.kv import KV, StateError
from dispatch.live.outputs import sighting_event
from dispatch.live.positions import PositionStore
from dispatch.live.sightings import SightingFilter
from dispatch.live.staged import ModelSets, TickInputs, prep_model_of
from dispatch.live.state import ShardStores
from dispatch.live.telemetry import NullTelemetry, Telemetry
from dispatch.live.topic_names import (
    ASSIGNMENT_RESPONSES,
    COURIER_EVENTS,
    COURIER_HANDOFFS,
    COURIER_PINGS,
    COURIER_POSITIONS,
    COURIER_SIGHTINGS,
    COURIER_STATE_UPDATES,
    DISPATCH_CONTROL,
    DISPATCH_TICKS,
    INTERNAL_TYPES,
    ORDER_TOPICS,
)
from dispatch.policy import policy_by_name
from dispatchflow.settings import Settings
from features.feed import FeatureFeed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One record as the worker consumed it.

    `ts_ms` is the record's timestamp (epoch ms), or None when it has none; `headers` are its
    headers as they arrived.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    ts_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def where(self) -> str:
        """`topic:partition:offset`, the record's place."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def source(self, traceparent: str | None = None) -> Source:
        """The record as state machines and dead letters keep it (`traceparent`: validated)."""
        return Source(
            self.topic,
            self.partition,
            self.offset,
            self.key,
            self.value,
            traceparent,
            self.headers,
        )


class WorkerTelemetry(Telemetry, Protocol):
    """What the core reports beyond the engine's telemetry."""

    def pings(self, count: int) -> None:
        """`count` valid fixes were regrouped by shard."""

    def positions(self, applied: int, tracked: int) -> None:
        """`applied` fixes reached the position store, which now tracks `tracked` couriers."""

    def handoffs(self, count: int) -> None:
        """`count` couriers changed shard."""

    def tick_interval(self, seconds: float) -> None:
        """A shard ticked `seconds` after its previous tick (by the worker's clock)."""

    def internal_error(self, topic: str) -> None:
        """A record of `topic` raised an unexpected error and was dead-lettered."""

    def trace_context_invalid(self, topic: str) -> None:
        """A record of `topic` had a `traceparent` header that is not a W3C trace context."""

    def event_time(self, topic: str, ts_ms: int) -> None:
        """A record of `topic` carrying event time `ts_ms` was handled (the stage's heartbeat)."""


class NullWorkerTelemetry(NullTelemetry):
    """Telemetry that records nothing."""

    def pings(self, count: int) -> None:  # noqa: D102
        return

    def positions(self, applied: int, tracked: int) -> None:  # noqa: D102
        return

    def handoffs(self, count: int) -> None:  # noqa: D102
        return

    def tick_interval(self, seconds: float) -> None:  # noqa: D102
        return

    def internal_error(self, topic: str) -> None:  # noqa: D102
        return

    def trace_context_invalid(self, topic: str) -> None:  # noqa: D102
        return

    def event_time(self, topic: str, ts_ms: int) -> None:  # noqa: D102
        return


@dataclass(frozen=True)
class WorkerConfig:
    """Tunables of the worker core.

    Attributes:
        engine: the shard engine's tunables.
        shard_precision: geohash length of a shard.
        time_bounds: allowed skew of an input event's time against its record time.
        event_limits: bounds on records of the event topics (everything but pings).
        ping_limits: bounds on ping records and on the worker's internal records.
        max_ping_batch: most fixes in one ping batch.
        sighting_partitions: partitions of `courier_sightings` (sightings go to the partition
            of their courier).
        event_id_index_size: most recent event ids remembered per partition.
        event_id_window_ms: how long (event time) an event id is remembered.
    """

    engine: EngineConfig = field(default_factory=EngineConfig)
    shard_precision: int = 4
    time_bounds: TimeBounds = field(default_factory=lambda: TimeBounds(86_400_000, 300_000))
    event_limits: DecodeLimits = field(default_factory=DecodeLimits)
    ping_limits: DecodeLimits = field(
        default_factory=lambda: DecodeLimits(max_record_bytes=1_048_576, max_items=10_000)
    )
    max_ping_batch: int = 10_000
    sighting_partitions: int = 8
    event_id_index_size: int = 200_000
    event_id_window_ms: int = 3_600_000

    @classmethod
    def from_settings(cls, settings: Settings, sighting_partitions: int) -> WorkerConfig:
        """The core's tunables from a worker's settings."""
        policy = policy_by_name(settings.policy).replace(reposition=False)
        return cls(
            engine=EngineConfig(
                tick_s=settings.tick_interval_s,
                tick_budget_s=settings.tick_budget_s,
                lease_s=settings.lease_s,
                cooldown_s=settings.cooldown_s,
                max_order_age_s=settings.max_order_age_s,
                orphan_ttl_s=settings.orphan_ttl_s,
                policy=policy,
                rank_candidates=settings.rank_candidates,
                variant=settings.dispatch_variant,
            ),
            shard_precision=settings.shard_precision,
            time_bounds=TimeBounds(
                max_age_ms=int(settings.max_event_age_s * 1000),
                max_lead_ms=int(settings.max_event_lead_s * 1000),
            ),
            event_limits=DecodeLimits(max_record_bytes=settings.max_event_bytes),
            ping_limits=DecodeLimits(
                max_record_bytes=settings.max_ping_record_bytes,
                max_items=max(settings.max_ping_batch, 10_000),
            ),
            max_ping_batch=settings.max_ping_batch,
            sighting_partitions=sighting_partitions,
            event_id_index_size=settings.event_id_index_size,
            event_id_window_ms=int(settings.event_id_window_s * 1000),
        )


@dataclass
class WorkerStores:
    """The worker's changelogged state: the shard engine's tables and the courier directory."""

    shard: ShardStores
    directory: KV[CourierState]


Handler = Callable[[Record, Source], Effects]


class WorkerCore:
    """Every record of every topic a worker reads, one at a time; see the module docstring.

    `clock` times the ticks (the engine's circuit breaker, tick intervals); None for a replay,
    whose decisions must not depend on how fast the machine is (no breaker, no intervals).
    """

    def __init__(
        self,
        config: WorkerConfig,
        stores: WorkerStores,
        positions: PositionStore,
        rules: Mapping[str, TopicRule],
        *,
        predictor: LegPredictor | None = None,
        features: FeatureFeed | None = None,
        telemetry: WorkerTelemetry | None = None,
        clock: Callable[[], float] | None = time.perf_counter,
        models: ModelSets | None = None,
    ) -> None:
        self.config = config
        self.positions = positions
        self.features = features
        self.models = models
        self.telemetry: WorkerTelemetry = telemetry or NullWorkerTelemetry()
        self.clock = clock
        self.validator = IngressValidator(
            rules, config.time_bounds, config.shard_precision, config.event_limits
        )
        self.engine = ShardEngine(
            stores.shard,
            positions,
            config=config.engine,
            predictor=predictor,
            telemetry=self.telemetry,
            clock=clock,
            models=models,
            inputs=self.live_inputs,
        )
        self.directory = CourierDirectory(stores.directory, config.shard_precision)
        self.sighting_filter = SightingFilter()
        self._event_ids: dict[tuple[str, int], EventIdIndex] = {}
        self._warm: set[tuple[str, int]] = set()
        self._last_tick_s: dict[str, float] = {}
        self.handlers: dict[str, Handler] = {
            **dict.fromkeys(ORDER_TOPICS, self._on_order_event),
            ASSIGNMENT_RESPONSES: self._on_response,
            DISPATCH_CONTROL: self._on_control,
            COURIER_EVENTS: self._on_courier_event,
            COURIER_PINGS: self._on_pings,
            COURIER_POSITIONS: self._on_positions,
            COURIER_SIGHTINGS: self._on_sighting,
            COURIER_STATE_UPDATES: self._on_state_update,
            DISPATCH_TICKS: self._on_tick,
        }

    # ------------------------------------------------------------------ the guard
    def handle(self, record: Record, *, last_chance: bool = False) -> Effects:
        """The effects of one record; never raises but for `StateError` and `MemoryError`.

        With `last_chance`, those become an `internal_error` dead letter too.
        """
        source = self.source(record)
        handler = self.handlers.get(record.topic)
        try:
            if handler is None:
                msg = f"no handler for topic {record.topic!r}"
                raise LookupError(msg)
            return handler(record, source)
        except EventRejected as exc:
            effects = Effects()
            effects.reject(source, exc)
            return effects
        except (StateError, MemoryError) as exc:
            if not last_chance:
                raise
            return self._internal_error(record, source, exc)
        except Exception as exc:
            return self._internal_error(record, source, exc)

    def _internal_error(self, record: Record, source: Source, exc: BaseException) -> Effects:
        """Dead-letter `record` for an unexpected `exc`; count and log it once."""
        self.telemetry.internal_error(record.topic)
        logger.error(
            "internal error on %s[%d]@%d, dead-lettered: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            type(exc).__name__,
            exc,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        effects = Effects()
        message = f"{type(exc).__name__}: {exc}"
        error = EventRejected(RejectReason.INTERNAL_ERROR, message, exception=type(exc).__name__)
        effects.reject(source, error)
        return effects

    def source(self, record: Record) -> Source:
        """The record as the state machines remember it; its trace context validated."""
        raw = next((v for k, v in record.headers if k == TRACEPARENT_HEADER), None)
        trace = valid_traceparent(raw.decode("utf-8", "replace")) if raw is not None else None
        if raw is not None and trace is None:
            self.telemetry.trace_context_invalid(record.topic)
        return record.source(trace)

    def reset(self, generation: int) -> None:
        """Forget in-memory indices after a rebalance; adopt the new shard generation."""
        self.engine.reset(generation)
        self._event_ids.clear()
        self._warm.clear()

    # ------------------------------------------------------------------ event ids
    def _index(self, family: str, partition: int) -> EventIdIndex:
        key = (family, partition)
        index = self._event_ids.get(key)
        if index is None:
            index = self._event_ids[key] = EventIdIndex(
                self.config.event_id_index_size, self.config.event_id_window_ms
            )
        if key not in self._warm:
            self._warm.add(key)
            self._warm_up(family, partition, index)
        return index

    def _warm_up(self, family: str, partition: int, index: EventIdIndex) -> None:
        """Refill a partition's index from the state it restored: each record's own event ids."""
        if family == "shard":
            for _, order in self.engine.stores.orders.items():
                created = order.created_source
                if created is not None and created.partition == partition:
                    index.claim(order.created_event_id, _where(created), order.placed_ts_ms)
                for event in order.all_events:
                    if event.source is not None and event.source.partition == partition:
                        index.claim(event.event_id, _where(event.source), event.ts_ms)
        elif family == "courier":
            for _, courier in self.directory.directory.items():
                for event_id, where in courier.recent:
                    if where.split(":")[1:2] == [str(partition)]:
                        index.claim(event_id, where, courier.status_ts_ms)

    def _claim(self, family: str, record: Record, event: Event) -> None:
        """Raise `EventRejected(DUPLICATE_EVENT)` if another record recently carried the id."""
        event_id = str(event["event_id"])
        index = self._index(family, record.partition)
        if not index.claim(event_id, record.where, int(event["ts_ms"])):
            msg = f"event id {event_id!r} was used by another record"
            raise EventRejected(RejectReason.DUPLICATE_EVENT, msg)

    def _input(self, record: Record, family: str) -> Event:
        """Validate an input record and claim its event id."""
        event = self.validator.check(
            record.topic, record.key, record.value, record.ts_ms, record.headers
        )
        self._claim(family, record, event)
        self.telemetry.event_time(record.topic, int(event["ts_ms"]))
        return event

    def _internal(self, record: Record) -> Event:
        """Decode an internal JSON record within bounds and check it against its schema."""
        limits = self.config.ping_limits
        check_record_size(record.value, record.headers, limits)
        event = validate_schema(
            bounded_loads(record.value, limits), frozenset((INTERNAL_TYPES[record.topic],))
        )
        self.telemetry.event_time(record.topic, int(event["ts_ms"]))
        return event

    # ------------------------------------------------------------------ shard inputs
    def _merchant_of(self, order_id: str) -> str | None:
        order = self.engine.stores.orders.get(order_id)
        return None if order is None else order.merchant_id

    def _feed(self, effects: Effects, event: Event, partition: int) -> None:
        """Update the online features from an accepted event and the events it adopted."""
        if self.features is None or not effects.applied:
            return
        self.features.on_event(event, partition, self._merchant_of)
        for adopted in effects.adopted:
            self.features.on_event(adopted, partition, self._merchant_of)

    def _on_order_event(self, record: Record, source: Source) -> Effects:
        event = self._input(record, "shard")
        placement = None
        if self.features is not None and event["type"] == "order_created":
            placement = self.features.order_row(event, record.partition)
        effects = self.engine.on_order_event(event, source, placement)
        self._feed(effects, event, record.partition)
        return effects

    def live_inputs(self, partition: int | None, now_ms: int) -> TickInputs:
        """What a tick of `partition` reads beside its state: models and live features.

        Features are read from the partition's online store, each degraded entity → city →
        global when missing or stale; a courier's decline probability is its acceptance rate
        shrunk towards the marketplace's by `decline_prior_responses` answers.
        """
        config = self.config.engine
        served = prep_model_of(self.models, config)
        feed = self.features
        if feed is None or partition is None:
            return TickInputs(served, telemetry=self.telemetry)

        def value(feature: str, key: str, output: str) -> float:
            found = feed.read(partition, feature, key, now_ms).values[output]
            return math.nan if found is None else float(found)

        prior = feed.read_global(partition, "courier_acceptance_30d", now_ms).values
        base = 1.0 - (prior["acceptance_rate"] if prior["acceptance_rate"] is not None else 1.0)
        weight = config.decline_prior_responses

        def decline(courier_id: str) -> float:
            read = feed.read(partition, "courier_acceptance_30d", courier_id, now_ms)
            rate, answers = read.values["acceptance_rate"], read.values["responses"]
            if read.level != "entity" or rate is None or answers is None:
                return base
            return ((1.0 - rate) * answers + base * weight) / (answers + weight)

        return TickInputs(
            served,
            zone_speed_mps=lambda zone: value("zone_speed_1h", zone, "observed_speed_mps"),
            courier_speed_mps=lambda c: value("courier_speed_30d", c, "speed_mean_mps"),
            decline_prob=decline,
            zone_supply_demand=lambda zone: feed.zone_supply_demand(partition, zone, now_ms),
            telemetry=self.telemetry,
        )

    def _on_response(self, record: Record, source: Source) -> Effects:
        event = self._input(record, "shard")
        effects = self.engine.on_response(event, source)
        self._feed(effects, event, record.partition)
        return effects

    def _on_control(self, record: Record, source: Source) -> Effects:
        return self.engine.on_control(self._input(record, "shard"), source)

    def _on_state_update(self, record: Record, source: Source) -> Effects:
        return self.engine.on_courier_update(self._internal(record))

    def _on_tick(self, record: Record, source: Source) -> Effects:
        event = self._internal(record)
        shard = str(event["shard"])
        if self.clock is not None:
            now_s = self.clock()
            previous = self._last_tick_s.get(shard)
            if previous is not None:
                self.telemetry.tick_interval(now_s - previous)
            self._last_tick_s[shard] = now_s
        if self.features is not None:
            self.features.flush_due(record.partition)
        return self.engine.on_tick(event, source)

    # ------------------------------------------------------------------ couriers
    def _on_courier_event(self, record: Record, source: Source) -> Effects:
        event = self._input(record, "courier")
        return self._count_handoffs(self.directory.on_courier_event(event, source))

    def _on_sighting(self, record: Record, source: Source) -> Effects:
        return self._count_handoffs(self.directory.on_sighting(self._internal(record)))

    def _count_handoffs(self, effects: Effects) -> Effects:
        moved = sum(1 for o in effects.outputs if o.topic == COURIER_HANDOFFS)
        if moved:
            self.telemetry.handoffs(moved)
        return effects

    # ------------------------------------------------------------------ pings and positions
    def _on_pings(self, record: Record, source: Source) -> Effects:
        """Valid fixes regrouped by shard (one positions record each); bad fixes refused alone."""
        check_record_size(record.value, record.headers, self.config.ping_limits)
        decoded = decode_pings(
            record.value,
            record.ts_ms,
            self.validator.time_bounds,
            self.config.max_ping_batch,
            self.config.ping_limits,
        )
        effects = Effects()
        if decoded.event_id is not None and len(decoded.columns) + len(decoded.rejects):
            ts_ms = int(decoded.columns.ts_ms.max()) if len(decoded.columns) else 0
            self._claim("pings", record, {"event_id": decoded.event_id, "ts_ms": ts_ms})
        for reject in decoded.rejects:
            index = reject.index if reject.index is not None else 0
            effects.reject(source, PartRejected(reject.reason, reject.message, index, reject.fix))
        fixes = decoded.columns
        if not len(fixes):
            return effects
        shards = encode_many(fixes.lat, fixes.lon, self.config.shard_precision)
        batch_ts_ms = int(fixes.ts_ms.max())
        for shard in sorted(set(shards.tolist())):
            index_of = (shards == shard).nonzero()[0]
            value = encode_position_batch(
                str(shard), f"{decoded.event_id}:{shard}", batch_ts_ms, fixes.take(index_of)
            )
            effects.outputs.append(Output(COURIER_POSITIONS, str(shard).encode(), value))
        self.telemetry.pings(len(fixes))
        self.telemetry.event_time(record.topic, batch_ts_ms)
        return effects

    def _on_positions(self, record: Record, source: Source) -> Effects:
        """Apply a positions record; report couriers this shard does not hold as sightings."""
        effects = Effects()
        if record.value is None:
            return effects
        try:
            batch = decode_position_batch(record.value)
        except PositionBatchError as exc:
            raise EventRejected(RejectReason.UNDECODABLE, str(exc)) from exc
        store, partition = self.positions, record.partition
        store.open(partition)
        if batch.left:
            store.apply_left(partition, record.offset, batch.shard, batch.fixes)
            self.telemetry.positions(0, len(store))
            return effects
        store.apply(partition, record.offset, batch.shard, batch.fixes)
        if self.features is not None:
            self.features.on_pings(batch.fixes, partition)
        seen = self.sighting_filter.sightings(
            batch.shard, latest_per_courier(batch.fixes), self.engine.holds
        )
        by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for courier_id, ts_ms in seen:
            target = partition_for_key(courier_id.encode(), self.config.sighting_partitions)
            by_partition[target].append({"courier_id": courier_id, "ts_ms": ts_ms})
        for target, couriers in sorted(by_partition.items()):
            sighting = orjson.dumps(
                sighting_event(batch.shard, record.partition, record.offset, couriers)
            )
            effects.outputs.append(
                Output(COURIER_SIGHTINGS, batch.shard.encode(), sighting, partition=target)
            )
        self.telemetry.positions(len(batch.fixes), len(store))
        if len(batch.fixes):
            self.telemetry.event_time(record.topic, int(batch.fixes.ts_ms.max()))
        return effects


def _where(source: Source) -> str:
    return f"{source.topic}:{source.partition}:{source.offset}"
