"""Per-shard KPIs and the figures scraped from a worker's /metrics."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from console.kpis import kpis_view
from console.model import OpsModel
from console.worker_metrics import WorkerFigures, figures_from_metrics, histogram_quantile
from streams.metrics import Metrics
from streams.telemetry import PrometheusTelemetry
from tests.unit.console.events import (
    MIN,
    SHARD,
    T0,
    S,
    committed,
    created,
    feed,
    milestone,
    proposed,
)


def _delivered(model: OpsModel, order_id: str, placed_ms: int, minutes: float) -> None:
    feed(
        model,
        created(order_id, placed_ms, promise_ts_ms=placed_ms + 30 * MIN),
        committed(f"d-{order_id}", [order_id], "c1", placed_ms + S),
        milestone(
            "delivery_delivered", order_id, placed_ms + round(minutes * MIN), courier_id="c1"
        ),
    )


def test_the_on_time_rate_and_click_to_door_quantiles_come_from_delivered_orders() -> None:
    """Two of three delivered within their 30 min promise; p50/p90 of 20, 25, 40 minutes."""
    model = OpsModel()
    for i, minutes in enumerate([20, 25, 40]):
        _delivered(model, f"o{i}", T0 + i * MIN, minutes)
    (row,) = kpis_view(model, [])["shards"]
    assert (row["delivered"], row["on_time_rate"]) == (3, round(2 / 3, 4))
    assert (row["ctod_p50_min"], row["ctod_p90_min"]) == (25.0, 37.0)


def test_worker_figures_are_unknown_without_a_worker() -> None:
    """Without scraped workers the tick p99, lag and breaker ticks are None (n/a)."""
    model = OpsModel()
    feed(model, created("o1"), proposed("d1", ["o1"], "c1", T0))
    (row,) = kpis_view(model, [])["shards"]
    assert (row["tick_p99_s"], row["lag_s"], row["circuit_breaker_ticks"]) == (None, None, None)


def test_a_shard_shows_the_figures_of_the_worker_owning_its_partition() -> None:
    """The worker listing the shard's partition gives the shard its figures."""
    model = OpsModel()
    feed(model, created("o1"), proposed("d1", ["o1"], "c1", T0), partition=5)
    owner = WorkerFigures("http://w2", partitions=(4, 5), tick_p99_s=0.2, lag_s=1.5)
    other = WorkerFigures("http://w1", partitions=(0, 1), tick_p99_s=9.9, lag_s=99.0)
    (row,) = kpis_view(model, [other, owner])["shards"]
    assert (row["shard"], row["worker"], row["tick_p99_s"], row["lag_s"]) == (
        SHARD,
        "http://w2",
        0.2,
        1.5,
    )


def test_histogram_quantiles_interpolate_within_their_bucket() -> None:
    """As Prometheus: rank 99 of 100 in bucket (0.1, 0.5] holding 90..100 gives 0.46."""
    buckets = [(0.1, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.46)


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    """Observations above every bound put the quantile at the last finite bound."""
    assert histogram_quantile(0.99, [(1.0, 1.0), (math.inf, 10.0)]) == 1.0


def test_figures_read_the_workers_own_metric_names() -> None:
    """Ticks, breaker ticks, tick p99 and lag are read from what a worker exports."""
    metrics = Metrics()
    telemetry = PrometheusTelemetry(metrics)
    for _ in range(99):
        telemetry.tick("dr5r", 0.004, 1, breaker=False)
    telemetry.tick("dr5r", 0.7, 0, breaker=True)
    metrics.last_event_time.labels("order_events").set(1_000.0)
    text = generate_latest(metrics.registry).decode()
    figures = figures_from_metrics("http://w", text, {"shard_partitions": [3]}, 1_004_000)
    assert (figures.ticks, figures.circuit_breaker_ticks, figures.partitions) == (100, 1, (3,))
    assert figures.tick_p99_s is not None and 0.001 < figures.tick_p99_s <= 0.005
    assert figures.lag_s == 4.0
