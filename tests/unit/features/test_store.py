from contracts.geo import encode as geohash_encode
from features.definitions import HOUR_MS, MINUTE_MS
from features.store import CITY, ENTITY, GLOBAL, MISSING, DegradationCounts, OnlineFeatureStore


def ping(eid: str, ts: int, courier: str, lat: float, lon: float) -> dict[str, object]:
    """A courier ping event."""
    return {
        "type": "courier_ping",
        "event_id": eid,
        "ts_ms": ts,
        "courier_id": courier,
        "lat": lat,
        "lon": lon,
        "speed_mps": 5.0,
    }


#: Where courier c1 pings first, and its zone.
HERE = (40.75, -73.99)
ZONE = geohash_encode(*HERE, 6)


def store_after_a_ping() -> tuple[OnlineFeatureStore, DegradationCounts]:
    """A store that counts its degradations, after courier c1's ping at HERE at time 0."""
    counts = DegradationCounts()
    store = OnlineFeatureStore({}, on_degrade=counts)
    store.apply(ping("e1", 0, "c1", *HERE))
    return store, counts


def test_fresh_zone_value_is_served_at_entity_level() -> None:
    """A value within its SLA is served from the zone itself, with no degradation."""
    store, counts = store_after_a_ping()
    r = store.read("zone_speed_1h", ZONE, 60_000)
    assert r.level == ENTITY
    assert counts.total() == 0


def test_stale_zone_value_degrades_to_city_and_is_counted() -> None:
    """Beyond the SLA the zone value is replaced by the fresher city prior."""
    store, counts = store_after_a_ping()
    store.apply(ping("e2", 20 * MINUTE_MS, "c2", 40.77, -73.96))  # same city, other zone
    assert geohash_encode(40.77, -73.96, 6) != ZONE
    r = store.read("zone_speed_1h", ZONE, 21 * MINUTE_MS)
    assert r.level == CITY
    assert counts.snapshot() == {("zone_speed_1h", CITY, "stale"): 1}


def test_everything_stale_degrades_to_global_then_missing() -> None:
    """With zone and city stale the global prior serves; with all stale the value is missing."""
    store, counts = store_after_a_ping()
    store.apply(ping("e2", 20 * MINUTE_MS, "c2", 51.5, -0.12))  # another city
    assert store.read("zone_speed_1h", ZONE, 21 * MINUTE_MS).level == GLOBAL
    late = store.read("zone_speed_1h", ZONE, 3 * HOUR_MS)
    assert late.level == MISSING
    assert late.values == {"observed_speed_mps": None}
    assert counts.total() == 2


def test_zone_supply_and_demand_are_the_zones_own_windowed_counts() -> None:
    """Couriers pinging in 10 minutes and orders of the hour; 0 once out of window, no prior."""
    store, counts = store_after_a_ping()
    store.apply(ping("e2", MINUTE_MS, "c2", *HERE))
    store.apply(ping("e3", 2 * MINUTE_MS, "c1", *HERE))
    store.apply(ping("e4", 2 * MINUTE_MS, "c3", 40.77, -73.96))  # same city, other zone
    for i in range(3):
        store.apply(
            {
                "type": "order_created",
                "event_id": f"o{i}",
                "ts_ms": 3 * MINUTE_MS,
                "order_id": f"o{i}",
                "merchant_id": "m1",
                "pickup_lat": 40.75,
                "pickup_lon": -73.99,
                "dropoff_lat": 40.76,
                "dropoff_lon": -73.98,
            }
        )
    assert store.zone_supply_demand(ZONE, 4 * MINUTE_MS) == (2.0, 3.0)
    assert store.zone_supply_demand(ZONE, 30 * MINUTE_MS) == (0.0, 3.0)
    assert store.zone_supply_demand(ZONE, 2 * HOUR_MS) == (0.0, 0.0)
    assert store.zone_supply_demand("dr5rsz", 4 * MINUTE_MS) == (0.0, 0.0)
    assert counts.total() == 0


def test_unknown_entity_degrades_as_missing() -> None:
    """A never-seen courier is served from the global prior and counted as missing."""
    store, counts = store_after_a_ping()
    r = store.read("courier_speed_30d", "nobody", 1_000)
    assert r.level == GLOBAL
    assert counts.snapshot() == {("courier_speed_30d", GLOBAL, "missing"): 1}


def test_an_event_older_than_a_window_is_reported_late_for_each_state_it_reaches() -> None:
    """A ping two hours older than the newest is late for the 1 h and 10 min zone windows.

    It is reported at every level of both; the 30-day courier speed still counts it.
    """
    late: list[tuple[str, str]] = []
    store = OnlineFeatureStore({}, on_late=lambda feature, level: late.append((feature, level)))
    store.apply(ping("e1", 3 * HOUR_MS, "c1", 40.75, -73.99))
    assert late == []
    store.apply(ping("e2", 1 * HOUR_MS, "c2", 40.75, -73.99))
    assert sorted(late) == sorted(
        (feature, level)
        for feature in ("zone_speed_1h", "zone_supply")
        for level in (ENTITY, CITY, GLOBAL)
    )
