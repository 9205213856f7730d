"""The worker's handlers in one process, without Kafka: fast, deterministic replay of a run.

`InProcessDispatch` runs every input record through exactly the code the stream worker runs —
ingress validation, ping decoding, the position store, the courier directory and the shard
engine — in one thread. Records the worker would send to its internal topics (positions,
sightings, courier state updates) are handled at once, right after the record that caused them;
outputs to external topics are returned. It implements the city simulator's `Dispatch`.
"""

from __future__ import annotations

import tempfile
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from contracts.pings import decode_pings, latest_per_courier, split_by_shard
from contracts.positions import decode_position_batch, encode_position_batch
from contracts.schemas import SCHEMA_VERSION
from contracts.tracing import valid_traceparent
from contracts.validation import EventRejected, IngressValidator, TimeBounds, default_rules
from dispatch.lifecycle import CourierState, OrderState, Source
from dispatch.live.directory import CourierDirectory
from dispatch.live.effects import Effects, Output
from dispatch.live.engine import EngineConfig, ShardEngine, ShardStores, order_topic
from dispatch.live.eta import LegPredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
from dispatch.live.positions import PositionStore
from dispatch.live.records import CourierRecord, DecisionRecord, ShardControl
from dispatch.live.sightings import SightingFilter
from dispatchflow.settings import Settings
from simulators.city.protocol import SimRecord
from streams.topics import load_topics

#: Topics whose records the worker sends to itself.
INTERNAL_TOPICS = frozenset(("courier_positions", "courier_sightings", "courier_state_updates"))
_PARTITION = 0


@dataclass(frozen=True)
class _Queued:
    """A record waiting to be handled: an input, or an internal output fed back in."""

    topic: str
    key: bytes | None
    value: bytes
    ts_ms: int
    traceparent: str | None


@dataclass
class CountingTelemetry:
    """Engine telemetry kept as plain counters (what the worker exports as metrics)."""

    counts: Counter[str] = field(default_factory=Counter)
    tick_seconds: list[float] = field(default_factory=list)

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:
        """Count a tick."""
        self.counts["ticks"] += 1
        self.counts["proposals"] += assignments
        self.counts["circuit_breaker_ticks"] += int(breaker)
        self.tick_seconds.append(duration_s)

    def released(self, reason: str) -> None:
        """Count a release by reason."""
        self.counts[f"released:{reason}"] += 1

    def committed(self) -> None:
        """Count a commit."""
        self.counts["commits"] += 1

    def stale_response(self) -> None:
        """Count a stale response."""
        self.counts["stale_responses"] += 1

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:
        """Count an ETA outcome."""
        self.counts["eta_labels"] += 1
        self.counts["eta_covered_p90"] += int(covered_p90)


def _kv(encode: Any, decode: Any) -> KV[Any]:
    return KV({}, encode, decode)


class InProcessDispatch:
    """A whole worker's handling of records, synchronously, for one process and one partition."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        predictor: LegPredictor | None = None,
        shard_precision: int = 4,
        workdir: Path | None = None,
        max_event_age_s: float = 86_400.0,
        max_event_lead_s: float = 300.0,
    ) -> None:
        topics = load_topics()
        self.validator = IngressValidator(
            default_rules({t.name: t.value_schemas for t in topics.inputs()}),
            TimeBounds(int(max_event_age_s * 1000), int(max_event_lead_s * 1000)),
            shard_precision,
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="inprocess-") if workdir is None else None
        root = Path(self._tmp.name) if self._tmp is not None else workdir
        assert root is not None  # noqa: S101 - set just above
        self.positions = PositionStore(root / "positions", flush_interval_s=3600.0)
        self.positions.open(_PARTITION)
        self.stores = ShardStores(
            orders=_kv(OrderState.to_json, OrderState.from_json),
            couriers=_kv(CourierRecord.to_json, CourierRecord.from_json),
            decisions=_kv(DecisionRecord.to_json, DecisionRecord.from_json),
            controls=_kv(ShardControl.to_json, ShardControl.from_json),
            orphans=_kv(Orphans.to_json, Orphans.from_json),
        )
        self.telemetry = CountingTelemetry()
        self.engine = ShardEngine(
            self.stores,
            self.positions,
            config=config,
            predictor=predictor,
            telemetry=self.telemetry,
        )
        self.directory = CourierDirectory(
            KV({}, CourierState.to_json, CourierState.from_json), shard_precision
        )
        self.shard_precision = shard_precision
        self.sighting_filter = SightingFilter()
        self.dead_letters: list[tuple[Source, EventRejected]] = []
        self._offsets: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Settings, predictor: LegPredictor | None = None
    ) -> InProcessDispatch:
        """A driver configured exactly like a worker with `settings`."""
        from streams.shard_agent import engine_config

        return cls(
            config=engine_config(settings),
            predictor=predictor,
            shard_precision=settings.shard_precision,
            max_event_age_s=settings.max_event_age_s,
            max_event_lead_s=settings.max_event_lead_s,
        )

    def close(self) -> None:
        """Release the position store's files."""
        self.positions.close_all()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _source(
        self, topic: str, key: bytes | None, value: bytes, traceparent: str | None
    ) -> Source:
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        # A malformed header is ignored, as the worker does.
        return Source(topic, _PARTITION, offset, key, value, valid_traceparent(traceparent))

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """Handle `inputs` and everything they cause; return the external outputs in order."""
        queue: deque[_Queued] = deque(
            _Queued(r.topic, r.key, orjson.dumps(r.event), r.ts_ms, r.traceparent) for r in inputs
        )
        produced: list[SimRecord] = []
        while queue:
            item = queue.popleft()
            effects = self._handle(item)
            self.dead_letters.extend(effects.rejections)
            internal: list[_Queued] = []
            for output in effects.outputs:
                raw = (
                    output.value if isinstance(output.value, bytes) else orjson.dumps(output.value)
                )
                if output.topic in INTERNAL_TOPICS:
                    internal.append(
                        _Queued(output.topic, output.key, raw, item.ts_ms, output.traceparent)
                    )
                else:
                    produced.append(
                        SimRecord(output.topic, output.key, _event_of(output), output.traceparent)
                    )
            queue.extendleft(reversed(internal))
        return produced

    def _handle(self, item: _Queued) -> Effects:
        topic, key, value, record_ts_ms = item.topic, item.key, item.value, item.ts_ms
        source = self._source(topic, key, value, item.traceparent)
        if topic == "courier_pings":
            return self._pings(source, record_ts_ms)
        if topic == "courier_positions":
            return self._positions(source)
        if topic == "courier_sightings":
            return self.directory.on_sighting(orjson.loads(value))
        if topic == "courier_state_updates":
            return self.engine.on_courier_update(orjson.loads(value))
        if topic == "dispatch_ticks":
            return self.engine.on_tick(orjson.loads(value))
        effects = Effects()
        try:
            event = self.validator.check(topic, key, value, record_ts_ms)
        except EventRejected as exc:
            effects.reject(source, exc)
            return effects
        if order_topic(topic):
            return self.engine.on_order_event(event, source)
        if topic == "courier_events":
            return self.directory.on_courier_event(event, source)
        if topic == "assignment_responses":
            return self.engine.on_response(event, source)
        if topic == "dispatch_control":
            return self.engine.on_control(event, source)
        msg = f"no handler for topic {topic!r}"
        raise ValueError(msg)

    def _pings(self, source: Source, record_ts_ms: int) -> Effects:
        effects = Effects()
        try:
            decoded = decode_pings(source.value, record_ts_ms, self.validator.time_bounds, 10_000)
        except EventRejected as exc:
            effects.reject(source, exc)
            return effects
        for reject in decoded.rejects:
            effects.reject(source, EventRejected(reject.reason, reject.message))
        for shard, fixes in split_by_shard(decoded.columns, self.shard_precision):
            batch_ts = int(fixes.ts_ms.max())
            value = encode_position_batch(shard, f"{decoded.event_id}:{shard}", batch_ts, fixes)
            effects.outputs.append(Output("courier_positions", shard.encode(), value))
        return effects

    def _positions(self, source: Source) -> Effects:
        effects = Effects()
        if source.value is None:
            return effects
        batch = decode_position_batch(source.value)
        if batch.left:
            self.positions.apply_left(_PARTITION, source.offset, batch.shard, batch.fixes)
            return effects
        self.positions.apply(_PARTITION, source.offset, batch.shard, batch.fixes)
        seen = self.sighting_filter.sightings(
            batch.shard, latest_per_courier(batch.fixes), self.engine.holds
        )
        if seen:
            sighting = {
                "event_id": f"sighting:{batch.shard}:{source.offset}",
                "type": "courier_sighting",
                "v": SCHEMA_VERSION,
                "ts_ms": max(ts for _, ts in seen),
                "shard": batch.shard,
                "couriers": [{"courier_id": c, "ts_ms": ts} for c, ts in seen],
            }
            effects.emit("courier_sightings", batch.shard, sighting)
        return effects


def _event_of(output: Output) -> dict[str, Any]:
    return output.event
