from typing import Any

from features.store import ENTITY
from streams.features_agent import FeatureFeed

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
