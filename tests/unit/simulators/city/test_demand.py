import dataclasses
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simulators.city.config import DemandConfig, lunch_rush
from simulators.city.demand import arrival_times_ms, expected_orders, rate_per_h


@given(st.floats(min_value=0.0, max_value=23.99))
def test_rate_is_highest_at_a_peak(hour: float) -> None:
    """No hour has a higher order rate than the larger of the two peaks."""
    demand = DemandConfig()
    top = max(
        rate_per_h(demand, demand.lunch_peak_local_h),
        rate_per_h(demand, demand.dinner_peak_local_h),
    )
    assert rate_per_h(demand, hour) <= top + 1e-9


def test_rate_has_lunch_and_dinner_peaks() -> None:
    """The rate at each peak exceeds the rate mid-afternoon and at night."""
    demand = DemandConfig()
    for low in (3.0, 15.75):
        assert rate_per_h(demand, demand.lunch_peak_local_h) > rate_per_h(demand, low)
        assert rate_per_h(demand, demand.dinner_peak_local_h) > rate_per_h(demand, low)


def test_arrivals_are_sorted_and_inside_the_window() -> None:
    """Arrival times are sorted and within [start, end)."""
    config = lunch_rush()
    times = arrival_times_ms(config, np.random.default_rng(1))
    assert times == sorted(times)
    assert config.start_ts_ms <= times[0] and times[-1] < config.scenario_end_ts_ms


def test_arrival_count_matches_the_rate_integral() -> None:
    """Over many seeds the mean order count is the rate's integral (within 4 standard errors)."""
    config = dataclasses.replace(lunch_rush(), duration_s=3_600.0)
    counts = [len(arrival_times_ms(config, np.random.default_rng(s))) for s in range(40)]
    expected = expected_orders(config)
    assert abs(np.mean(counts) - expected) < 4 * math.sqrt(expected / len(counts))


def test_arrivals_crowd_around_the_lunch_peak() -> None:
    """More orders arrive in the half hour around the peak than in the first half hour."""
    config = lunch_rush()
    times = np.array(arrival_times_ms(config, np.random.default_rng(2)))
    peak_ms = config.start_ts_ms + (config.demand.lunch_peak_local_h - 11.0) * 3_600_000
    near_peak = np.sum(np.abs(times - peak_ms) < 900_000)
    first = np.sum(times < config.start_ts_ms + 1_800_000)
    assert near_peak > first
