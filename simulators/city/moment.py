"""One moment of a run rebuilt from its log: couriers, open orders, and who had them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.city.kpis import order_outcomes
from simulators.city.protocol import SimRecord
from simulators.city.runner import SimulationLog


@dataclass(frozen=True)
class CourierAt:
    """A courier at the moment: last known position and state.

    `state` is `offline`, `idle` (online, holds nothing), `offered` (idle with a live offer),
    `to_pickup` (holds an order not yet picked up) or `delivering` (holds only picked-up orders).
    """

    courier_id: str
    lat: float
    lon: float
    state: str
    order_ids: tuple[str, ...]


@dataclass(frozen=True)
class OrderAt:
    """An open order at the moment: `unassigned`, `offered`, `committed` or `picked`."""

    order_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    state: str
    courier_id: str | None


@dataclass(frozen=True)
class Moment:
    """The city at `ts_ms`: couriers seen so far and open orders."""

    ts_ms: int
    couriers: tuple[CourierAt, ...]
    orders: tuple[OrderAt, ...]


def open_orders_at(log: SimulationLog, times_ms: list[int]) -> list[int]:
    """Number of open orders (placed, not yet delivered, cancelled or expired) at each time."""
    outcomes = order_outcomes(log).values()
    created = np.sort([o.created_ts_ms for o in outcomes])
    ends = [
        min(t for t in (o.delivered_ts_ms, o.cancelled_ts_ms, o.expired_ts_ms) if t is not None)
        for o in outcomes
        if (o.delivered_ts_ms, o.cancelled_ts_ms, o.expired_ts_ms) != (None, None, None)
    ]
    ended = np.sort(ends)
    t = np.asarray(times_ms)
    opened = np.searchsorted(created, t, side="right")
    closed = np.searchsorted(ended, t, side="right")
    return [int(x) for x in opened - closed]


def busiest_tick_ts_ms(log: SimulationLog) -> int:
    """The tick time with the most open orders (the earliest one on ties)."""
    tick_ms = log.config.tick_interval_ms
    times = list(range(log.start_ts_ms + tick_ms, log.end_ts_ms + 1, tick_ms))
    if not times:
        return log.end_ts_ms
    counts = open_orders_at(log, times)
    return times[int(np.argmax(counts))]


def _events_until(records: Iterable[SimRecord], ts_ms: int) -> Iterator[dict[str, Any]]:
    """The events of `records` whose event time is at most `ts_ms`, in their order."""
    return (rec.event for rec in records if rec.event["ts_ms"] <= ts_ms)


def moment_at(log: SimulationLog, ts_ms: int) -> Moment:
    """Rebuild the city at `ts_ms` from the log's records with event time <= ts_ms."""
    positions: dict[str, tuple[float, float]] = {}
    online: dict[str, bool] = {}
    picked: set[str] = set()
    terminal: set[str] = set()
    for body in _events_until(log.inputs, ts_ms):
        kind = body["type"]
        if kind == "courier_ping_batch":
            for fix in body["pings"]:
                if fix["ts_ms"] <= ts_ms:
                    positions[fix["courier_id"]] = (fix["lat"], fix["lon"])
        elif kind == "courier_online":
            online[body["courier_id"]] = True
            positions.setdefault(body["courier_id"], (body["lat"], body["lon"]))
        elif kind == "courier_offline":
            online[body["courier_id"]] = False
        elif kind == "delivery_picked_up":
            picked.add(body["order_id"])
        elif kind in ("delivery_delivered", "order_cancelled"):
            terminal.add(body["order_id"])
    holder: dict[str, tuple[str, str]] = {}  # order -> (courier, decision)
    offers: dict[str, tuple[str, tuple[str, ...], int]] = {}  # decision -> courier, orders, lease
    answered = {
        body["decision_id"]
        for body in _events_until(log.inputs, ts_ms)
        if body["type"] == "assignment_response"
    }
    for body in _events_until(log.outputs, ts_ms):
        kind = body["type"]
        if kind == "order_expired":
            terminal.add(body["order_id"])
        elif kind == "assignment_proposed":
            offers[body["decision_id"]] = (
                body["courier_id"],
                tuple(body["order_ids"]),
                int(body["lease_expires_ts_ms"]),
            )
        elif kind == "assignment_committed":
            offers.pop(body["decision_id"], None)
            for oid in body["order_ids"]:
                holder[oid] = (body["courier_id"], body["decision_id"])
        elif kind == "assignment_released":
            offers.pop(body["decision_id"], None)
            for oid in body["order_ids"]:
                if holder.get(oid, ("", ""))[1] == body["decision_id"]:
                    del holder[oid]
    live_offers = {
        d: (c, orders)
        for d, (c, orders, lease) in offers.items()
        if lease >= ts_ms and d not in answered
    }
    offered_orders = {oid: c for c, orders in live_offers.values() for oid in orders}
    offered_couriers = {c for c, _ in live_offers.values()}
    orders: list[OrderAt] = []
    held_by: dict[str, list[str]] = {}
    for oid, outcome in order_outcomes(log).items():
        if outcome.created_ts_ms > ts_ms or oid in terminal:
            continue
        courier = holder.get(oid, (None, None))[0]
        if courier is not None:
            held_by.setdefault(courier, []).append(oid)
            state = "picked" if oid in picked else "committed"
        elif oid in offered_orders:
            state, courier = "offered", offered_orders[oid]
        else:
            state = "unassigned"
        orders.append(OrderAt(oid, outcome.pickup, outcome.dropoff, state, courier))
    couriers: list[CourierAt] = []
    for cid in sorted(positions):
        held = tuple(held_by.get(cid, []))
        if not online.get(cid, False):
            state = "offline"
        elif any(oid not in picked for oid in held):
            state = "to_pickup"
        elif held:
            state = "delivering"
        elif cid in offered_couriers:
            state = "offered"
        else:
            state = "idle"
        lat, lon = positions[cid]
        couriers.append(CourierAt(cid, lat, lon, state, held))
    return Moment(ts_ms, tuple(couriers), tuple(orders))
