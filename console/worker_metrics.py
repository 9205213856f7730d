"""What the console takes from a worker's `/metrics` (Prometheus text) and `/readyz`.

Names as `streams.metrics` and `streams.telemetry` export them: the tick duration histogram
(`dispatchflow_tick_duration_seconds`), ticks and circuit-breaker ticks (counters) and the
event time of the newest record processed per topic
(`dispatchflow_last_event_timestamp_seconds`). The figures are the worker's since it started;
the worker's metrics carry no shard label, so a shard shows the figures of the worker that owns
its partition (`/readyz` lists them as `shard_partitions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.metrics import histogram_quantile

TICK_SECONDS = "dispatchflow_tick_duration_seconds"
TICKS = "dispatchflow_ticks"
BREAKER_TICKS = "dispatchflow_circuit_breaker_ticks"
LAST_EVENT = "dispatchflow_last_event_timestamp_seconds"


@dataclass(frozen=True)
class WorkerFigures:
    """One scrape of one worker.

    Attributes:
        url: the worker's base URL.
        error: why the scrape failed (None when it worked).
        partitions: shard partitions the worker owns (None when `/readyz` did not say).
        tick_p99_s: 99th percentile tick duration since start (None before any tick).
        ticks: ticks decided since start.
        circuit_breaker_ticks: ticks that fell back to the greedy policy since start.
        newest_event_ts_ms: newest event time the worker processed, over every topic.
        lag_s: event-time lag when scraped: the console's clock then (the newest event time
            the workers wrote) minus `newest_event_ts_ms`, at least 0.
    """

    url: str
    error: str | None = None
    partitions: tuple[int, ...] | None = None
    tick_p99_s: float | None = None
    ticks: float | None = None
    circuit_breaker_ticks: float | None = None
    newest_event_ts_ms: int | None = None
    lag_s: float | None = None


def figures_from_metrics(
    url: str, text: str, readiness: Mapping[str, Any] | None, clock_ms: int
) -> WorkerFigures:
    """The figures in a `/metrics` body (and the partitions in a `/readyz` body, if any).

    `clock_ms` is the console's clock at the scrape (0 while unknown: no lag then).
    """
    buckets: list[tuple[float, float]] = []
    counters: dict[str, float] = {}
    newest_s: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{TICK_SECONDS}_bucket":
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name in (f"{TICKS}_total", f"{BREAKER_TICKS}_total"):
                counters[sample.name.removesuffix("_total")] = float(sample.value)
            elif sample.name == LAST_EVENT and sample.value > 0:
                newest_s = max(newest_s or 0.0, float(sample.value))
    partitions = None
    if readiness is not None and "shard_partitions" in readiness:
        partitions = tuple(int(p) for p in readiness["shard_partitions"])
    newest_ms = None if newest_s is None else round(newest_s * 1000)
    lag_s = None
    if newest_ms is not None and clock_ms > 0:
        lag_s = max(0.0, (clock_ms - newest_ms) / 1000)
    return WorkerFigures(
        url=url,
        partitions=partitions,
        tick_p99_s=histogram_quantile(0.99, buckets) if buckets else None,
        ticks=counters.get(TICKS),
        circuit_breaker_ticks=counters.get(BREAKER_TICKS),
        newest_event_ts_ms=newest_ms,
        lag_s=lag_s,
    )
