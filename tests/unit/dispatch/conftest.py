"""Shared strategies and helpers for the dispatch tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from dispatch.eta import GridTravelTime
from dispatch.snapshot import (
    NO_PICKUP,
    OPEN,
    CourierTable,
    MerchantTable,
    OrderTable,
    ServiceTimes,
    Snapshot,
)
from dispatch.synthetic import ShardShape, synthetic_snapshot

NOW = 1_700_000_000_000
MIN = 60_000


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """Random small synthetic shards (open orders, idle/busy couriers, pending pickups)."""
    shape = ShardShape(
        orders=draw(st.integers(0, 40)),
        couriers=draw(st.integers(1, 40)),
        merchants=draw(st.integers(1, 12)),
        city_m=draw(st.sampled_from([2_000.0, 8_000.0])),
        pending_share=draw(st.sampled_from([0.0, 0.2, 0.5])),
        idle_share=draw(st.sampled_from([0.2, 0.6, 1.0])),
        capacity=draw(st.integers(1, 4)),
    )
    return synthetic_snapshot(shape, np.random.default_rng(draw(st.integers(0, 2**16))), NOW)


def grid_snapshot(
    orders: list[dict[str, Any]],
    couriers: list[dict[str, Any]],
    merchants: MerchantTable | None = None,
    meters_per_minute: float = 100.0,
    forbidden: tuple[tuple[str, str], ...] = (),
) -> Snapshot:
    """A snapshot on the MDRP travel grid from plain dicts (times in minutes from NOW).

    Order keys: id, merchant, pickup, dropoff, placed, ready, [courier, seq]. Courier keys:
    id, xy, free, end, [spare, pending, done, start]. `forbidden`: (order id, courier id) pairs.
    """
    table = OrderTable(
        order_id=tuple(str(o["id"]) for o in orders),
        merchant_id=tuple(str(o["merchant"]) for o in orders),
        pickup_xy_m=np.array([o["pickup"] for o in orders], dtype=float).reshape(-1, 2),
        dropoff_xy_m=np.array([o["dropoff"] for o in orders], dtype=float).reshape(-1, 2),
        placed_ts_ms=np.array([NOW + int(o["placed"]) * MIN for o in orders], dtype=np.int64),
        ready_ts_ms=np.array([NOW + int(o["ready"]) * MIN for o in orders], dtype=np.int64),
        promise_ts_ms=np.array(
            [NOW + (int(o["placed"]) + 40) * MIN for o in orders], dtype=np.int64
        ),
        courier_index=np.array([o.get("courier", OPEN) for o in orders], dtype=np.int64),
        drop_sequence=np.array([o.get("seq", -1) for o in orders], dtype=np.int64),
    )
    fleet = CourierTable(
        courier_id=tuple(str(c["id"]) for c in couriers),
        free_xy_m=np.array([c["xy"] for c in couriers], dtype=float).reshape(-1, 2),
        free_ts_ms=np.array([NOW + int(c["free"]) * MIN for c in couriers], dtype=np.int64),
        shift_end_ts_ms=np.array([NOW + int(c["end"]) * MIN for c in couriers], dtype=np.int64),
        spare_capacity=np.array([c.get("spare", 5) for c in couriers], dtype=np.int64),
        pending_pickup_ts_ms=np.array(
            [NOW + int(c["pending"]) * MIN if "pending" in c else NO_PICKUP for c in couriers],
            dtype=np.int64,
        ),
        orders_done=np.array([c.get("done", 0) for c in couriers], dtype=np.int64),
        shift_start_ts_ms=np.array(
            [NOW + int(c.get("start", -60)) * MIN for c in couriers], dtype=np.int64
        ),
    )
    return Snapshot(
        now_ts_ms=NOW,
        tick_s=60.0,
        orders=table,
        couriers=fleet,
        eta=GridTravelTime(meters_per_minute),
        service=ServiceTimes(240.0, 240.0),
        merchants=merchants if merchants is not None else MerchantTable.empty(),
        shard_id="test",
        forbidden=forbidden,
    )


def grid_order(oid: str, ready: int, merchant: str = "m1", **extra: object) -> dict[str, Any]:
    """A `grid_snapshot` order at merchant point (0, 0) to (300, 0), placed a minute ago."""
    return {
        "id": oid,
        "merchant": merchant,
        "pickup": (0, 0),
        "dropoff": (300, 0),
        "placed": -1,
        "ready": ready,
        **extra,
    }


def grid_courier(
    cid: str, xy: tuple[int, int], free: int = 0, end: int = 600, **extra: object
) -> dict[str, Any]:
    """A `grid_snapshot` courier at `xy`, free from minute `free` to shift end `end`."""
    return {"id": cid, "xy": xy, "free": free, "end": end, **extra}


def contested_snapshot(forbidden: tuple[tuple[str, str], ...] = ()) -> Snapshot:
    """Three orders, two free couriers: x alone can reach c nearly on time.

    Order a is on time either with x or, chained, with y right after y's job b (which ends
    next to a's merchant).
    """

    def order(oid: str, pickup: tuple[int, int], dropoff: tuple[int, int], ready: int) -> Any:
        return {**grid_order(oid, ready, f"m_{oid}"), "pickup": pickup, "dropoff": dropoff}

    return grid_snapshot(
        [
            order("a", (1000, 0), (1000, -300), 12),
            order("b", (1000, 200), (1000, 100), 0),
            order("c", (-1000, 0), (-1000, 300), 11),
        ],
        [grid_courier("x", (0, 0)), grid_courier("y", (1000, 200), free=-10)],
        forbidden=forbidden,
    )
