"""The rank server's counts: tallied where requests are answered, added to the worker's metrics."""

from __future__ import annotations

from streams.metrics import Metrics
from streams.rank_report import RankReport, RankTally, apply_report


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's value (0 when absent)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_drain_hands_over_what_came_since_the_last_one() -> None:
    """Answers noted before a drain are in it; the next drain starts from nothing."""
    tally = RankTally()
    tally.answered("answered", 0.002)
    tally.answered("shed", 0.001, shed="capacity")
    tally.asked("dr5r")
    first, second = tally.drain(), tally.drain()
    assert (first.requests, first.shed, first.asked) == (
        {"answered": 1, "shed": 1},
        {"capacity": 1},
        frozenset({"dr5r"}),
    )
    assert second == RankReport()


def test_a_report_adds_to_the_worker_s_request_and_shed_counters() -> None:
    """Counts by outcome and by shed reason are added to the documented counters."""
    metrics = Metrics()
    apply_report(RankReport(requests={"answered": 3, "shed": 2}, shed={"capacity": 2}), metrics)
    assert (
        sample(metrics, "dispatchflow_rank_requests_total", outcome="answered"),
        sample(metrics, "dispatchflow_rank_shed_total", reason="capacity"),
    ) == (3.0, 2.0)


def test_a_report_s_latencies_are_observed_in_seconds_by_outcome() -> None:
    """Each latency of the report is one observation of the histogram, under its outcome."""
    metrics = Metrics()
    apply_report(RankReport(seconds={"answered": [0.001, 0.003]}), metrics)
    assert (
        sample(metrics, "dispatchflow_rank_request_seconds_count", outcome="answered"),
        sample(metrics, "dispatchflow_rank_request_seconds_sum", outcome="answered"),
    ) == (2.0, 0.004)


def test_a_report_sets_the_in_flight_gauge() -> None:
    """The gauge shows the in-flight count of the latest report."""
    metrics = Metrics()
    apply_report(RankReport(in_flight=4), metrics)
    apply_report(RankReport(in_flight=1), metrics)
    assert sample(metrics, "dispatchflow_rank_in_flight") == 1.0
