import dataclasses

import numpy as np

from contracts.geo import distance_m, shard_of
from simulators.city.config import lunch_rush
from simulators.city.scenario import OrderPlan, build_scenario, kitchen_factor
from tests.unit.simulators.city.conftest import small_config


def test_same_seed_same_city() -> None:
    """Two scenarios drawn with one seed are equal."""
    assert build_scenario(small_config()) == build_scenario(small_config())


def test_another_seed_another_city() -> None:
    """A different seed draws different orders."""
    assert build_scenario(small_config()).orders != build_scenario(small_config(seed=12)).orders


def test_order_milestones_are_in_order() -> None:
    """Each order is placed, then accepted by the merchant, then ready; cancels come later."""
    for order in build_scenario(lunch_rush()).orders:
        assert order.placed_ts_ms < order.accepted_ts_ms < order.ready_ts_ms
        assert order.accepted_ts_ms <= order.estimated_ready_ts_ms
        assert order.cancel_ts_ms is None or order.cancel_ts_ms > order.placed_ts_ms


def test_promises_stay_in_the_configured_band() -> None:
    """Every promise is between promise_min_s and promise_max_s after placement."""
    config = lunch_rush()
    for order in build_scenario(config).orders:
        promise_s = (order.promise_ts_ms - order.placed_ts_ms) / 1000
        assert (
            config.demand.promise_min_s - 0.001 <= promise_s <= config.demand.promise_max_s + 0.001
        )


def test_orders_are_keyed_by_their_pickup_shard_and_stay_in_the_city() -> None:
    """An order's shard is its pickup's shard and its customer lives within the city."""
    config = lunch_rush()
    for order in build_scenario(config).orders:
        assert order.shard == shard_of(*order.pickup, config.shard_precision)
        assert (
            distance_m(*order.dropoff, config.center_lat, config.center_lon) <= config.radius_m + 1
        )


def test_shifts_start_within_the_scenario() -> None:
    """No courier comes online before the scenario starts, and every shift has a positive length."""
    config = lunch_rush()
    for courier in build_scenario(config).couriers:
        assert courier.shift_start_ts_ms >= config.start_ts_ms
        assert courier.shift_end_ts_ms > courier.shift_start_ts_ms


def test_lunch_rush_is_a_metro_area_of_one_or_two_shards() -> None:
    """The lunch-rush city spans one or two geohash-4 shards, holding every pickup."""
    scenario = build_scenario(lunch_rush())
    assert 1 <= len(scenario.shards) <= 2
    assert {o.shard for o in scenario.orders} <= set(scenario.shards)


def test_some_merchants_are_slow() -> None:
    """With slow merchants configured, some medians exceed the normal range."""
    config = lunch_rush()
    slow = [
        m
        for m in build_scenario(config).merchants
        if m.prep_median_s > config.merchants.prep_median_s_range[1]
    ]
    assert slow


def test_id_prefix_prefixes_every_id() -> None:
    """Orders, merchants and couriers carry the configured id prefix."""
    scenario = build_scenario(dataclasses.replace(small_config(), id_prefix="run7-"))
    ids = [o.order_id for o in scenario.orders] + [c.courier_id for c in scenario.couriers]
    ids += [m.merchant_id for m in scenario.merchants]
    assert all(i.startswith("run7-") for i in ids)


def test_a_merchant_s_tablet_bias_is_lognormal_with_the_configured_sigma() -> None:
    """Per-merchant tablet biases have a log standard deviation near `estimate_bias_sigma`."""
    config = dataclasses.replace(
        lunch_rush(), merchants=dataclasses.replace(lunch_rush().merchants, n_merchants=2_000)
    )
    biases = np.log([m.estimate_bias for m in build_scenario(config).merchants])
    assert abs(float(np.std(biases)) - config.merchants.estimate_bias_sigma) < 0.02


def test_every_estimate_of_a_merchant_carries_its_bias() -> None:
    """Estimates over usual times average out at the merchant's bias (per-order noise aside)."""
    scenario = build_scenario(lunch_rush())
    by_merchant = {m.merchant_id: m for m in scenario.merchants}
    ratios: dict[str, list[float]] = {}
    for order in scenario.orders:
        usual_s = (order.ready_ts_ms - order.placed_ts_ms) / 1000 / (1 + 0.1 * order.kitchen_queue)
        estimate_s = (order.estimated_ready_ts_ms - order.placed_ts_ms) / 1000
        if order.kitchen_queue < 10:
            ratios.setdefault(order.merchant_id, []).append(np.log(estimate_s / usual_s))
    busiest = max(ratios, key=lambda m: len(ratios[m]))
    assert len(ratios[busiest]) >= 15
    expected = np.log(by_merchant[busiest].estimate_bias)
    assert abs(float(np.mean(ratios[busiest])) - expected) < 0.15


def test_a_busy_kitchen_is_slower_and_the_tablet_ignores_it() -> None:
    """Orders placed while others are in preparation take longer; their estimates do not."""
    config = lunch_rush()
    unbiased = dataclasses.replace(config.merchants, estimate_bias_sigma=0.0)
    scenario = build_scenario(dataclasses.replace(config, merchants=unbiased))
    busy = [o for o in scenario.orders if o.kitchen_queue >= 2]
    idle = [o for o in scenario.orders if o.kitchen_queue == 0]
    assert busy and idle

    def underestimate(orders: list[OrderPlan]) -> float:
        """Mean log of prep time over estimated prep time."""
        return float(
            np.mean(
                [
                    np.log(
                        (o.ready_ts_ms - o.placed_ts_ms)
                        / (o.estimated_ready_ts_ms - o.placed_ts_ms)
                    )
                    for o in orders
                ]
            )
        )

    assert underestimate(busy) - underestimate(idle) > 0.15


def test_the_kitchen_queue_counts_orders_placed_earlier_and_not_ready() -> None:
    """An order's queue is the merchant's earlier orders not ready (nor cancelled) at placement."""
    scenario = build_scenario(lunch_rush())
    for order in scenario.orders[::7]:
        expected = sum(
            1
            for other in scenario.orders
            if other.merchant_id == order.merchant_id
            and other.placed_ts_ms < order.placed_ts_ms < other.ready_ts_ms
            and (other.cancel_ts_ms is None or other.cancel_ts_ms > order.placed_ts_ms)
        )
        assert order.kitchen_queue == expected


def test_kitchen_slowdown_stops_at_the_configured_maximum() -> None:
    """However long the queue, a kitchen is at most `kitchen_slowdown_max` times slower."""
    assert kitchen_factor(1_000, 0.1, 2.0) == 2.0


def test_couriers_have_personal_acceptance_offsets() -> None:
    """Acceptance offsets are centred normals with the configured standard deviation."""
    config = dataclasses.replace(
        lunch_rush(), fleet=dataclasses.replace(lunch_rush().fleet, n_couriers=3_000)
    )
    offsets = [c.accept_offset for c in build_scenario(config).couriers]
    assert abs(float(np.mean(offsets))) < 0.1
    assert abs(float(np.std(offsets)) - config.app.accept_offset_sd) < 0.05


def test_new_habits_leave_the_other_draws_alone() -> None:
    """Without biases, slowdowns or offsets the city is the one drawn before they existed."""
    config = lunch_rush()
    plain = dataclasses.replace(
        config,
        merchants=dataclasses.replace(
            config.merchants, estimate_bias_sigma=0.0, kitchen_slowdown_per_order=0.0
        ),
        app=dataclasses.replace(config.app, accept_offset_sd=0.0),
    )
    with_habits, without = build_scenario(config), build_scenario(plain)
    assert [o.placed_ts_ms for o in with_habits.orders] == [o.placed_ts_ms for o in without.orders]
    assert [c.home for c in with_habits.couriers] == [c.home for c in without.couriers]
