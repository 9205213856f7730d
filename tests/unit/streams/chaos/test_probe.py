"""The timeline's metric arithmetic: scrapes, restarts and the tick quantile."""

from __future__ import annotations

import math

from streams.chaos.probe import parse_metrics
from streams.metrics import histogram_quantile

BODY = """# HELP dispatchflow_tick_duration_seconds Time to decide one shard's tick.
dispatchflow_tick_duration_seconds_bucket{le="0.01"} 90.0
dispatchflow_tick_duration_seconds_bucket{le="0.1"} 99.0
dispatchflow_tick_duration_seconds_bucket{le="+Inf"} 100.0
dispatchflow_circuit_breaker_ticks_total 2.0
dispatchflow_events_consumed_total{topic="order_events"} 10.0
dispatchflow_events_consumed_total{topic="dispatch_ticks"} 5.0
dispatchflow_events_consumed_created{topic="order_events"} 1.7e+09
"""


def test_a_scrape_reads_the_tick_buckets_breaker_and_consumed_records() -> None:
    """Buckets in bound order, the breaker counter, consumed records summed over topics."""
    scrape = parse_metrics(BODY)
    assert scrape.buckets == ((0.01, 90.0), (0.1, 99.0), (math.inf, 100.0))
    assert (scrape.breaker, scrape.consumed) == (2.0, 15.0)


def test_the_p99_of_a_histogram_interpolates_within_its_bucket() -> None:
    """99 of 100 ticks at most 0.1 s: p99 is the bucket's upper bound."""
    assert histogram_quantile(0.99, parse_metrics(BODY).buckets) == 0.1


def test_a_quantile_in_the_overflow_bucket_is_the_largest_bound() -> None:
    """The p100 of ticks beyond the last finite bound reports that bound."""
    assert histogram_quantile(1.0, parse_metrics(BODY).buckets) == 0.1


def test_an_empty_histogram_has_no_quantile() -> None:
    """No tick, no p99."""
    assert histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]) is None
