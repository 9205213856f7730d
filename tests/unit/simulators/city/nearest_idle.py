"""A minimal deterministic dispatcher for the simulator's tests: nearest idle courier, one order.

It stands in for the real dispatcher behind the `Dispatch` protocol: on each shard's tick it
offers every open, unleased order (oldest first) to the nearest idle online courier; accept →
commit, decline → release, lease expiry → release, courier offline or order cancelled →
release, and orders open longer than `max_age_s` are expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.geo import distance_m
from simulators.city.protocol import SimRecord

SPEED_MPS = 5.0
DETOUR = 1.3


@dataclass
class _Order:
    order_id: str
    shard: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    created_ts_ms: int
    ready_ts_ms: int
    state: str = "open"  # open | offered | committed | picked | done
    decision_id: str | None = None


@dataclass
class _Courier:
    courier_id: str
    lat: float
    lon: float
    online: bool = True
    decision_id: str | None = None  # live offer or commit


@dataclass
class _Offer:
    decision_id: str
    order_id: str
    courier_id: str
    shard: str
    lease_expires_ts_ms: int
    committed: bool = False


@dataclass
class NearestIdleDispatch:
    """Nearest idle courier per open order, one order per courier; deterministic."""

    lease_s: float = 30.0
    max_age_s: float = 3_600.0
    expire: bool = True
    orders: dict[str, _Order] = field(default_factory=dict)
    couriers: dict[str, _Courier] = field(default_factory=dict)
    offers: dict[str, _Offer] = field(default_factory=dict)
    calls: list[tuple[int, list[SimRecord]]] = field(default_factory=list)
    n: int = 0

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        out: list[SimRecord] = []
        self.calls.append((until_ts_ms, list(inputs)))
        for rec in inputs:
            getattr(self, f"_on_{rec.event['type']}", self._ignore)(rec.event, out)
        return out

    # ------------------------------------------------------------------ helpers
    def _ignore(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        return None

    def _emit(self, out: list[SimRecord], topic: str, shard: str, body: dict[str, Any]) -> None:
        self.n += 1
        full = {"event_id": f"d{self.n}", "v": 1, **body}
        out.append(SimRecord(topic, shard.encode(), full))

    def _release(self, out: list[SimRecord], offer: _Offer, ts_ms: int, reason: str) -> None:
        order = self.orders[offer.order_id]
        if order.decision_id == offer.decision_id and order.state in ("offered", "committed"):
            order.state, order.decision_id = "open", None
        courier = self.couriers.get(offer.courier_id)
        if courier is not None and courier.decision_id == offer.decision_id:
            courier.decision_id = None
        self.offers.pop(offer.decision_id, None)
        self._emit(
            out,
            "assignment_released",
            offer.shard,
            {
                "type": "assignment_released",
                "ts_ms": ts_ms,
                "decision_id": offer.decision_id,
                "shard": offer.shard,
                "order_ids": [offer.order_id],
                "courier_id": offer.courier_id,
                "reason": reason,
            },
        )

    # ------------------------------------------------------------------ inputs
    def _on_order_created(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        p, d = body["pickup"], body["dropoff"]
        self.orders[body["order_id"]] = _Order(
            body["order_id"],
            body["shard"],
            (p["lat"], p["lon"]),
            (d["lat"], d["lon"]),
            body["ts_ms"],
            body["ts_ms"] + int(body.get("prep_estimate_s", 600) * 1000),
        )

    def _on_merchant_accepted(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        order = self.orders[body["order_id"]]
        order.ready_ts_ms = int(body.get("estimated_ready_ts_ms", order.ready_ts_ms))

    def _on_order_cancelled(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        order = self.orders[body["order_id"]]
        if order.decision_id is not None and order.decision_id in self.offers:
            self._release(out, self.offers[order.decision_id], body["ts_ms"], "order_cancelled")
        order.state = "done"

    def _on_courier_online(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        self.couriers[body["courier_id"]] = _Courier(body["courier_id"], body["lat"], body["lon"])

    def _on_courier_offline(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        courier = self.couriers[body["courier_id"]]
        courier.online = False
        offer = self.offers.get(courier.decision_id or "")
        if offer is not None and self.orders[offer.order_id].state in ("offered", "committed"):
            self._release(out, offer, body["ts_ms"], "courier_offline")

    def _on_courier_ping_batch(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        for fix in body["pings"]:
            courier = self.couriers.get(fix["courier_id"])
            if courier is not None:
                courier.lat, courier.lon = fix["lat"], fix["lon"]

    def _on_delivery_picked_up(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        self.orders[body["order_id"]].state = "picked"

    def _on_delivery_delivered(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        order = self.orders[body["order_id"]]
        order.state = "done"
        courier = self.couriers[body["courier_id"]]
        if courier.decision_id == order.decision_id:
            courier.decision_id = None
        self.offers.pop(order.decision_id or "", None)

    def _on_assignment_response(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        offer = self.offers.get(body["decision_id"])
        if offer is None or offer.committed:
            return  # already released (late answer) or a duplicate
        if body["ts_ms"] > offer.lease_expires_ts_ms:
            self._release(out, offer, body["ts_ms"], "lease_expired")
        elif body["response"] == "decline":
            self._release(out, offer, body["ts_ms"], "declined")
        else:
            offer.committed = True
            order = self.orders[offer.order_id]
            order.state = "committed"
            self._emit(
                out,
                "assignment_committed",
                offer.shard,
                {
                    "type": "assignment_committed",
                    "ts_ms": body["ts_ms"],
                    "decision_id": offer.decision_id,
                    "shard": offer.shard,
                    "shard_generation": 0,
                    "order_ids": [order.order_id],
                    "courier_id": offer.courier_id,
                    "route": _route(order, body["ts_ms"]),
                },
            )

    def _on_dispatch_tick(self, body: dict[str, Any], out: list[SimRecord]) -> None:
        now, shard = body["ts_ms"], body["shard"]
        for offer in sorted(self.offers.values(), key=lambda o: o.decision_id):
            if offer.shard == shard and not offer.committed and now > offer.lease_expires_ts_ms:
                self._release(out, offer, now, "lease_expired")
        for order in sorted(self.orders.values(), key=lambda o: (o.created_ts_ms, o.order_id)):
            if order.shard != shard or order.state != "open":
                continue
            if self.expire and now - order.created_ts_ms > self.max_age_s * 1000:
                order.state = "done"
                self._emit(
                    out,
                    "assignment_released",
                    shard,
                    {
                        "type": "order_expired",
                        "ts_ms": now,
                        "order_id": order.order_id,
                        "shard": shard,
                        "reason": "max_age",
                    },
                )
                continue
            idle = [c for c in self.couriers.values() if c.online and c.decision_id is None]
            if not idle:
                continue
            courier = min(
                idle,
                key=lambda c: (distance_m(c.lat, c.lon, *order.pickup), c.courier_id),
            )
            self._propose(out, order, courier, now)

    def _propose(self, out: list[SimRecord], order: _Order, courier: _Courier, now: int) -> None:
        self.n += 1
        decision_id = f"dec-{self.n}"
        offer = _Offer(
            decision_id,
            order.order_id,
            courier.courier_id,
            order.shard,
            now + int(self.lease_s * 1000),
        )
        self.offers[decision_id] = offer
        order.state, order.decision_id = "offered", decision_id
        courier.decision_id = decision_id
        to_pickup_s = distance_m(courier.lat, courier.lon, *order.pickup) * DETOUR / SPEED_MPS
        at_pickup_s = max(to_pickup_s, (order.ready_ts_ms - now) / 1000) + 60
        total_s = at_pickup_s + distance_m(*order.pickup, *order.dropoff) * DETOUR / SPEED_MPS + 60
        self._emit(
            out,
            "assignment_proposed",
            order.shard,
            {
                "type": "assignment_proposed",
                "ts_ms": now,
                "decision_id": decision_id,
                "shard": order.shard,
                "shard_generation": 0,
                "order_ids": [order.order_id],
                "courier_id": courier.courier_id,
                "lease_expires_ts_ms": offer.lease_expires_ts_ms,
                "route": _route(order, now),
                "etas": {
                    order.order_id: {
                        "p50_s": round(total_s, 1),
                        "p90_s": round(total_s * 1.3, 1),
                        "fallback_used": False,
                    }
                },
                "cost": round(to_pickup_s, 1),
                "explanation": {
                    "reason": "nearest_idle",
                    "terms": {"pickup_min": round(to_pickup_s / 60, 4)},
                },
                "model_version": "test",
                "policy_version": "nearest-idle",
            },
        )


def _route(order: _Order, now: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "pickup",
            "order_id": order.order_id,
            "lat": order.pickup[0],
            "lon": order.pickup[1],
            "planned_ts_ms": now,
        },
        {
            "kind": "dropoff",
            "order_id": order.order_id,
            "lat": order.dropoff[0],
            "lon": order.dropoff[1],
            "planned_ts_ms": now,
        },
    ]
