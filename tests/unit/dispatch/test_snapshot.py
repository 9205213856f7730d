"""Snapshot validation."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.snapshot import CourierTable, MerchantTable, OrderTable, SnapshotError

from .conftest import grid_courier, grid_order, grid_snapshot


def _orders(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "order_id": ("o1", "o2"),
        "merchant_id": ("m1", "m1"),
        "pickup_xy_m": np.zeros((2, 2)),
        "dropoff_xy_m": np.ones((2, 2)),
        "placed_ts_ms": np.array([0, 0]),
        "ready_ts_ms": np.array([10, 10]),
        "promise_ts_ms": np.array([100, 100]),
        "courier_index": np.array([-1, -1]),
        "drop_sequence": np.array([-1, -1]),
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "changes",
    [
        {"order_id": ("o1", "o1")},
        {"pickup_xy_m": np.zeros((2, 3))},
        {"dropoff_xy_m": np.array([[0.0, np.nan], [0.0, 0.0]])},
        {"ready_ts_ms": np.array([-5, 10])},
        {"courier_index": np.array([-2, -1])},
        {"drop_sequence": np.array([0, -1])},
        {"placed_ts_ms": np.array([0.5, 0])},
    ],
)
def test_bad_order_tables_raise(changes: dict[str, object]) -> None:
    """Duplicate ids, wrong shapes, NaNs, ready before placed and bad indices are rejected."""
    with pytest.raises(SnapshotError):
        OrderTable(**_orders(**changes))  # type: ignore[arg-type]


def test_bad_courier_tables_raise() -> None:
    """Negative capacity and a shift ending before it starts are rejected."""
    ok = {
        "courier_id": ("c1",),
        "free_xy_m": np.zeros((1, 2)),
        "free_ts_ms": np.array([0]),
        "shift_end_ts_ms": np.array([10]),
        "spare_capacity": np.array([1]),
        "pending_pickup_ts_ms": np.array([-1]),
        "orders_done": np.array([0]),
        "shift_start_ts_ms": np.array([0]),
    }
    CourierTable(**ok)  # type: ignore[arg-type]
    with pytest.raises(SnapshotError):
        CourierTable(**{**ok, "spare_capacity": np.array([-1])})  # type: ignore[arg-type]
    with pytest.raises(SnapshotError):
        CourierTable(**{**ok, "shift_start_ts_ms": np.array([11])})  # type: ignore[arg-type]


def test_pending_orders_need_a_courier_with_a_pending_pickup() -> None:
    """An order held by a courier without a pending pickup is a snapshot error."""
    order = grid_order("o1", 5, "m", dropoff=(1, 1), placed=-5, courier=0, seq=0)
    with pytest.raises(SnapshotError):
        grid_snapshot([order], [grid_courier("c1", (0, 0), free=10, end=60)])
    grid_snapshot([order], [grid_courier("c1", (0, 0), free=10, end=60, pending=5)])


def test_merchant_demand_must_be_non_negative() -> None:
    """Merchant demand rates are finite and non-negative."""
    with pytest.raises(SnapshotError):
        MerchantTable(("m1",), np.zeros((1, 2)), np.array([-1.0]))


def test_merchant_codes_group_equal_ids() -> None:
    """Orders of one merchant share a code; different merchants differ."""
    table = OrderTable(**_orders(merchant_id=("m1", "m2")))  # type: ignore[arg-type]
    assert table.merchant_code[0] != table.merchant_code[1]
    same = OrderTable(**_orders())  # type: ignore[arg-type]
    assert same.merchant_code[0] == same.merchant_code[1]
