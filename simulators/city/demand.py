"""Time-of-day demand: the order rate with lunch and dinner peaks, and seeded arrival times."""

from __future__ import annotations

import math

import numpy as np

from simulators.city.config import CityConfig, DemandConfig


def _bump(hour: float, peak: float, width: float) -> float:
    # Circular distance in hours so a peak near midnight wraps around.
    d = (hour - peak + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (d / width) ** 2)


def rate_per_h(demand: DemandConfig, local_hour: float) -> float:
    """Orders per hour at a local hour of day (base plus lunch and dinner bumps)."""
    return (
        demand.base_orders_per_h
        + demand.lunch_peak_orders_per_h
        * _bump(local_hour, demand.lunch_peak_local_h, demand.lunch_width_h)
        + demand.dinner_peak_orders_per_h
        * _bump(local_hour, demand.dinner_peak_local_h, demand.dinner_width_h)
    )


def expected_orders(config: CityConfig, step_s: float = 30.0) -> float:
    """Expected number of orders placed during the scenario (the rate's integral)."""
    n = max(1, math.ceil(config.duration_s / step_s))
    dt_s = config.duration_s / n
    total = 0.0
    for i in range(n):
        ts_ms = config.start_ts_ms + (i + 0.5) * dt_s * 1000
        total += rate_per_h(config.demand, config.local_hour(ts_ms)) * dt_s / 3600
    return total


def arrival_times_ms(config: CityConfig, rng: np.random.Generator) -> list[int]:
    """Placement times of the scenario's orders: a non-homogeneous Poisson process (thinning).

    Returns sorted epoch-ms times in [start_ts_ms, scenario_end_ts_ms).
    """
    start = config.start_ts_ms
    duration_ms = config.scenario_end_ts_ms - start
    grid = np.linspace(start, start + duration_ms, 2 + math.ceil(config.duration_s / 60))
    peak = max(rate_per_h(config.demand, config.local_hour(float(t))) for t in grid) * 1.05
    if peak <= 0:
        return []
    n_candidates = int(rng.poisson(peak * config.duration_s / 3600))
    offsets = np.sort(rng.integers(0, duration_ms, size=n_candidates))
    keep = rng.random(n_candidates)
    times: list[int] = []
    for off, u in zip(offsets.tolist(), keep.tolist(), strict=True):
        ts_ms = start + int(off)
        if u * peak < rate_per_h(config.demand, config.local_hour(ts_ms)):
            times.append(ts_ms)
    return times
