"""Exceptions: unserved ready orders, predicted late orders, idle couriers far from demand."""

from __future__ import annotations

import numpy as np

from console.exceptions import ExceptionRules, exceptions_view
from console.model import OpsModel
from contracts.pings import PingColumns
from contracts.positions import PositionBatch
from tests.unit.console.events import (
    MIN,
    SHARD,
    T0,
    S,
    committed,
    created,
    eta_update,
    feed,
    milestone,
    proposed,
    state_update,
)


def _place(model: OpsModel, courier_id: str, lat: float, lon: float, ts_ms: int) -> None:
    columns = PingColumns(
        courier_id=np.array([courier_id], dtype=object),
        lat=np.array([lat]),
        lon=np.array([lon]),
        ts_ms=np.array([ts_ms], dtype=np.int64),
        speed_mps=np.array([np.nan]),
        heading_deg=np.array([np.nan]),
        accuracy_m=np.array([np.nan]),
    )
    model.apply_positions(PositionBatch(SHARD, columns), 0)


def test_a_ready_order_without_a_committed_courier_is_listed_with_its_wait() -> None:
    """Ready and only offered: listed, with minutes since ready; a committed one is not."""
    model = OpsModel()
    feed(
        model,
        created("o1"),
        created("o2"),
        milestone("order_ready", "o1", T0 + 5 * MIN, merchant_id="m1"),
        milestone("order_ready", "o2", T0 + 5 * MIN, merchant_id="m1"),
        committed("d2", ["o2"], "c2", T0 + 6 * MIN),
        proposed("d1", ["o1"], "c1", T0 + 8 * MIN),
    )
    listed = exceptions_view(model, ExceptionRules())["ready_without_courier"]
    assert [(o["order_id"], o["waiting_min"]) for o in listed] == [("o1", 3.0)]


def test_only_orders_whose_p90_is_past_the_promise_are_predicted_late() -> None:
    """An order whose ETA p90 is after its promise is listed with the minutes; others not."""
    model = OpsModel()
    feed(
        model,
        created("late", promise_ts_ms=T0 + 30 * MIN),
        created("fine", promise_ts_ms=T0 + 30 * MIN),
        committed("d1", ["late"], "c1", T0 + S),
        committed("d2", ["fine"], "c2", T0 + S),
        eta_update("late", T0 + 2 * S, T0 + 28 * MIN, T0 + 33 * MIN),
        eta_update("fine", T0 + 2 * S, T0 + 20 * MIN, T0 + 29 * MIN),
    )
    listed = exceptions_view(model, ExceptionRules())["predicted_late"]
    assert [(o["order_id"], o["lateness_min"]) for o in listed] == [("late", 3.0)]


def test_an_idle_courier_far_from_every_demand_point_is_listed() -> None:
    """Idle and 5 km from the only merchant: listed; idle next to it: not."""
    model = OpsModel()
    feed(model, created("o1"), state_update("far", T0), state_update("near", T0))
    _place(model, "far", 40.795, -73.99, T0 + S)  # 5 km north of the merchant
    _place(model, "near", 40.7505, -73.99, T0 + S)
    listed = exceptions_view(model, ExceptionRules(far_m=2000))["idle_far_from_demand"]
    assert [c["courier_id"] for c in listed] == ["far"]
    assert 4900 < listed[0]["distance_m"] < 5100


def test_a_busy_courier_is_never_idle_far_from_demand() -> None:
    """A courier holding a committed order is not an idle exception, wherever it is."""
    model = OpsModel()
    feed(model, created("o1"), state_update("c1", T0), committed("d1", ["o1"], "c1", T0 + S))
    _place(model, "c1", 40.85, -73.99, T0 + S)
    assert exceptions_view(model, ExceptionRules())["idle_far_from_demand"] == []
