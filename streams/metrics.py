"""Prometheus metrics of a worker, in a registry we own (never the global default), base units."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

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


class Metrics:
    """Every metric the stream layer exports; one instance per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._process_collectors = False
        self._gc_started_s = 0.0
        r = self.registry
        self.events_consumed = Counter(
            "dispatchflow_events_consumed",
            "Records consumed, per topic.",
            ["topic"],
            registry=r,
        )
        self.events_produced = Counter(
            "dispatchflow_events_produced",
            "Records produced, per topic.",
            ["topic"],
            registry=r,
        )
        self.dead_letters = Counter(
            "dispatchflow_dead_letters",
            "Input records or ping fixes sent to a dead-letter topic, per source topic and reason.",
            ["topic", "reason"],
            registry=r,
        )
        self.trace_contexts_invalid = Counter(
            "dispatchflow_trace_contexts_invalid",
            "Input records whose traceparent header is not a W3C trace context (the header is"
            " ignored and the record handled as if it had none), per topic.",
            ["topic"],
            registry=r,
        )
        self.feature_events_late = Counter(
            "dispatchflow_feature_events_late",
            "Events older than a windowed feature's window when they reached it (they change"
            " none of its values), per feature and level.",
            ["feature", "level"],
            registry=r,
        )
        self.feature_pings = Counter(
            "dispatchflow_feature_pings",
            "Courier pings applied to the online courier and zone features.",
            registry=r,
        )
        self.feature_ping_flush_seconds = Histogram(
            "dispatchflow_feature_ping_flush_seconds",
            "Time to apply one partition's buffered pings to the online features.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.feature_updates_rejected = Counter(
            "dispatchflow_feature_updates_rejected",
            "Accepted events whose feature update was refused (logged with the reason), per"
            " event type.",
            ["type"],
            registry=r,
        )
        self.pings = Counter(
            "dispatchflow_pings",
            "Valid courier ping fixes ingested.",
            registry=r,
        )
        self.positions_applied = Counter(
            "dispatchflow_positions_applied",
            "Ping fixes applied to the position store (including ones older than the stored fix).",
            registry=r,
        )
        self.handoffs = Counter(
            "dispatchflow_courier_handoffs",
            "Couriers that crossed from one shard into another.",
            registry=r,
        )
        self.processing_seconds = Histogram(
            "dispatchflow_event_processing_seconds",
            "Time to process one consumed record, per agent.",
            ["agent"],
            buckets=_PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.last_event_time = Gauge(
            "dispatchflow_last_event_timestamp_seconds",
            "Event time of the newest record processed, per topic (heartbeat of the stage).",
            ["topic"],
            registry=r,
        )
        self.position_replay_records = Counter(
            "dispatchflow_position_replay_records",
            "courier_positions records re-read to rebuild positions after an assignment.",
            registry=r,
        )
        self.position_replay_seconds = Histogram(
            "dispatchflow_position_replay_seconds",
            "Time to rebuild positions of newly assigned partitions.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.internal_errors = Counter(
            "dispatchflow_internal_errors",
            "Records whose handling raised an unexpected error; each went to its dead-letter"
            " topic with reason internal_error and the worker went on, per topic.",
            ["topic"],
            registry=r,
        )
        self.suspect_records = Counter(
            "dispatchflow_suspect_records",
            "Records that were being handled when an earlier worker process died, by outcome:"
            " handled (under the strictest guard) or dead_lettered (unhandled after repeated"
            " deaths).",
            ["outcome"],
            registry=r,
        )
        self.agent_crashes = Counter(
            "dispatchflow_agent_crashes",
            "Agents that raised an unexpected error (the worker then stops).",
            ["agent"],
            registry=r,
        )
        self.tick_interval_seconds = Histogram(
            "dispatchflow_tick_interval_seconds",
            "Wall time between two processed ticks of the same shard (tick cadence).",
            buckets=(0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20, 60),
            registry=r,
        )
        self.rank_requests = Counter(
            "dispatchflow_rank_requests",
            "POST /rank requests by outcome: answered (200), bad_request (400, 413), not_owner"
            " (421), shed (503 with Retry-After: at the in-flight limit or past the deadline),"
            " unavailable (503: no ranking process or engine).",
            ["outcome"],
            registry=r,
        )
        self.rank_request_seconds = Histogram(
            "dispatchflow_rank_request_seconds",
            "Time from a POST /rank request's arrival to its answer, by outcome.",
            ["outcome"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.rank_in_flight = Gauge(
            "dispatchflow_rank_in_flight",
            "POST /rank requests admitted and not yet answered.",
            registry=r,
        )
        self.rank_shed = Counter(
            "dispatchflow_rank_shed",
            "POST /rank requests answered 503 with Retry-After, by reason: capacity (the"
            " in-flight limit was reached on arrival) or deadline (not ranked in time).",
            ["reason"],
            registry=r,
        )
        self.rank_view_build_seconds = Histogram(
            "dispatchflow_rank_view_build_seconds",
            "Time to rebuild one shard's ranking view (on the stream's event loop).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.gc_pause_seconds = Histogram(
            "dispatchflow_gc_pause_seconds",
            "Garbage-collector pauses of the worker process (its event loop stands still), by"
            " generation; exported once the process series are.",
            ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.couriers_tracked = Gauge(
            "dispatchflow_couriers_tracked",
            "Couriers with a position in the partitions this worker owns.",
            registry=r,
        )

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
