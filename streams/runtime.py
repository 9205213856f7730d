"""What every agent of one worker shares: settings, topics, metrics, health, the core, sinks.

The agents in `streams.agents` are all the same loop (`Runtime.consume`): turn a Faust message
into a `dispatch.live.worker.Record`, let the worker core handle it, carry out its effects
(produce its outputs, dead-letter its rejections) and count. The core never raises for a bad
record; what escapes is an error that makes the worker's state or its broker unusable, and it
stops the worker (`guarded`). The in-flight log (`streams.inflight`) makes sure a record that was
being handled when a worker died cannot stop it twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import orjson
from aiokafka.errors import MessageSizeTooLargeError

from contracts.dead_letters import DeadLetter, DeadLetterLimits, encode_fix
from contracts.rejections import EventRejected, PartRejected, RejectReason
from contracts.topics import TopicsFile
from dispatch.lifecycle import Source
from dispatch.live.effects import Effects
from dispatch.live.topic_names import (
    ASSIGNMENT_COMMITTED,
    ASSIGNMENT_PROPOSED,
    ASSIGNMENT_RELEASED,
    COURIER_HANDOFFS,
)
from dispatch.live.worker import Record, WorkerCore
from dispatchflow.settings import Settings
from streams.health import Health
from streams.inflight import MAX_ATTEMPTS, InFlightLog
from streams.metrics import Metrics
from streams.stall import SESSION_LOST_EXIT_STATUS, StallWatch

logger = logging.getLogger(__name__)

AgentFun = Callable[[Any], Awaitable[None]]
#: The worker's agents, each with its slot in the in-flight log.
AGENTS = ("shard", "pings", "positions", "courier_directory")

#: Outputs that tell the world about a decision: they are sent only once the state writes of the
#: same record (table changelogs) are delivered, so that a worker taking over the shard after a
#: crash or a stop knows every decision anyone may answer or act upon.
DECISION_TOPICS = frozenset(
    {ASSIGNMENT_PROPOSED, ASSIGNMENT_COMMITTED, ASSIGNMENT_RELEASED, COURIER_HANDOFFS}
)


def record_ts_ms(message: Any) -> int | None:
    """The Kafka record timestamp of a Faust message in epoch ms (None if absent)."""
    ts = getattr(message, "timestamp", None)
    if ts is None or ts < 0:
        return None
    return round(float(ts) * 1000)


def record_of(message: Any) -> Record:
    """A Faust message as the worker core takes it."""
    raw = message.headers or ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    headers = tuple((str(k), bytes(v) if v is not None else b"") for k, v in items)
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        record_ts_ms(message),
        headers,
    )


@dataclass
class Runtime:
    """Shared services of one worker; built by `streams.app.create_app`."""

    app: faust.App
    settings: Settings
    topics: TopicsFile
    metrics: Metrics
    health: Health
    raw_topics: dict[str, faust.TopicT]
    inflight: InFlightLog
    stall_watch: StallWatch
    core: WorkerCore | None = None
    progress: dict[tuple[str, int], int] = field(default_factory=dict)
    produced: dict[tuple[str, int], int] = field(default_factory=dict)
    sends_in_flight: int = 0

    @classmethod
    def build(cls, app: faust.App, settings: Settings, topics: TopicsFile) -> Runtime:
        """Create the shared services for `app`."""
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
        runtime = cls(
            app=app,
            settings=settings,
            topics=topics,
            metrics=Metrics(),
            health=Health(),
            raw_topics=raw_topics,
            inflight=InFlightLog(settings.datadir / "inflight.bin", AGENTS),
            stall_watch=StallWatch(settings.session_timeout_s),
        )
        runtime.stall_watch.on_stall = runtime.session_lost
        return runtime

    @property
    def dead_letter_limits(self) -> DeadLetterLimits:
        """Sizes a dead letter is cut to."""
        return DeadLetterLimits(max_value_bytes=self.settings.dlq_max_value_bytes)

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

    # ------------------------------------------------------------------ producing
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
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

    async def dead_letter(self, source: Source, error: EventRejected) -> None:
        """Send `source`'s record (or its rejected part) to its dead-letter topic; count it."""
        value, encoding, index = source.value, None, None
        if isinstance(error, PartRejected):
            (value, encoding), index = encode_fix(error.part), error.index
        letter = DeadLetter(
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            key=source.key,
            value=value,
            reason=error.reason.value,
            message=error.message,
            exception=error.exception,
            index=index,
            headers=source.headers,
            value_encoding=encoding,
        )
        record = letter.record(self.dead_letter_limits)
        await self.send(
            record.topic,
            record.key,
            record.value,
            partition=record.partition,
            headers=record.headers,
        )
        self.metrics.dead_letters.labels(source.topic, error.reason.value).inc()

    async def apply(self, effects: Effects, record: Record) -> None:
        """Produce a handler's outputs and dead-letter its rejections, in order.

        An output too large for the producer (no valid input can cause one) is not sent: the
        record that caused it becomes an `internal_error` dead letter instead. Before the first
        output about a decision (`DECISION_TOPICS`) the producer is flushed, so the state the
        decision was written to is on the broker before anyone can see the decision.
        """
        if any(output.topic in DECISION_TOPICS for output in effects.outputs):
            await self.app.producer.flush()
        for output in effects.outputs:
            value = output.value if isinstance(output.value, bytes) else orjson.dumps(output.value)
            headers = [("traceparent", output.traceparent.encode())] if output.traceparent else None
            try:
                await self.send(
                    output.topic, output.key, value, partition=output.partition, headers=headers
                )
            except MessageSizeTooLargeError as exc:
                message = f"{output.topic} output of {len(value)} bytes is too large: {exc}"
                logger.error("record %s: %s", record.where, message)
                self.metrics.internal_errors.labels(record.topic).inc()
                error = EventRejected(
                    RejectReason.INTERNAL_ERROR, message, exception=type(exc).__name__
                )
                await self.dead_letter(record.source(), error)
        for source, error in effects.rejections:
            await self.dead_letter(source, error)

    # ------------------------------------------------------------------ consuming
    async def consume(self, agent: str, stream: Any) -> None:
        """The body of every agent: each record through the core, its effects carried out.

        A record is acknowledged (its offset may be committed) only once its effects are sent;
        an error escaping here stops the worker with the record unacknowledged, so it is read
        again after the restart, then as a suspect (`streams.inflight`).
        """
        core = self.core
        if core is None:
            msg = "the worker core is not built"
            raise RuntimeError(msg)
        inflight = self.inflight
        stall_watch = self.stall_watch
        stall_watch.start()
        # Acks are manual: Faust acks an event when the agent's body raises too, and the record
        # that stopped the worker would then be committed and skipped after a restart.
        manual = stream.noack()
        async for event in manual.events():
            stalled_s = stall_watch.stalled_s()
            if stalled_s is not None:
                self.session_lost(stalled_s)
            started = time.perf_counter()
            message = event.message
            record = record_of(message)
            suspect = inflight.suspect(record.topic, record.partition, record.offset)
            attempts = 0 if suspect is None else suspect.attempts + 1
            inflight.begin(agent, record.topic, record.partition, record.offset, attempts)
            if suspect is not None and suspect.attempts >= MAX_ATTEMPTS:
                await self._give_up(record, suspect.attempts)
            else:
                effects = core.handle(record, last_chance=suspect is not None)
                await self.apply(effects, record)
                if suspect is not None:
                    self.metrics.suspect_records.labels("handled").inc()
            if suspect is not None:
                inflight.forget(record.topic, record.partition, record.offset)
            inflight.done(agent)
            await manual.ack(event)
            self.processed(message)
            self.observe(agent, record.topic, started)

    def session_lost(self, stalled_s: float) -> None:
        """Exit now: the process was stopped past its session timeout (see `streams.stall`)."""
        logger.error(
            "session lost: the worker process was stopped for %.1f s, longer than the group "
            "session timeout (%.1f s), so another worker may own its partitions; exiting "
            "without handling or producing anything more (status %d), to rejoin when restarted",
            stalled_s,
            self.settings.session_timeout_s,
            SESSION_LOST_EXIT_STATUS,
        )
        logging.shutdown()
        os._exit(SESSION_LOST_EXIT_STATUS)

    async def _give_up(self, record: Record, attempts: int) -> None:
        """Dead-letter a record that was in flight at `attempts` deaths, without handling it."""
        message = f"the worker died {attempts} times while handling this record"
        logger.error("record %s dead-lettered unhandled: %s", record.where, message)
        self.metrics.suspect_records.labels("dead_lettered").inc()
        error = EventRejected(RejectReason.INTERNAL_ERROR, message, exception="WorkerDied")
        await self.dead_letter(record.source(), error)

    def guarded(self, name: str) -> Callable[[AgentFun], AgentFun]:
        """Wrap an agent so that an error escaping it marks the worker unhealthy and stops it."""

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

    def observe(self, agent: str, topic: str, started_s: float) -> None:
        """Count one processed record of `topic` by `agent` that started at `started_s`."""
        self.metrics.processing_seconds.labels(agent).observe(time.perf_counter() - started_s)
        self.metrics.events_consumed.labels(topic).inc()


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
