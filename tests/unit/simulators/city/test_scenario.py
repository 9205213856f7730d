import dataclasses

from contracts.geo import distance_m, shard_of
from simulators.city.config import lunch_rush
from simulators.city.scenario import build_scenario
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
