"""What every agent of one worker shares: settings, topics, metrics, health, stores, sinks."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import faust
import orjson

from contracts.tracing import TRACEPARENT_HEADER, valid_traceparent
from contracts.validation import EventRejected, IngressValidator, TimeBounds, default_rules
from dispatch.live.effects import Effects
from dispatch.live.engine import ShardEngine
from dispatch.live.positions import PositionStore
from dispatchflow.settings import Settings
from streams.dead_letters import DeadLetter, header_value
from streams.health import Health
from streams.metrics import Metrics
from streams.topics import TopicsFile

if TYPE_CHECKING:
    from streams.features_agent import FeatureFeed

logger = logging.getLogger(__name__)

AgentFun = Callable[[Any], Awaitable[None]]


def record_ts_ms(message: Any) -> int | None:
    """The Kafka record timestamp of a Faust message in epoch ms (None if absent)."""
    ts = getattr(message, "timestamp", None)
    if ts is None or ts < 0:
        return None
    return round(float(ts) * 1000)


@dataclass
class Runtime:
    """Shared services of one worker; built by `streams.app.create_app`."""

    app: faust.App
    settings: Settings
    topics: TopicsFile
    metrics: Metrics
    health: Health
    positions: PositionStore
    validator: IngressValidator
    raw_topics: dict[str, faust.TopicT]
    engine: ShardEngine | None = None
    features: FeatureFeed | None = None
    progress: dict[tuple[str, int], int] = field(default_factory=dict)
    produced: dict[tuple[str, int], int] = field(default_factory=dict)
    sends_in_flight: int = 0

    @classmethod
    def build(cls, app: faust.App, settings: Settings, topics: TopicsFile) -> Runtime:
        """Create the shared services for `app`."""
        rules = default_rules({t.name: t.value_schemas for t in topics.inputs()})
        validator = IngressValidator(
            rules,
            TimeBounds(
                max_age_ms=int(settings.max_event_age_s * 1000),
                max_lead_ms=int(settings.max_event_lead_s * 1000),
            ),
            settings.shard_precision,
        )
        raw_topics = {
            t.name: app.topic(
                t.name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=t.partitions,
                internal=False,
            )
            for t in topics.topics
            if not t.changelog_of and "__assignor" not in t.name
        }
        return cls(
            app=app,
            settings=settings,
            topics=topics,
            metrics=Metrics(),
            health=Health(),
            positions=PositionStore(settings.datadir / "positions"),
            validator=validator,
            raw_topics=raw_topics,
        )

    def topic(self, *names: str) -> faust.TopicT:
        """A raw-bytes Faust topic over one or several declared topics."""
        for name in names:
            self.topics[name]  # raises KeyError for undeclared topics
        if len(names) == 1:
            return self.raw_topics[names[0]]
        return self.app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def table(self, name: str, partitions: int, help_text: str) -> Any:
        """A changelogged RocksDB table with raw bytes keys and values."""
        return self.app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=partitions,
            help=help_text,
        )

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Produce one record to a declared topic (buffered; flushed before offsets commit)."""
        future = await self.raw_topics[topic].send(
            key=key, value=value, partition=partition, headers=headers
        )
        self.sends_in_flight += 1
        cast(asyncio.Future[Any], future).add_done_callback(self._delivered)
        self.metrics.events_produced.labels(topic).inc()

    def _delivered(self, future: Any) -> None:
        """Remember the end offset of each partition this worker wrote to."""
        self.sends_in_flight -= 1
        if future.cancelled() or future.exception() is not None:
            return
        metadata = future.result()
        key = (metadata.topic, metadata.partition)
        self.produced[key] = max(self.produced.get(key, 0), int(metadata.offset) + 1)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Send a dead letter to its topic (same partition as its source) and count it."""
        await self.send(
            letter.topic,
            letter.key,
            letter.value if letter.value is not None else b"",
            partition=letter.source_partition,
            headers=letter.headers(),
        )
        self.metrics.dead_letters.labels(letter.source_topic, letter.reason).inc()
        logger.debug(
            "dead letter from %s[%d]@%d: %s: %s",
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
            letter.reason,
            letter.message,
        )

    async def apply(self, effects: Effects) -> None:
        """Produce a handler's outputs and dead-letter its rejections, in order."""
        for output in effects.outputs:
            value = output.value if isinstance(output.value, bytes) else orjson.dumps(output.value)
            headers = (
                [(TRACEPARENT_HEADER, output.traceparent.encode())] if output.traceparent else None
            )
            await self.send(
                output.topic, output.key, value, partition=output.partition, headers=headers
            )
        for source, error in effects.rejections:
            await self.dead_letter(
                DeadLetter(
                    source_topic=source.topic,
                    source_partition=source.partition,
                    source_offset=source.offset,
                    key=source.key,
                    value=source.value,
                    reason=error.reason.value,
                    message=error.message,
                    exception=type(error).__name__,
                    traceparent=source.traceparent.encode() if source.traceparent else None,
                )
            )

    async def reject(self, message: Any, error: EventRejected) -> None:
        """Dead-letter a whole input record for `error` (its trace context header kept as is)."""
        raw = header_value(message.headers, TRACEPARENT_HEADER)
        await self.dead_letter(
            DeadLetter(
                source_topic=message.topic,
                source_partition=message.partition,
                source_offset=message.offset,
                key=message.key,
                value=message.value,
                reason=error.reason.value,
                message=error.message,
                exception=type(error).__name__,
                traceparent=raw.encode() if raw is not None else None,
            )
        )

    def trace_context(self, message: Any) -> str | None:
        """The record's `traceparent` header if it is a valid W3C trace context, else None.

        A malformed header is counted (`dispatchflow_trace_contexts_invalid_total`) and
        ignored: the record itself is still handled.
        """
        raw = header_value(message.headers, TRACEPARENT_HEADER)
        trace = valid_traceparent(raw)
        if raw is not None and trace is None:
            self.metrics.trace_contexts_invalid.labels(message.topic).inc()
        return trace

    def guarded(self, name: str) -> Callable[[AgentFun], AgentFun]:
        """Wrap an agent so that an unexpected error marks the worker unhealthy and stops it."""

        def decorate(fun: AgentFun) -> AgentFun:
            @functools.wraps(fun)
            async def agent(stream: Any) -> None:
                try:
                    await fun(stream)
                except Exception as exc:
                    self.health.agent_crashed(name, exc)
                    self.metrics.agent_crashes.labels(name).inc()
                    logger.exception("agent %s crashed; stopping the worker", name)
                    exit_hard_after(self.settings.crash_exit_timeout_s)
                    await self.app.crash(exc)
                    raise

            return agent

        return decorate

    def processed(self, message: Any) -> None:
        """Note that `message` was fully handled (its outputs are buffered for sending)."""
        self.progress[(message.topic, message.partition)] = int(message.offset) + 1

    def forget_progress(self) -> None:
        """Forget what was handled (a rebalance restarts every stream at its committed offset)."""
        self.progress.clear()

    def observe(self, agent: str, topic: str, started_s: float, event_ts_ms: int | None) -> None:
        """Count one processed record of `topic` by `agent` that started at `started_s`."""
        self.metrics.processing_seconds.labels(agent).observe(time.perf_counter() - started_s)
        self.metrics.events_consumed.labels(topic).inc()
        if event_ts_ms is not None:
            self.metrics.last_event_time.labels(topic).set(event_ts_ms / 1000)


#: Exit status of a worker whose graceful stop after a crash did not finish in time.
CRASH_EXIT_STATUS = 70


def exit_hard_after(timeout_s: float) -> None:
    """Ensure the process ends: unless it has exited after `timeout_s`, log and `os._exit(70)`.

    A crashed worker must leave, so that its supervisor (Kubernetes) restarts it; a graceful
    stop that hangs (a broker call that never answers) would keep a dead pod around. The timer
    runs on a daemon thread, so it fires even when the event loop is stuck.
    """

    def give_up() -> None:
        logger.critical("graceful stop did not finish in %.0f s after a crash; exiting", timeout_s)
        logging.shutdown()
        os._exit(CRASH_EXIT_STATUS)

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()


def tables_by_name(app: faust.App) -> Mapping[str, Any]:
    """The app's tables by name."""
    return {name: table for name, table in app.tables.items()}
