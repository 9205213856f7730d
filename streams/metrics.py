"""Prometheus metrics of a worker, in a registry we own (never the global default), base units.

Metrics are declared on a class, one `counter`, `gauge` or `histogram` line each (its help,
labels and buckets), and made on an instance's registry by `make_declared`.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, overload

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

#: Every exported metric's name starts with this.
PREFIX = "dispatchflow_"

_PROCESSING_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    10,
)

_Kind = TypeVar("_Kind", Counter, Gauge, Histogram)


class Declared(Generic[_Kind]):
    """A metric declared as a class attribute; `make_declared` makes it on a registry.

    It is exported as `PREFIX + name`; `name` defaults to the attribute's own name.
    """

    def __init__(
        self,
        kind: type[_Kind],
        documentation: str,
        labels: Sequence[str],
        name: str | None,
        buckets: Sequence[float] | None = None,
    ) -> None:
        self.kind: type[_Kind] = kind
        self.documentation = documentation
        self.labels = tuple(labels)
        self.name = name
        self.buckets = buckets

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute
        if self.name is None:
            self.name = attribute

    @overload
    def __get__(self, instance: None, owner: type) -> Declared[_Kind]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> _Kind: ...
    def __get__(self, instance: object | None, owner: type) -> Declared[_Kind] | _Kind:
        """The declaration on the class; on an instance, only before `make_declared` ran."""
        if instance is None:
            return self
        msg = f"metric {self.attribute} is not made yet (make_declared)"
        raise AttributeError(msg)

    def make(self, registry: CollectorRegistry) -> _Kind:
        """This metric, registered on `registry`."""
        extra: dict[str, Any] = {} if self.buckets is None else {"buckets": self.buckets}
        return self.kind(
            f"{PREFIX}{self.name}", self.documentation, self.labels, registry=registry, **extra
        )


def counter(documentation: str, *labels: str, name: str | None = None) -> Declared[Counter]:
    """A counter declaration: help text and label names (exported name: see `Declared`)."""
    return Declared(Counter, documentation, labels, name)


def gauge(documentation: str, *labels: str, name: str | None = None) -> Declared[Gauge]:
    """A gauge declaration: help text and label names (exported name: see `Declared`)."""
    return Declared(Gauge, documentation, labels, name)


def histogram(
    documentation: str, *labels: str, buckets: Sequence[float], name: str | None = None
) -> Declared[Histogram]:
    """A histogram declaration: help text, label names and bucket bounds in base units."""
    return Declared(Histogram, documentation, labels, name, buckets)


def make_declared(owner: object, registry: CollectorRegistry) -> None:
    """Make every metric declared on `owner`'s class on `registry`, in declaration order."""
    for cls in reversed(type(owner).__mro__):
        for attribute, declared in vars(cls).items():
            if isinstance(declared, Declared):
                vars(owner)[attribute] = declared.make(registry)


class Metrics:
    """Every metric the stream layer exports; one instance per app."""

    events_consumed = counter("Records consumed, per topic.", "topic")
    events_produced = counter("Records produced, per topic.", "topic")
    dead_letters = counter(
        "Input records or ping fixes sent to a dead-letter topic, per source topic and reason.",
        "topic",
        "reason",
    )
    trace_contexts_invalid = counter(
        "Input records whose traceparent header is not a W3C trace context (the header is"
        " ignored and the record handled as if it had none), per topic.",
        "topic",
    )
    feature_events_late = counter(
        "Events older than a windowed feature's window when they reached it (they change"
        " none of its values), per feature and level.",
        "feature",
        "level",
    )
    feature_pings = counter("Courier pings applied to the online courier and zone features.")
    feature_ping_flush_seconds = histogram(
        "Time to apply one partition's buffered pings to the online features.",
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    feature_updates_rejected = counter(
        "Accepted events whose feature update was refused (logged with the reason), per"
        " event type.",
        "type",
    )
    pings = counter("Valid courier ping fixes ingested.")
    positions_applied = counter(
        "Ping fixes applied to the position store (including ones older than the stored fix)."
    )
    handoffs = counter(
        "Couriers that crossed from one shard into another.", name="courier_handoffs"
    )
    processing_seconds = histogram(
        "Time to process one consumed record, per agent.",
        "agent",
        buckets=_PROCESSING_BUCKETS_S,
        name="event_processing_seconds",
    )
    last_event_time = gauge(
        "Event time of the newest record processed, per topic (heartbeat of the stage).",
        "topic",
        name="last_event_timestamp_seconds",
    )
    position_replay_records = counter(
        "courier_positions records re-read to rebuild positions after an assignment."
    )
    position_replay_seconds = histogram(
        "Time to rebuild positions of newly assigned partitions.",
        buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
    )
    internal_errors = counter(
        "Records whose handling raised an unexpected error; each went to its dead-letter"
        " topic with reason internal_error and the worker went on, per topic.",
        "topic",
    )
    suspect_records = counter(
        "Records that were being handled when an earlier worker process died, by outcome:"
        " handled (under the strictest guard) or dead_lettered (unhandled after repeated"
        " deaths).",
        "outcome",
    )
    agent_crashes = counter(
        "Agents that raised an unexpected error (the worker then stops).", "agent"
    )
    tick_interval_seconds = histogram(
        "Wall time between two processed ticks of the same shard (tick cadence).",
        buckets=(0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20, 60),
    )
    rank_requests = counter(
        "POST /rank requests by outcome: answered (200), bad_request (400, 413), not_owner"
        " (421), shed (503 with Retry-After: at the in-flight limit or past the deadline),"
        " unavailable (503: no ranking process or engine).",
        "outcome",
    )
    rank_request_seconds = histogram(
        "Time from a POST /rank request's arrival to its answer, by outcome.",
        "outcome",
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
    rank_in_flight = gauge("POST /rank requests admitted and not yet answered.")
    rank_shed = counter(
        "POST /rank requests answered 503 with Retry-After, by reason: capacity (the"
        " in-flight limit was reached on arrival) or deadline (not ranked in time).",
        "reason",
    )
    rank_view_build_seconds = histogram(
        "Time to rebuild one shard's ranking view (on the stream's event loop).",
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
    )
    gc_pause_seconds = histogram(
        "Garbage-collector pauses of the worker process (its event loop stands still), by"
        " generation; exported once the process series are.",
        "generation",
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
    )
    couriers_tracked = gauge("Couriers with a position in the partitions this worker owns.")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._process_collectors = False
        self._gc_started_s = 0.0
        make_declared(self, self.registry)

    def add_process_collectors(self) -> None:
        """Export the worker process's own series on this registry (once per registry).

        `process_*` (CPU seconds, resident and virtual memory, open file descriptors, start
        time; read from /proc, so present on Linux), `python_info` (the interpreter) and every
        garbage-collector pause from now on (`dispatchflow_gc_pause_seconds`).
        """
        if self._process_collectors:
            return
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        gc.callbacks.append(self._on_gc)
        self._process_collectors = True

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """`gc.callbacks` hook: time each collection, from its start to its stop."""
        if phase == "start":
            self._gc_started_s = time.perf_counter()
            return
        pause_s = time.perf_counter() - self._gc_started_s
        self.gc_pause_seconds.labels(str(info["generation"])).observe(pause_s)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Quantile `q` of a cumulative histogram, interpolated in its bucket like Prometheus.

    `buckets` are (upper bound, cumulative count) pairs, `+Inf` included. A quantile in the
    `+Inf` bucket is the highest finite bound. None when the histogram is empty.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q}")
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower
