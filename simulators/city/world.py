"""The city in event time: a discrete-event world that produces the system's input events.

It plays the courier app, the merchants and the customers against the dispatcher's outputs.

`CityWorld.advance(until_ts_ms)` runs the world up to an event time and returns the input
records it produced (event-time ordered); `CityWorld.apply(outputs)` feeds the dispatcher's
outputs back at the world's current time:

* `assignment_proposed` for one of our couriers → an `assignment_response` after a response
  delay (accept with the app's probability; decline when offline, past shift end, over capacity
  or when an offered order is gone). Answers may come after the lease expired.
* `assignment_committed` → the courier serves the orders along the route (pickups then
  dropoffs, in route order), appended after whatever it is already doing. An order committed
  to another courier (not yet picked up) is taken from the courier that held it.
* `assignment_released` → the courier drops the released orders it holds under that decision
  and has not picked up.
* `order_expired` → the order is dead: nobody serves it any more (unless already picked up).

Couriers come online at shift start at their home, go offline at shift end once idle, and
sometimes go offline on the way to a pickup (abandoning what they hold) and come back after a
break. While online they ping every `ping_interval_s`; a gateway sends every fix of one second
(ts in (S - 1 s, S]) as one `courier_ping_batch` at S, keyed by the gateway id.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from contracts.geo import distance_m
from contracts.geo import offset_m as offset
from contracts.records import envelope
from contracts.rejections import EventRejected
from contracts.validation import validate_schema
from simulators.city.actors import CityCourier, CityOrder, NoiseBuffer, Stop
from simulators.city.config import CityConfig
from simulators.city.courier_app import accept_probability, response_delay_ms
from simulators.city.events import make_id, point, record
from simulators.city.legs import Leg, standing
from simulators.city.protocol import SimRecord
from simulators.city.scenario import Scenario, build_scenario, rng_streams

#: Largest number of fixes in one ping batch (the contract's limit).
MAX_BATCH_FIXES = 10_000

#: How long an accepted offer keeps capacity reserved after its lease expired, waiting for the
#: commit or the release.
PENDING_GRACE_MS = 60_000

# Priorities of simultaneous world events: state changes, then fixes, then the gateway flush.
_STATE, _PING, _FLUSH = 0, 1, 2


class SimulationError(Exception):
    """The dispatcher returned something the simulation cannot use (with the reason)."""


class CityWorld:
    """The simulated city; deterministic for a config (seed) and a deterministic dispatcher."""

    def __init__(self, config: CityConfig, scenario: Scenario | None = None) -> None:
        self.config = config
        self.scenario = scenario if scenario is not None else build_scenario(config)
        streams = rng_streams(config.seed)
        self._travel = streams["travel"]
        self._app = streams["app"]
        self._gps = streams["gps"]
        self._noise = NoiseBuffer(self._gps)
        self._incidents = streams["incidents"]
        self.now_ms = config.start_ts_ms - 1
        self._heap: list[tuple[int, int, int, str, tuple[Any, ...]]] = []
        self._seq = 0
        self._out: list[SimRecord] = []
        self._fixes: list[dict[str, Any]] = []
        self._flush_at: int | None = None
        self._offers: dict[str, dict[str, Any]] = {}
        self._seen_outputs: set[str] = set()
        self.stats: dict[str, int] = {
            "outputs_repeated": 0,
            "responses_late": 0,
            "commits_ignored_offline": 0,
            "orders_taken_from_other_courier": 0,
            "offline_mid_route": 0,
            "orders_abandoned": 0,
        }
        self.orders = {p.order_id: CityOrder(p) for p in self.scenario.orders}
        interval_ms = config.fleet.ping_interval_s * 1000
        self.couriers: dict[str, CityCourier] = {}
        for plan in self.scenario.couriers:
            phase = int(self._gps.integers(0, interval_ms))
            leg = standing(plan.home[0], plan.home[1], plan.shift_start_ts_ms)
            self.couriers[plan.courier_id] = CityCourier(plan, phase, leg)
            self._at(plan.shift_start_ts_ms, "shift_start", plan.courier_id)
            self._at(plan.shift_end_ts_ms, "shift_end", plan.courier_id)
        for order_plan in self.scenario.orders:
            oid = order_plan.order_id
            self._at(order_plan.placed_ts_ms, "order_placed", oid)
            self._at(order_plan.accepted_ts_ms, "merchant_accepted", oid)
            self._at(order_plan.ready_ts_ms, "order_ready", oid)
            if order_plan.cancel_ts_ms is not None:
                self._at(order_plan.cancel_ts_ms, "customer_cancel", oid)
        self._handlers: dict[str, Callable[..., None]] = {
            "shift_start": self._on_shift_start,
            "shift_end": self._on_shift_end,
            "back_online": self._on_back_online,
            "order_placed": self._on_order_placed,
            "merchant_accepted": self._on_merchant_accepted,
            "order_ready": self._on_order_ready,
            "customer_cancel": self._on_customer_cancel,
            "respond": self._on_respond,
            "arrive": self._on_arrive,
            "pick": self._on_pick,
            "handover": self._on_handover,
            "vanish": self._on_vanish,
            "ping": self._on_ping,
            "flush": self._on_flush,
        }

    # ------------------------------------------------------------------ public interface
    @property
    def shards(self) -> tuple[str, ...]:
        """Every shard of the city (ticks go to each)."""
        return self.scenario.shards

    def advance(self, until_ts_ms: int) -> list[SimRecord]:
        """Run the world through `until_ts_ms`; return the records produced, in event-time order."""
        if until_ts_ms < self.now_ms:
            msg = f"cannot go back in time from {self.now_ms} to {until_ts_ms}"
            raise SimulationError(msg)
        heap = self._heap
        while heap and heap[0][0] <= until_ts_ms:
            ts_ms, _, _, kind, args = heapq.heappop(heap)
            self.now_ms = ts_ms
            self._handlers[kind](*args)
        self.now_ms = until_ts_ms
        out, self._out = self._out, []
        return out

    def tick_records(self, ts_ms: int) -> list[SimRecord]:
        """One `dispatch_tick` per shard of the city at `ts_ms`."""
        prefix = self.config.id_prefix
        return [
            record(
                envelope(
                    "dispatch_tick", make_id(f"{prefix}tick", shard, ts_ms), ts_ms, shard=shard
                )
            )
            for shard in self.shards
        ]

    def apply(self, outputs: Sequence[SimRecord]) -> None:
        """React to the dispatcher's outputs at the world's current time.

        Outputs are applied in a canonical order — by event time, then releases and expiries,
        commits, proposals and the rest, then event id — so that the world (and every random
        draw it makes) does not depend on the order a dispatcher happened to return them in:
        an in-process and a live dispatcher that decide the same face the same world. Like
        every consumer of the decision topics, the world acts on each event id once: an output
        sent again (a redelivered input re-sends what it produced) is counted and skipped.

        Raises:
            SimulationError: an output is not a schema-valid event.
        """
        for rec in sorted(outputs, key=_canonical):
            try:
                body = validate_schema(rec.event)
            except EventRejected as exc:
                msg = f"dispatcher output on {rec.topic!r} is invalid: {exc.message}"
                raise SimulationError(msg) from exc
            event_id = str(body["event_id"])
            if event_id in self._seen_outputs:
                self.stats["outputs_repeated"] += 1
                continue
            self._seen_outputs.add(event_id)
            kind = body["type"]
            if kind == "assignment_proposed":
                self._on_proposed(body)
            elif kind == "assignment_committed":
                self._on_committed(body)
            elif kind == "assignment_released":
                self._on_released(body)
            elif kind == "order_expired":
                self._on_expired(body)

    def open_order_ids(self) -> list[str]:
        """Orders placed and not yet delivered, cancelled or expired."""
        return [oid for oid, o in self.orders.items() if o.status == "placed"]

    def settled(self) -> bool:
        """Every order placed and finished: delivered, cancelled, expired, or old and not picked."""
        max_age_ms = round(self.config.max_order_age_s * 1000)
        for order in self.orders.values():
            if order.status == "scheduled":
                return False
            if order.status == "placed" and (
                order.picked or self.now_ms - order.plan.placed_ts_ms < max_age_ms
            ):
                return False
        return True

    def counts(self) -> dict[str, int]:
        """Orders by status (placed = open), for progress displays."""
        out: dict[str, int] = {}
        for order in self.orders.values():
            out[order.status] = out.get(order.status, 0) + 1
        return out

    # ------------------------------------------------------------------ scheduling and output
    def _at(self, ts_ms: int, kind: str, *args: Any, priority: int = _STATE) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (int(ts_ms), priority, self._seq, kind, args))

    def _emit(self, kind: str, event_id: str, **fields: Any) -> None:
        body = envelope(kind, event_id, self.now_ms, **fields)
        self._out.append(record(body, self.config.fleet.gateway_id))

    # ------------------------------------------------------------------ orders and merchants
    def _on_order_placed(self, order_id: str) -> None:
        order = self.orders[order_id]
        plan = order.plan
        order.status = "placed"
        self._emit(
            "order_created",
            f"{order_id}-created",
            order_id=order_id,
            merchant_id=plan.merchant_id,
            shard=plan.shard,
            pickup=point(*plan.pickup),
            dropoff=point(*plan.dropoff),
            promise_ts_ms=plan.promise_ts_ms,
            prep_estimate_s=plan.prep_estimate_s,
            n_items=plan.n_items,
            subtotal_cents=plan.subtotal_cents,
        )

    def _on_merchant_accepted(self, order_id: str) -> None:
        order = self.orders[order_id]
        if order.terminal:
            return
        self._emit(
            "merchant_accepted",
            f"{order_id}-accepted",
            order_id=order_id,
            merchant_id=order.plan.merchant_id,
            shard=order.plan.shard,
            estimated_ready_ts_ms=order.plan.estimated_ready_ts_ms,
        )

    def _on_order_ready(self, order_id: str) -> None:
        order = self.orders[order_id]
        if order.terminal:
            return
        self._emit(
            "order_ready",
            f"{order_id}-ready",
            order_id=order_id,
            merchant_id=order.plan.merchant_id,
            shard=order.plan.shard,
        )

    def _on_customer_cancel(self, order_id: str) -> None:
        order = self.orders[order_id]
        if order.terminal or order.picked:
            return
        order.status = "cancelled"
        self._emit(
            "order_cancelled",
            f"{order_id}-cancelled",
            order_id=order_id,
            shard=order.plan.shard,
            reason="customer",
        )
        if order.courier_id is not None:
            self._drop(order)

    # ------------------------------------------------------------------ courier shifts
    def _on_shift_start(self, courier_id: str) -> None:
        self._go_online(self.couriers[courier_id])

    def _on_shift_end(self, courier_id: str) -> None:
        courier = self.couriers[courier_id]
        if courier.online and courier.activity == "idle" and not courier.held:
            self._go_offline(courier)

    def _on_back_online(self, courier_id: str) -> None:
        courier = self.couriers[courier_id]
        if not courier.online and self.now_ms < courier.plan.shift_end_ts_ms:
            self._go_online(courier)

    def _go_online(self, courier: CityCourier) -> None:
        plan = courier.plan
        lat, lon = courier.position(self.now_ms)
        courier.leg = standing(lat, lon, self.now_ms)
        courier.online = True
        courier.session += 1
        courier.onlines += 1
        self._emit(
            "courier_online",
            f"{plan.courier_id}-on-{courier.onlines}",
            courier_id=plan.courier_id,
            **point(lat, lon),
            capacity=plan.capacity,
            vehicle=plan.vehicle,
            shift_end_ts_ms=plan.shift_end_ts_ms,
        )
        interval_ms = self.config.fleet.ping_interval_s * 1000
        first = self.now_ms + (courier.phase_ms - self.now_ms) % interval_ms
        self._at(first, "ping", plan.courier_id, courier.session, priority=_PING)

    def _go_offline(self, courier: CityCourier) -> None:
        lat, lon = courier.position(self.now_ms)
        courier.leg = standing(lat, lon, self.now_ms)
        courier.online = False
        courier.session += 1
        courier.version += 1
        courier.activity = "idle"
        courier.offlines += 1
        courier.pending.clear()
        self._emit(
            "courier_offline",
            f"{courier.courier_id}-off-{courier.offlines}",
            courier_id=courier.courier_id,
        )

    def _on_vanish(self, courier_id: str, session: int) -> None:
        courier = self.couriers[courier_id]
        if not courier.online or courier.session != session or courier.picked or not courier.held:
            return
        self.stats["offline_mid_route"] += 1
        for order_id in list(courier.held):
            self.stats["orders_abandoned"] += 1
            self._release_hold(self.orders[order_id])
        courier.stops.clear()
        self._go_offline(courier)
        break_s = float(self._incidents.uniform(*self.config.fleet.break_s_range))
        back = self.now_ms + round(break_s * 1000)
        if back < courier.plan.shift_end_ts_ms:
            self._at(back, "back_online", courier_id)

    # ------------------------------------------------------------------ pings
    def _on_ping(self, courier_id: str, session: int) -> None:
        courier = self.couriers[courier_id]
        if not courier.online or courier.session != session:
            return
        fleet = self.config.fleet
        now = self.now_ms
        east, north, u = self._noise.next()
        noise_m = fleet.gps_noise_m
        lat, lon = offset(*courier.position(now), east * noise_m, north * noise_m)
        fix: dict[str, Any] = {
            "courier_id": courier_id,
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "ts_ms": now,
        }
        if courier.leg.moving_at(now):
            fix["speed_mps"] = courier.leg_speed_mps
            fix["heading_deg"] = courier.leg_heading_deg
        else:
            fix["speed_mps"] = 0.0
        fix["accuracy_m"] = round(noise_m * (1.5 + u), 1)
        self._fixes.append(fix)
        boundary = -(-now // 1000) * 1000
        if self._flush_at != boundary:
            self._flush_at = boundary
            self._at(boundary, "flush", boundary, priority=_FLUSH)
        self._at(now + fleet.ping_interval_s * 1000, "ping", courier_id, session, priority=_PING)

    def _on_flush(self, boundary_ms: int) -> None:
        fixes, self._fixes = self._fixes, []
        prefix = self.config.id_prefix
        for part, i in enumerate(range(0, len(fixes), MAX_BATCH_FIXES)):
            suffix = f"-{part}" if part else ""
            self._emit(
                "courier_ping_batch",
                f"{prefix}pb-{boundary_ms}{suffix}",
                pings=fixes[i : i + MAX_BATCH_FIXES],
            )

    # ------------------------------------------------------------------ offers and answers
    def _on_proposed(self, body: dict[str, Any]) -> None:
        decision_id = str(body["decision_id"])
        if decision_id in self._offers or body["courier_id"] not in self.couriers:
            return
        self._offers[decision_id] = body
        delay = response_delay_ms(
            self.config.app, self._app, int(body["ts_ms"]), int(body["lease_expires_ts_ms"])
        )
        self._at(max(int(body["ts_ms"]) + delay, self.now_ms + 1), "respond", decision_id)

    def _load(self, courier: CityCourier) -> int:
        pending = {
            oid
            for orders, forget_ms in courier.pending.values()
            if forget_ms > self.now_ms
            for oid in orders
        }
        return len(set(courier.held) | pending)

    def _on_respond(self, decision_id: str) -> None:
        body = self._offers[decision_id]
        courier = self.couriers[body["courier_id"]]
        order_ids = tuple(str(o) for o in body["order_ids"])
        new = [oid for oid in order_ids if oid not in courier.held]
        lat, lon = courier.position(self.now_ms)
        reason = ""
        if not courier.online:
            reason = "offline"
        elif self.now_ms >= courier.plan.shift_end_ts_ms:
            reason = "shift_ending"
        elif any(
            oid not in self.orders or self.orders[oid].terminal or self.orders[oid].picked
            for oid in new
        ):
            reason = "order_unavailable"
        elif self._load(courier) + len(new) > courier.plan.capacity:
            reason = "at_capacity"
        else:
            target = self._first_pickup(body, new, (lat, lon))
            p = accept_probability(
                self.config.app,
                distance_m(lat, lon, *target),
                len(order_ids),
                courier.plan.accept_offset,
            )
            if float(self._app.random()) >= p:
                reason = "not_interested"
        if self.now_ms > int(body["lease_expires_ts_ms"]):
            self.stats["responses_late"] += 1
        fields: dict[str, Any] = {
            "decision_id": decision_id,
            "courier_id": courier.courier_id,
            "shard": body["shard"],
            "response": "decline" if reason else "accept",
        }
        if reason:
            fields["reason"] = reason
        else:
            forget = max(int(body["lease_expires_ts_ms"]), self.now_ms) + PENDING_GRACE_MS
            courier.pending[decision_id] = (order_ids, forget)
        self._emit(
            "assignment_response", make_id(f"{self.config.id_prefix}resp", decision_id), **fields
        )

    def _first_pickup(
        self, body: dict[str, Any], order_ids: list[str], fallback: tuple[float, float]
    ) -> tuple[float, float]:
        for stop in body.get("route", []):
            if stop["kind"] == "pickup" and stop["order_id"] in order_ids:
                return float(stop["lat"]), float(stop["lon"])
        for oid in order_ids:
            if oid in self.orders:
                return self.orders[oid].plan.pickup
        return fallback

    # ------------------------------------------------------------------ commits and releases
    def _on_committed(self, body: dict[str, Any]) -> None:
        courier = self.couriers.get(str(body["courier_id"]))
        if courier is None:
            return
        decision_id = str(body["decision_id"])
        courier.pending.pop(decision_id, None)
        if not courier.online:
            self.stats["commits_ignored_offline"] += 1
            return
        new: list[str] = []
        for raw in body["order_ids"]:
            order = self.orders.get(str(raw))
            if order is None or order.terminal or order.picked:
                continue
            if order.courier_id == courier.courier_id:
                order.decision_id = decision_id
                courier.held[order.plan.order_id] = decision_id
                continue
            if order.courier_id is not None:
                self.stats["orders_taken_from_other_courier"] += 1
                self._drop(order)
            new.append(order.plan.order_id)
        if not new:
            return
        for oid in new:
            order = self.orders[oid]
            order.courier_id = courier.courier_id
            order.decision_id = decision_id
            courier.held[oid] = decision_id
        courier.stops.extend(self._stops_for(body, new))
        if courier.activity == "idle":
            self._next_stop(courier)
        if float(self._incidents.random()) < self.config.fleet.offline_mid_route_prob:
            lat, lon = courier.position(self.now_ms)
            target = self.orders[new[0]].plan.pickup
            eta_s = distance_m(lat, lon, *target) * self.config.fleet.detour_factor
            eta_s /= courier.plan.speed_mps
            when = self.now_ms + round(
                max(eta_s, 10.0) * float(self._incidents.uniform(0.2, 0.8)) * 1000
            )
            self._at(when, "vanish", courier.courier_id, courier.session)

    def _stops_for(self, body: dict[str, Any], order_ids: list[str]) -> list[Stop]:
        """Stops of `order_ids` in the route's order, each pickup before its dropoff."""
        wanted = set(order_ids)
        stops: list[Stop] = []
        picked: set[str] = set()
        dropped: set[str] = set()

        def pickup(oid: str) -> None:
            if oid not in picked:
                picked.add(oid)
                stops.append(Stop("pickup", oid, *self.orders[oid].plan.pickup))

        for stop in body.get("route", []):
            oid = str(stop["order_id"])
            if oid not in wanted:
                continue
            if stop["kind"] == "pickup":
                pickup(oid)
            elif oid not in dropped:
                pickup(oid)
                dropped.add(oid)
                stops.append(Stop("dropoff", oid, *self.orders[oid].plan.dropoff))
        for oid in order_ids:
            pickup(oid)
        for oid in order_ids:
            if oid not in dropped:
                stops.append(Stop("dropoff", oid, *self.orders[oid].plan.dropoff))
        return stops

    def _on_released(self, body: dict[str, Any]) -> None:
        courier = self.couriers.get(str(body["courier_id"]))
        decision_id = str(body["decision_id"])
        if courier is not None:
            courier.pending.pop(decision_id, None)
        for raw in body["order_ids"]:
            order = self.orders.get(str(raw))
            if order is None or order.picked or order.decision_id != decision_id:
                continue
            self._drop(order)

    def _on_expired(self, body: dict[str, Any]) -> None:
        order = self.orders.get(str(body["order_id"]))
        if order is None or order.terminal or order.picked:
            return
        order.status = "expired"
        if order.courier_id is not None:
            self._drop(order)

    # ------------------------------------------------------------------ following the route
    def _release_hold(self, order: CityOrder) -> None:
        courier = self.couriers[str(order.courier_id)]
        courier.held.pop(order.plan.order_id, None)
        order.courier_id = None
        order.decision_id = None

    def _drop(self, order: CityOrder) -> None:
        """The holding courier stops serving `order` (not picked up) and re-plans if needed."""
        courier = self.couriers[str(order.courier_id)]
        self._release_hold(order)
        head = courier.stops[0] if courier.stops else None
        courier.stops = [s for s in courier.stops if s.order_id != order.plan.order_id]
        if head is not None and head.order_id == order.plan.order_id and courier.activity != "idle":
            lat, lon = courier.position(self.now_ms)
            courier.leg = standing(lat, lon, self.now_ms)
            courier.version += 1
            courier.activity = "idle"
            self._next_stop(courier)

    def _next_stop(self, courier: CityCourier) -> None:
        while courier.stops and courier.stops[0].order_id not in courier.held:
            courier.stops.pop(0)
        now = self.now_ms
        lat, lon = courier.position(now)
        courier.version += 1
        if not courier.stops:
            courier.leg = standing(lat, lon, now)
            courier.activity = "idle"
            if courier.online and now >= courier.plan.shift_end_ts_ms:
                self._go_offline(courier)
            return
        stop = courier.stops[0]
        fleet = self.config.fleet
        dist = distance_m(lat, lon, stop.lat, stop.lon)
        duration_ms = 0
        if dist > 1.0:
            speed = courier.plan.speed_mps * float(
                self._travel.lognormal(0.0, fleet.leg_speed_sigma)
            )
            duration_ms = max(1, round(dist * fleet.detour_factor / speed * 1000))
        courier.leg = Leg(lat, lon, stop.lat, stop.lon, now, now + duration_ms)
        courier.leg_speed_mps = round(min(courier.leg.road_speed_mps(fleet.detour_factor), 69.0), 2)
        courier.leg_heading_deg = round(courier.leg.heading_deg(), 1)
        courier.activity = "travel"
        self._at(now + duration_ms, "arrive", courier.courier_id, courier.version)

    def _handling_ms(self, bounds: tuple[float, float]) -> int:
        return round(float(self._travel.uniform(*bounds)) * 1000)

    def _on_arrive(self, courier_id: str, version: int) -> None:
        courier = self.couriers[courier_id]
        if courier.version != version:
            return
        stop = courier.stops[0]
        order = self.orders[stop.order_id]
        order.arrivals += 1
        self._emit(
            "delivery_arrived",
            f"{stop.order_id}-arrived-{stop.kind}-{order.arrivals}",
            order_id=stop.order_id,
            courier_id=courier_id,
            shard=order.plan.shard,
            stop=stop.kind,
        )
        fleet = self.config.fleet
        if stop.kind == "pickup":
            courier.activity = "wait"
            at = max(self.now_ms, order.plan.ready_ts_ms) + self._handling_ms(
                fleet.pickup_handling_s_range
            )
            self._at(at, "pick", courier_id, version)
        else:
            courier.activity = "handover"
            at = self.now_ms + self._handling_ms(fleet.dropoff_handling_s_range)
            self._at(at, "handover", courier_id, version)

    def _on_pick(self, courier_id: str, version: int) -> None:
        courier = self.couriers[courier_id]
        if courier.version != version:
            return
        stop = courier.stops.pop(0)
        order = self.orders[stop.order_id]
        order.picked = True
        courier.picked.add(stop.order_id)
        self._emit(
            "delivery_picked_up",
            f"{stop.order_id}-picked",
            order_id=stop.order_id,
            courier_id=courier_id,
            shard=order.plan.shard,
        )
        self._next_stop(courier)

    def _on_handover(self, courier_id: str, version: int) -> None:
        courier = self.couriers[courier_id]
        if courier.version != version:
            return
        stop = courier.stops.pop(0)
        order = self.orders[stop.order_id]
        order.status = "delivered"
        courier.picked.discard(stop.order_id)
        self._release_hold(order)
        self._emit(
            "delivery_delivered",
            f"{stop.order_id}-delivered",
            order_id=stop.order_id,
            courier_id=courier_id,
            shard=order.plan.shard,
        )
        self._next_stop(courier)


_APPLY_ORDER = {
    "assignment_released": 0,
    "order_expired": 0,
    "assignment_committed": 1,
    "assignment_proposed": 2,
}


def _canonical(rec: SimRecord) -> tuple[int, int, str]:
    kind = str(rec.event.get("type", ""))
    return (
        int(rec.event.get("ts_ms", 0)),
        _APPLY_ORDER.get(kind, 3),
        str(rec.event.get("event_id", "")),
    )
