from __future__ import annotations

from prometheus_client import generate_latest

from streams.bench_rank import bucket_delta, read_metrics
from streams.metrics import Metrics

INF = float("inf")


def test_bucket_delta_counts_the_observations_between_reads_and_their_longest_bucket() -> None:
    """Two reads of a cumulative histogram: what came between, and where the longest fell."""
    before = {0.01: 3.0, 0.05: 4.0, 0.1: 4.0, INF: 4.0}
    after = {0.01: 5.0, 0.05: 7.0, 0.1: 8.0, INF: 8.0}
    assert bucket_delta(before, after) == (4, 0.1)


def test_bucket_delta_reads_a_histogram_child_that_appeared_between_reads() -> None:
    """A labelled series first observed after the first read counts from zero."""
    assert bucket_delta({}, {0.01: 1.0, 0.05: 2.0, INF: 2.0}) == (2, 0.05)


def test_bucket_delta_has_no_longest_bucket_without_observations() -> None:
    """Nothing observed between the reads: a count of 0 and no bucket."""
    same = {0.01: 1.0, INF: 1.0}
    assert bucket_delta(same, same) == (0, None)


def test_read_metrics_reads_shed_requests_by_reason() -> None:
    """The worker's shed counter is read per reason (the bench splits its 503s with it)."""
    metrics = Metrics()
    metrics.rank_shed.labels("capacity").inc(3)
    metrics.rank_shed.labels("deadline").inc(2)
    assert read_metrics(generate_latest(metrics.registry))[3] == {"capacity": 3.0, "deadline": 2.0}
