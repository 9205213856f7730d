"""The read model's couriers: status, shard and position from updates in any order."""

from __future__ import annotations

import numpy as np

from console.model import OpsModel
from console.views import couriers_view
from contracts.pings import PingColumns
from contracts.positions import PositionBatch
from tests.unit.console.events import SHARD, T0, S, committed, created, feed, state_update


def _batch(fixes: list[tuple[str, float, float, int]], left: bool = False) -> PositionBatch:
    n = len(fixes)
    columns = PingColumns(
        courier_id=np.array([f[0] for f in fixes], dtype=object),
        lat=np.array([f[1] for f in fixes]),
        lon=np.array([f[2] for f in fixes]),
        ts_ms=np.array([f[3] for f in fixes], dtype=np.int64),
        speed_mps=np.full(n, np.nan),
        heading_deg=np.full(n, np.nan),
        accuracy_m=np.full(n, np.nan),
    )
    return PositionBatch(SHARD, columns, left)


def test_the_status_follows_the_newest_status_time_in_any_read_order() -> None:
    """An older offline update read last does not hide the newer online one."""
    newer = state_update("c1", T0 + 10 * S, status="online")
    older = state_update("c1", T0, status="offline")
    model = OpsModel()
    feed(model, newer, older)
    assert model.couriers["c1"].status == "online"


def test_a_left_update_moves_the_courier_to_its_new_shard() -> None:
    """A `left` update of a newer epoch places the courier in `to_shard`."""
    model = OpsModel()
    feed(
        model,
        state_update("c1", T0, kind="arrived", epoch=0),
        state_update("c1", T0 + S, kind="left", epoch=1, to_shard="dr5x"),
    )
    assert model.couriers["c1"].shard == "dr5x"


def test_a_position_keeps_the_newest_fix() -> None:
    """An older fix read after a newer one leaves the newer position."""
    model = OpsModel()
    model.apply_positions(_batch([("c1", 40.76, -73.98, T0 + 5 * S)]), 0)
    model.apply_positions(_batch([("c1", 40.70, -73.90, T0)]), 0)
    c = model.couriers["c1"]
    assert (c.lat, c.lon, c.position_ts_ms) == (40.76, -73.98, T0 + 5 * S)


def test_a_tombstone_batch_moves_nobody() -> None:
    """A `left` position batch changes no position."""
    model = OpsModel()
    model.apply_positions(_batch([("c1", 40.76, -73.98, T0)]), 0)
    model.apply_positions(_batch([("c1", 0.0, 0.0, T0 + S)], left=True), 0)
    assert model.couriers["c1"].lat == 40.76


def test_a_courier_with_committed_orders_is_busy_with_that_load() -> None:
    """A courier's load counts its live committed orders; its activity is then `busy`."""
    model = OpsModel()
    feed(
        model,
        state_update("c1", T0, capacity=3),
        created("o1"),
        created("o2"),
        committed("d1", ["o1", "o2"], "c1", T0 + S),
    )
    (row,) = couriers_view(model)["couriers"]
    assert (row["activity"], row["load"], row["capacity"]) == ("busy", 2, 3)


def test_online_couriers_without_a_position_are_counted_apart() -> None:
    """`online_without_position` counts online couriers no fix has placed yet."""
    model = OpsModel()
    feed(model, state_update("c1", T0), state_update("c2", T0))
    model.apply_positions(_batch([("c1", 40.76, -73.98, T0)]), 0)
    view = couriers_view(model)
    assert (view["online"], view["online_without_position"]) == (2, 1)
