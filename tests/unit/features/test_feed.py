from typing import Any

import numpy as np

from contracts.pings import PingColumns
from features.feed import FeatureFeed
from features.store import ENTITY
from tests.clocks import ManualClock

HOUR_MS = 3_600_000


def created(order_id: str, ts_ms: int, lat: float = 40.75) -> dict[str, Any]:
    """A validated `order_created` contract event."""
    return {
        "type": "order_created",
        "event_id": f"e-{order_id}",
        "ts_ms": ts_ms,
        "order_id": order_id,
        "merchant_id": "m1",
        "pickup": {"lat": lat, "lon": -73.99},
        "dropoff": {"lat": 40.76, "lon": -73.98},
    }


def test_an_order_older_than_the_open_order_horizon_is_reported_late() -> None:
    """An order created 7 h before the newest one is late for the merchant's waiting orders."""
    late: list[tuple[str, str]] = []
    feed = FeatureFeed({}, on_late=lambda feature, level: late.append((feature, level)))
    assert feed.on_event(created("o1", 10 * HOUR_MS), 0, lambda _: None)
    assert late == []
    feed.on_event(created("o2", 3 * HOUR_MS), 0, lambda _: None)
    assert ("merchant_orders_waiting", ENTITY) in late
    assert ("zone_demand_1h", ENTITY) in late


def test_a_refused_feature_update_is_reported_with_its_type() -> None:
    """An event the feature engine refuses is skipped and reported, not raised."""
    refused: list[str] = []
    feed = FeatureFeed({}, on_rejected=refused.append)
    assert not feed.on_event(created("o1", -5), 0, lambda _: None)
    assert refused == ["order_created"]


def fixes(ts_ms: list[int], courier: str = "c1") -> PingColumns:
    """Validated fixes of one courier at the given times, 4 m/s."""
    n = len(ts_ms)
    return PingColumns(
        np.array([courier] * n, dtype=object),
        np.full(n, 40.75),
        np.full(n, -73.99),
        np.array(ts_ms, dtype=np.int64),
        np.full(n, 4.0),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )


def zone_keys(table: dict[bytes, bytes], partition: int = 3) -> list[bytes]:
    """The zone-supply state keys of one partition in a feed's table."""
    return [k for k in table if k.startswith(f"p{partition}|f|zone_supply|".encode())]


def buffering_feed() -> tuple[FeatureFeed, dict[bytes, bytes], ManualClock]:
    """A feed that flushes a partition's pings every 30 s, its table and its clock."""
    table: dict[bytes, bytes] = {}
    clock = ManualClock()
    return FeatureFeed(table, ping_flush_s=30.0, clock=clock), table, clock


def test_pings_wait_in_the_buffer_until_the_flush_interval_has_passed() -> None:
    """Nothing is written before `ping_flush_s`; then every buffered ping is applied."""
    feed, table, clock = buffering_feed()
    assert feed.on_pings(fixes([0, 10_000]), 3) == 0
    clock.now_s += 29.0
    assert feed.on_pings(fixes([20_000]), 3) == 0
    assert table == {} and feed.buffered(3) == 3
    clock.now_s += 1.0
    assert feed.on_pings(fixes([25_000]), 3) == 4
    assert feed.buffered(3) == 0
    zone = feed.store(3).read("zone_supply", "dr5ru6", 25_000)
    assert zone.values == {"supply_couriers": 1.0}


def test_a_tick_flushes_a_quiet_partition_s_due_pings() -> None:
    """With no further pings, a flush check after the interval applies the buffer."""
    feed, table, clock = buffering_feed()
    feed.on_pings(fixes([0]), 3)
    clock.now_s += 20.0
    assert feed.flush_due(3) == 0
    clock.now_s += 11.0
    assert feed.flush_due(3) == 1
    assert zone_keys(table)


def test_a_full_buffer_is_flushed_before_the_interval() -> None:
    """The buffer never holds more than `max_buffered_pings` pings."""
    feed = FeatureFeed({}, ping_flush_s=3600.0, max_buffered_pings=5, clock=ManualClock())
    assert feed.on_pings(fixes([0, 1, 2]), 3) == 0
    assert feed.on_pings(fixes([3, 4]), 3) == 5
    assert feed.buffered(3) == 0


def test_without_a_flush_interval_every_batch_is_applied_at_once() -> None:
    """`ping_flush_s` 0 applies each batch as it arrives, and reports the flush."""
    flushed: list[int] = []
    feed = FeatureFeed({}, ping_flush_s=0.0, on_flush=lambda n, _s: flushed.append(n))
    feed.on_pings(fixes([0, 1]), 3)
    feed.on_pings(fixes([2], courier="c2"), 3)
    assert flushed == [2, 1]


def test_partitions_buffer_and_flush_separately() -> None:
    """A flush of one partition writes only its keys and leaves the other's buffer."""
    feed, table, clock = buffering_feed()
    feed.on_pings(fixes([0]), 3)
    clock.now_s += 10.0
    feed.on_pings(fixes([0]), 5)
    clock.now_s += 25.0
    assert feed.flush_due(3) == 1
    assert feed.flush_due(5) == 0
    assert zone_keys(table, 3) and not zone_keys(table, 5)
    assert feed.buffered(5) == 1


def test_pings_feed_zone_features_and_the_courier_s_speed() -> None:
    """Online, pings update zone supply and speed, and the courier's own speed and city."""
    table: dict[bytes, bytes] = {}
    feed = FeatureFeed(table, ping_flush_s=0.0)
    feed.on_pings(fixes([0, 1]), 3)
    assert feed.store(3).read("zone_speed_1h", "dr5ru6", 1).values == {"observed_speed_mps": 4.0}
    assert feed.read(3, "courier_speed_30d", "c1", 1).values == {"speed_mean_mps": 4.0}


def test_a_rebalance_drops_the_buffers_of_partitions_moved_away() -> None:
    """Pings of a partition this worker lost are dropped, not applied if it comes back later."""
    feed, table, _ = buffering_feed()
    feed.on_pings(fixes([0, 1]), 3)
    feed.on_pings(fixes([0]), 5)
    assert feed.keep_only({5}) == 2
    assert feed.buffered(3) == 0 and feed.buffered(5) == 1
    assert feed.flush(3) == 0
    assert not zone_keys(table, 3)
