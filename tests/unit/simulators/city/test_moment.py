from __future__ import annotations

from typing import Any

from simulators.city.moment import busiest_tick_ts_ms, moment_at, open_orders_at
from simulators.city.protocol import SimRecord
from simulators.city.runner import SimulationLog
from tests.unit.simulators.city.conftest import Run, small_config

CONFIG = small_config()
T0 = CONFIG.start_ts_ms


def m(minutes: float) -> int:
    """Event time `minutes` after the start."""
    return T0 + round(minutes * 60_000)


def ev(kind: str, minutes: float, **fields: Any) -> SimRecord:
    """A record of an event of `kind` at `minutes`."""
    return SimRecord("t", b"k", {"type": kind, "ts_ms": m(minutes), **fields})


def created(oid: str, minutes: float) -> SimRecord:
    """An order_created at `minutes`."""
    return ev(
        "order_created",
        minutes,
        order_id=oid,
        shard="dr5r",
        pickup={"lat": 40.78, "lon": -73.98},
        dropoff={"lat": 40.79, "lon": -73.97},
    )


def fix(cid: str, minutes: float) -> dict[str, Any]:
    """A ping fix of `cid` at `minutes`, all at one spot."""
    return {"courier_id": cid, "lat": 40.78, "lon": -73.99, "ts_ms": m(minutes)}


def scene() -> SimulationLog:
    """Five couriers in five states and orders in every open state, seen at minute 6."""
    inputs = [
        *(
            ev("courier_online", 0, courier_id=c, lat=40.7, lon=-73.9)
            for c in ("c1", "c2", "c3", "c4", "c5")
        ),
        created("A", 1),
        created("B", 1),
        created("D", 2),
        created("E", 2),
        created("G", 2),
        ev("courier_ping_batch", 3, pings=[fix(c, 3) for c in ("c1", "c2", "c3", "c4", "c5")]),
        ev("delivery_picked_up", 4, order_id="B", courier_id="c2"),
        ev("courier_offline", 4, courier_id="c4"),
        ev("delivery_delivered", 5, order_id="G", courier_id="c5"),
    ]
    outputs = [
        ev("assignment_committed", 2, decision_id="dA", order_ids=["A"], courier_id="c1"),
        ev("assignment_committed", 2, decision_id="dB", order_ids=["B"], courier_id="c2"),
        ev("assignment_committed", 2, decision_id="dG", order_ids=["G"], courier_id="c5"),
        ev(
            "assignment_proposed",
            5.5,
            decision_id="dD",
            order_ids=["D"],
            courier_id="c3",
            lease_expires_ts_ms=m(6.5),
        ),
    ]
    return SimulationLog(CONFIG, ("dr5r",), inputs, outputs, start_ts_ms=T0, end_ts_ms=m(10))


def test_courier_states_at_a_moment() -> None:
    """Couriers are to_pickup, delivering, offered, offline or idle from what the log says."""
    moment = moment_at(scene(), m(6))
    states = {c.courier_id: c.state for c in moment.couriers}
    assert states == {
        "c1": "to_pickup",
        "c2": "delivering",
        "c3": "offered",
        "c4": "offline",
        "c5": "idle",
    }


def test_open_orders_at_a_moment() -> None:
    """Open orders carry their state; delivered ones are gone, later ones not yet there."""
    moment = moment_at(scene(), m(6))
    states = {o.order_id: (o.state, o.courier_id) for o in moment.orders}
    assert states == {
        "A": ("committed", "c1"),
        "B": ("picked", "c2"),
        "D": ("offered", "c3"),
        "E": ("unassigned", None),
    }


def test_positions_are_the_last_fix_before_the_moment() -> None:
    """A courier's position is its last fix at or before the moment (else where it came online)."""
    assert {(c.lat, c.lon) for c in moment_at(scene(), m(6)).couriers} == {(40.78, -73.99)}
    assert {(c.lat, c.lon) for c in moment_at(scene(), m(2.5)).couriers} == {(40.7, -73.9)}


def test_open_order_counts_and_the_busiest_tick() -> None:
    """Open orders are counted per time, and the busiest tick is where that count peaks."""
    log = scene()
    assert open_orders_at(log, [m(0.5), m(1), m(2), m(5)]) == [0, 2, 5, 4]
    busiest = busiest_tick_ts_ms(log)
    assert m(2) <= busiest < m(5)


def test_a_real_run_has_a_consistent_moment(small_run: Run) -> None:
    """In a simulated run, couriers heading to a pickup hold an order, idle ones hold none."""
    moment = moment_at(small_run.log, busiest_tick_ts_ms(small_run.log))
    assert moment.orders
    for courier in moment.couriers:
        assert bool(courier.order_ids) == (courier.state in ("to_pickup", "delivering"))
