"""The worker core in one process, without Kafka: fast, deterministic replay of a run.

`InProcessDispatch` is a queue around `dispatch.live.worker.WorkerCore`, the very core the
stream worker's agents call: every input record is handled by `WorkerCore.handle`; records the
core writes to its internal topics (positions, sightings, courier state updates) are handled at
once, right after the record that caused them; outputs to external topics are returned. All
records go through one partition. It implements the city simulator's `Dispatch`. Its online
features live in a dict and apply pings when they are read (ticks, a new order's features),
not on a wall-clock cadence, and ticks are not timed (no circuit breaker: a slow machine does
not turn a tick greedy), so a replay is deterministic; models come from a registry
(`models.registry.ModelRegistry`) when given one.
"""

from __future__ import annotations

import tempfile
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from contracts.rejections import EventRejected
from contracts.topics import load_topics
from contracts.tracing import TRACEPARENT_HEADER
from contracts.validation import default_rules
from dispatch.lifecycle import CourierState, OrderState, Source
from dispatch.live.effects import Output
from dispatch.live.eta import LegPredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
from dispatch.live.positions import PositionStore
from dispatch.live.records import CourierRecord, DecisionRecord, ShardControl
from dispatch.live.staged import ModelSets
from dispatch.live.state import ShardStores
from dispatch.live.topic_names import INTERNAL_TOPICS
from dispatch.live.worker import Record, WorkerConfig, WorkerCore, WorkerStores
from dispatchflow.settings import Settings
from features.feed import FeatureFeed
from simulators.city.protocol import SimRecord

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
    """The worker core's telemetry kept as plain counters (what a worker exports as metrics)."""

    counts: Counter[str] = field(default_factory=Counter)
    tick_seconds: list[float] = field(default_factory=list)
    errors: dict[str, list[float]] = field(default_factory=dict)

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

    def ready_times(self, source: str, count: int) -> None:
        """Count ready times by source."""
        self.counts[f"ready:{source}"] += count

    def model_label(
        self, kind: str, role: str, version: str, abs_error_s: float, covered_p90: bool
    ) -> None:
        """Count a model's labelled prediction, its absolute error and coverage."""
        key = f"{kind}:{role}:{version}"
        self.counts[f"labels:{key}"] += 1
        self.counts[f"covered:{key}"] += int(covered_p90)
        self.errors.setdefault(key, []).append(abs_error_s)

    def pings(self, count: int) -> None:
        """Count valid fixes."""
        self.counts["pings"] += count

    def positions(self, applied: int, tracked: int) -> None:
        """Count fixes applied to the position store."""
        self.counts["positions_applied"] += applied

    def handoffs(self, count: int) -> None:
        """Count couriers that changed shard."""
        self.counts["handoffs"] += count

    def tick_interval(self, seconds: float) -> None:
        """Ignore tick intervals (wall time means nothing in a replay)."""

    def internal_error(self, topic: str) -> None:
        """Count a record dead-lettered for an unexpected error."""
        self.counts[f"internal_error:{topic}"] += 1

    def trace_context_invalid(self, topic: str) -> None:
        """Count a malformed trace context header."""
        self.counts[f"trace_context_invalid:{topic}"] += 1

    def event_time(self, topic: str, ts_ms: int) -> None:
        """Ignore event-time heartbeats."""


def memory_stores() -> WorkerStores:
    """Worker state in plain dicts (what a worker keeps in changelogged tables)."""

    def kv(encode: Any, decode: Any) -> KV[Any]:
        return KV({}, encode, decode)

    return WorkerStores(
        shard=ShardStores(
            orders=kv(OrderState.to_json, OrderState.from_json),
            couriers=kv(CourierRecord.to_json, CourierRecord.from_json),
            decisions=kv(DecisionRecord.to_json, DecisionRecord.from_json),
            controls=kv(ShardControl.to_json, ShardControl.from_json),
            orphans=kv(Orphans.to_json, Orphans.from_json),
        ),
        directory=kv(CourierState.to_json, CourierState.from_json),
    )


class InProcessDispatch:
    """A whole worker's handling of records, synchronously, in one process and one partition."""

    def __init__(
        self,
        config: WorkerConfig | None = None,
        predictor: LegPredictor | None = None,
        workdir: Path | None = None,
        models: ModelSets | None = None,
        features: FeatureFeed | None = None,
    ) -> None:
        topics = load_topics()
        self._tmp = tempfile.TemporaryDirectory(prefix="inprocess-") if workdir is None else None
        root = Path(self._tmp.name) if self._tmp is not None else workdir
        assert root is not None  # noqa: S101 - set just above
        self.positions = PositionStore(root / "positions", flush_interval_s=3600.0)
        self.positions.open(_PARTITION)
        self.stores = memory_stores()
        self.telemetry = CountingTelemetry()
        self.features = features if features is not None else FeatureFeed({}, ping_flush_s=None)
        self.core = WorkerCore(
            config or WorkerConfig(),
            self.stores,
            self.positions,
            default_rules({t.name: t.value_schemas for t in topics.inputs()}),
            predictor=predictor,
            features=self.features,
            telemetry=self.telemetry,
            clock=None,  # no circuit breaker: the same records make the same decisions
            models=models,
        )
        self.engine = self.core.engine
        self.dead_letters: list[tuple[Source, EventRejected]] = []
        self._offsets: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        predictor: LegPredictor | None = None,
        models: ModelSets | None = None,
        features: FeatureFeed | None = None,
    ) -> InProcessDispatch:
        """A driver configured exactly like a worker with `settings`."""
        partitions = load_topics()["courier_sightings"].partitions
        config = WorkerConfig.from_settings(settings, partitions)
        return cls(config, predictor=predictor, models=models, features=features)

    def close(self) -> None:
        """Release the position store's files."""
        self.positions.close_all()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _record(self, item: _Queued) -> Record:
        offset = self._offsets[item.topic]
        self._offsets[item.topic] += 1
        headers = ((TRACEPARENT_HEADER, item.traceparent.encode()),) if item.traceparent else ()
        return Record(item.topic, _PARTITION, offset, item.key, item.value, item.ts_ms, headers)

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """Handle `inputs` and everything they cause; return the external outputs in order."""
        queue: deque[_Queued] = deque(
            _Queued(r.topic, r.key, orjson.dumps(r.event), r.ts_ms, r.traceparent) for r in inputs
        )
        produced: list[SimRecord] = []
        while queue:
            item = queue.popleft()
            effects = self.core.handle(self._record(item))
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


def _event_of(output: Output) -> dict[str, Any]:
    return output.event
