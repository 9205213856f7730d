import copy
import itertools
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.definitions import (
    FeatureDef,
    FeatureState,
    couriers_per_order,
    default_features,
    hour_of_week,
    supply_demand_ratio,
    surge_multiplier,
)
from features.synthetic import generate_event_log

EVENTS = generate_event_log(np.random.default_rng(3), n_orders=40, duration_ms=3_600_000)
END = EVENTS[-1]["ts_ms"]

#: The property runs once for each default feature.
every_feature = pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)


def consumed(fdef: FeatureDef) -> list[dict[str, Any]]:
    """The events of EVENTS that `fdef` consumes, in order."""
    return [e for e in EVENTS if e["type"] in fdef.consumes]


def fed(fdef: FeatureDef) -> FeatureState:
    """A new state of `fdef` after every event of EVENTS it consumes."""
    state = fdef.factory()
    for e in consumed(fdef):
        state.update(e)
    return state


@every_feature
def test_state_round_trips_through_bytes(fdef: FeatureDef) -> None:
    """Serialized and restored state gives the same values (contract for every feature)."""
    state = fed(fdef)
    restored = fdef.factory()
    restored.load_state(orjson.loads(orjson.dumps(state.to_state())))
    assert restored.value(END) == state.value(END)
    assert restored.updated_ts_ms == state.updated_ts_ms


@every_feature
def test_update_does_not_modify_the_event(fdef: FeatureDef) -> None:
    """update() is pure on its input."""
    state = fdef.factory()
    for e in consumed(fdef):
        before = copy.deepcopy(e)
        state.update(e)
        assert e == before


@every_feature
def test_value_reports_exactly_the_declared_outputs(fdef: FeatureDef) -> None:
    """value() returns the outputs the definition declares, and does not change state."""
    state = fed(fdef)
    snapshot = state.to_state()
    assert tuple(state.value(END)) == fdef.outputs
    assert state.to_state() == snapshot


LATE_BY_MS = 60 * 24 * 3_600_000  # older than every feature's window


@every_feature
def test_an_event_older_than_the_window_is_reported_late_and_changes_no_value(
    fdef: FeatureDef,
) -> None:
    """A copy of each consumed type's newest event, sent 60 days late, is refused unchanged.

    update() returns False and every value stays as it was.
    """
    state = fed(fdef)
    before = state.value(END)
    newest = {e["type"]: e for e in consumed(fdef)}
    assert newest
    for e in newest.values():
        late = {**e, "event_id": f"{e['event_id']}-late", "ts_ms": e["ts_ms"] - LATE_BY_MS}
        assert state.update(late) is False, late["type"]
        assert state.value(END) == before


@every_feature
def test_an_out_of_order_event_inside_the_window_counts(fdef: FeatureDef) -> None:
    """Events arriving in swapped pairs (a little out of order) are never reported late.

    Each swap is far shorter than any window.
    """
    events = consumed(fdef)
    swapped = [e for i in range(0, len(events), 2) for e in reversed(events[i : i + 2])]
    assert max(b["ts_ms"] - a["ts_ms"] for a, b in itertools.pairwise(events)) < 10 * 60_000
    state = fdef.factory()
    assert events and all(state.update(e) for e in swapped)


def test_hour_of_week_starts_monday() -> None:
    """Monday 1970-01-05 00:00 UTC is hour 0; the week wraps at 168."""
    monday_ms = 4 * 24 * 3_600_000
    assert hour_of_week(monday_ms) == 0.0
    assert hour_of_week(monday_ms + 7 * 24 * 3_600_000 - 1) < 168.0


def test_supply_demand_ratio_floors_demand_at_one() -> None:
    """Zero demand does not divide by zero; unknown inputs give None."""
    assert supply_demand_ratio(3.0, 0.0) == 3.0
    assert supply_demand_ratio(None, 2.0) is None


@given(st.integers(0, 1_000), st.integers(0, 1_000))
def test_surge_is_one_plus_half_the_orders_per_courier_above_one(
    couriers: int, orders: int
) -> None:
    """With one courier added, a zone surges by half its orders per courier above 1, capped."""
    expected = min(3.0, 1.0 + max(0.0, orders / (couriers + 1) - 1.0) * 0.5)
    ratio = couriers_per_order(couriers + 1, orders)
    assert surge_multiplier(ratio, cap=3.0) == pytest.approx(expected, rel=1e-12)


@given(st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_surge_falls_as_couriers_per_order_rise(low: float, high: float) -> None:
    """The multiplier stays within [1, cap] and never rises with more couriers per order."""
    low, high = sorted((low, high))
    assert 1.0 <= surge_multiplier(high, 3.0) <= surge_multiplier(low, 3.0) <= 3.0


def _feature(name: str) -> Any:
    """A fresh state of the named default feature."""
    return next(f for f in default_features() if f.name == name).factory()


def _order_event(etype: str, ts_ms: int, order_id: str = "o1", **fields: Any) -> dict[str, Any]:
    """A feature event about `order_id` of merchant m1."""
    return {
        "type": etype,
        "event_id": f"{etype}-{order_id}-{ts_ms}",
        "ts_ms": ts_ms,
        "order_id": order_id,
        "merchant_id": "m1",
        **fields,
    }


def test_estimate_error_is_the_mean_log_of_actual_over_estimated_prep() -> None:
    """Two orders ready in 2x and 0.5x their estimates average out at zero; one alone is log 2."""
    state = _feature("merchant_estimate_error_30d")
    t0 = 1_700_000_000_000
    for oid, factor in (("a", 2.0), ("b", 0.5)):
        state.update(_order_event("order_created", t0, oid))
        state.update(
            _order_event("merchant_estimate", t0 + 1, oid, estimated_ready_ts_ms=t0 + 600_000)
        )
        state.update(_order_event("merchant_ready", t0 + int(600_000 * factor), oid))
        if oid == "a":
            assert state.value(t0 + 1_300_000)["estimate_log_ratio_mean"] == pytest.approx(
                np.log(2.0)
            )
    assert state.value(t0 + 1_300_000) == {
        "estimate_log_ratio_mean": pytest.approx(0.0),
        "estimate_count": 2.0,
    }


def test_an_order_without_an_estimate_does_not_count() -> None:
    """A ready order whose merchant never estimated it leaves the estimate error unknown."""
    state = _feature("merchant_estimate_error_30d")
    t0 = 1_700_000_000_000
    state.update(_order_event("order_created", t0))
    state.update(_order_event("merchant_ready", t0 + 600_000))
    assert state.value(t0 + 600_000)["estimate_count"] == 0.0


def test_orders_in_preparation_close_when_ready_or_cancelled() -> None:
    """Three orders created, one ready and one cancelled: one is still in preparation."""
    state = _feature("merchant_orders_preparing")
    t0 = 1_700_000_000_000
    for oid in ("a", "b", "c"):
        state.update(_order_event("order_created", t0, oid))
    state.update(_order_event("merchant_ready", t0 + 1_000, "a"))
    state.update(_order_event("order_cancelled", t0 + 2_000, "b"))
    assert state.value(t0 + 3_000) == {"orders_preparing": 1.0}


@pytest.mark.parametrize("name", ["courier_speed_30d", "zone_speed_1h"])
def test_speed_features_leave_out_a_standing_courier(name: str) -> None:
    """Pings below the moving threshold do not pull the travel speed down."""
    state = _feature(name)
    t0 = 1_700_000_000_000
    for i, speed in enumerate([6.0, 0.0, 0.2, 4.0]):
        ping = {
            "type": "courier_ping",
            "event_id": f"p{i}",
            "ts_ms": t0 + i * 4_000,
            "courier_id": "c1",
            "lat": 40.7,
            "lon": -74.0,
            "speed_mps": speed,
        }
        state.update(ping)
    assert next(iter(state.value(t0 + 20_000).values())) == pytest.approx(5.0)
