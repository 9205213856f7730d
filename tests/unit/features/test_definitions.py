import copy
import itertools

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.definitions import (
    couriers_per_order,
    default_features,
    hour_of_week,
    supply_demand_ratio,
    surge_multiplier,
)
from features.synthetic import generate_event_log

EVENTS = generate_event_log(np.random.default_rng(3), n_orders=40, duration_ms=3_600_000)
END = EVENTS[-1]["ts_ms"]


@pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)
def test_state_round_trips_through_bytes(fdef) -> None:  # type: ignore[no-untyped-def]
    """Serialized and restored state gives the same values (contract for every feature)."""
    state = fdef.factory()
    for e in EVENTS:
        if e["type"] in fdef.consumes:
            state.update(e)
    restored = fdef.factory()
    restored.load_state(orjson.loads(orjson.dumps(state.to_state())))
    assert restored.value(END) == state.value(END)
    assert restored.updated_ts_ms == state.updated_ts_ms


@pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)
def test_update_does_not_modify_the_event(fdef) -> None:  # type: ignore[no-untyped-def]
    """update() is pure on its input."""
    state = fdef.factory()
    for e in EVENTS:
        if e["type"] in fdef.consumes:
            before = copy.deepcopy(e)
            state.update(e)
            assert e == before


@pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)
def test_value_reports_exactly_the_declared_outputs(fdef) -> None:  # type: ignore[no-untyped-def]
    """value() returns the outputs the definition declares, and does not change state."""
    state = fdef.factory()
    for e in EVENTS:
        if e["type"] in fdef.consumes:
            state.update(e)
    snapshot = state.to_state()
    assert tuple(state.value(END)) == fdef.outputs
    assert state.to_state() == snapshot


LATE_BY_MS = 60 * 24 * 3_600_000  # older than every feature's window


@pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)
def test_an_event_older_than_the_window_is_reported_late_and_changes_no_value(fdef) -> None:  # type: ignore[no-untyped-def]
    """A copy of each consumed type's newest event, sent 60 days late, is refused unchanged.

    update() returns False and every value stays as it was.
    """
    state = fdef.factory()
    for e in EVENTS:
        if e["type"] in fdef.consumes:
            state.update(e)
    before = state.value(END)
    newest = {e["type"]: e for e in EVENTS if e["type"] in fdef.consumes}
    assert newest
    for e in newest.values():
        late = {**e, "event_id": f"{e['event_id']}-late", "ts_ms": e["ts_ms"] - LATE_BY_MS}
        assert state.update(late) is False, late["type"]
        assert state.value(END) == before


@pytest.mark.parametrize("fdef", default_features(), ids=lambda f: f.name)
def test_an_out_of_order_event_inside_the_window_counts(fdef) -> None:  # type: ignore[no-untyped-def]
    """Events arriving in swapped pairs (a little out of order) are never reported late.

    Each swap is far shorter than any window.
    """
    consumed = [e for e in EVENTS if e["type"] in fdef.consumes]
    swapped = [e for i in range(0, len(consumed), 2) for e in reversed(consumed[i : i + 2])]
    assert max(b["ts_ms"] - a["ts_ms"] for a, b in itertools.pairwise(consumed)) < 10 * 60_000
    state = fdef.factory()
    assert consumed and all(state.update(e) for e in swapped)


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
