"""A chaos run's city: the overload scenario (extra orders in the burst window) and its drain."""

from __future__ import annotations

from simulators.city import PRESETS, lunch_rush
from simulators.city.scenario import Scenario, build_scenario
from streams.chaos.run import DRAIN_MAX_S, ChaosOptions, burst_scenario

CONFIG = lunch_rush(seed=4)
AT_S, LENGTH_S = 3600.0, 300.0


def _window(order_ids: set[str], scenario: Scenario) -> int:
    start = CONFIG.start_ts_ms + AT_S * 1000
    return sum(
        1
        for o in scenario.orders
        if o.order_id in order_ids and start <= o.placed_ts_ms < start + LENGTH_S * 1000
    )


def test_a_burst_adds_about_nine_times_the_window_s_orders() -> None:
    """With factor 10, the window holds 7-13 times as many extra orders as the city's own."""
    base = build_scenario(CONFIG)
    burst = burst_scenario(CONFIG, 10.0, AT_S, LENGTH_S)
    own = _window({o.order_id for o in base.orders}, base)
    extra = {o.order_id for o in burst.orders} - {o.order_id for o in base.orders}
    assert 7 * own <= _window(extra, burst) <= 13 * own


def test_burst_orders_lie_in_the_window_and_are_prefixed() -> None:
    """Every extra order is named burst-... and placed inside the window."""
    base_ids = {o.order_id for o in build_scenario(CONFIG).orders}
    extra = [
        o for o in burst_scenario(CONFIG, 10.0, AT_S, LENGTH_S).orders if o.order_id not in base_ids
    ]
    start = CONFIG.start_ts_ms + AT_S * 1000
    assert extra and all(o.order_id.startswith("burst-") for o in extra)
    assert all(start <= o.placed_ts_ms < start + LENGTH_S * 1000 for o in extra)


def test_a_burst_keeps_the_city_s_couriers() -> None:
    """The fleet is the city's: more orders, not more couriers."""
    assert burst_scenario(CONFIG, 10.0, AT_S, LENGTH_S).couriers == build_scenario(CONFIG).couriers


def test_factor_one_is_the_city_itself() -> None:
    """No burst: the scenario is the one the config draws."""
    assert burst_scenario(CONFIG, 1.0, AT_S, LENGTH_S) == build_scenario(CONFIG)


def test_a_chaos_city_drains_until_its_orders_end_for_up_to_two_hours() -> None:
    """The lunch rush's drain (an hour) is lengthened to DRAIN_MAX_S for a chaos run."""
    assert PRESETS["lunch_rush"](seed=2).drain_max_s < DRAIN_MAX_S
    assert ChaosOptions(seed=2).city().drain_max_s == DRAIN_MAX_S
