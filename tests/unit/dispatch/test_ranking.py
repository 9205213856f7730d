"""Request-time ranking's table building: trusted tables equal checked ones."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from dispatch.ranking import trusted
from dispatch.snapshot import CourierTable


def columns() -> dict[str, object]:
    """Two couriers' columns in the form a checked table holds them."""
    ints = np.array([1, 2], dtype=np.int64)
    return {
        "courier_id": ("a", "b"),
        "free_xy_m": np.array([[0.0, 1.0], [2.0, 3.0]]),
        "free_ts_ms": ints,
        "shift_end_ts_ms": ints + 10,
        "spare_capacity": ints,
        "pending_pickup_ts_ms": np.array([-1, -1], dtype=np.int64),
        "orders_done": ints,
        "shift_start_ts_ms": ints,
        "decline_prob": np.zeros(2),
    }


def test_a_trusted_table_holds_what_the_checked_table_holds() -> None:
    """Given checked-form columns, `trusted` builds the table the constructor builds."""
    checked, built = CourierTable(**columns()), trusted(CourierTable, **columns())  # type: ignore[arg-type]
    assert all(
        np.array_equal(getattr(built, f.name), getattr(checked, f.name))
        for f in fields(CourierTable)
    )


def test_a_trusted_table_refuses_a_field_the_table_does_not_have() -> None:
    """A misspelt column is an error, not a silently missing one."""
    with pytest.raises(TypeError, match="no field"):
        trusted(CourierTable, **columns(), free_ts=np.zeros(2))


def test_a_trusted_table_refuses_to_leave_a_field_without_a_default_unset() -> None:
    """Every field without a default must be given."""
    given = columns()
    del given["orders_done"]
    with pytest.raises(TypeError, match="orders_done"):
        trusted(CourierTable, **given)
