"""Order and courier lifecycles: pure state machines over input events.

`apply_order_event` / `apply_courier_event` return the new state or raise `EventRejected` (unknown
id, duplicate `event_id`, invalid transition). Events may arrive out of event-time order:

* order milestones (accepted, ready, arrived, picked up, delivered, cancelled) keep their own
  timestamps; a late event fills its milestone without moving the status backwards, and a repeated
  milestone keeps the earliest `(ts_ms, event_id)`;
* contradictions are decided by arrival order, which Kafka fixes per partition: a cancelled order
  accepts no pickup or delivery, and a picked-up or delivered order accepts no cancellation;
* courier status, capacity and vehicle are last-writer-wins by `(ts_ms, event_id)`.

Replaying the same partition therefore always yields the same states.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from contracts.validation import Event, EventRejected, RejectReason

#: How far before its creation an order event may be stamped (clock skew between services).
CREATION_SKEW_MS = 60_000
#: Event ids remembered per courier for duplicate detection.
COURIER_EVENT_MEMORY = 32


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; `delivered` and `cancelled` are terminal."""

    PLACED = "placed"
    ACCEPTED = "accepted"
    READY = "ready"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for statuses an order never leaves."""
        return self in (OrderStatus.DELIVERED, OrderStatus.CANCELLED)


#: Milestone field set by each order event type.
_MILESTONE_OF = {
    "merchant_accepted": "accepted_ts_ms",
    "order_ready": "ready_ts_ms",
    "delivery_picked_up": "picked_up_ts_ms",
    "delivery_delivered": "delivered_ts_ms",
    "order_cancelled": "cancelled_ts_ms",
}
ORDER_EVENT_TYPES = frozenset(
    ("order_created", "delivery_arrived", *_MILESTONE_OF)
)


@dataclass(frozen=True)
class Milestone:
    """When something happened to an order, and which event said so."""

    ts_ms: int
    event_id: str

    def earlier(self, other: Milestone | None) -> Milestone:
        """The earlier of two milestones by `(ts_ms, event_id)`."""
        if other is None or (self.ts_ms, self.event_id) < (other.ts_ms, other.event_id):
            return self
        return other


@dataclass(frozen=True)
class OrderState:
    """Everything known about one order, from its events."""

    order_id: str
    shard: str
    merchant_id: str
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    placed_ts_ms: int
    promise_ts_ms: int | None = None
    prep_estimate_s: float | None = None
    n_items: int | None = None
    estimated_ready_ts_ms: int | None = None
    courier_id: str | None = None
    cancel_reason: str | None = None
    milestones: dict[str, Milestone] = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()

    def ts(self, milestone: str) -> int | None:
        """Time of a milestone (`accepted_ts_ms`, `ready_ts_ms`, ...) or None if not reached."""
        m = self.milestones.get(milestone)
        return m.ts_ms if m is not None else None

    @property
    def status(self) -> OrderStatus:
        """The furthest milestone reached (cancellation overrides)."""
        has = self.milestones.__contains__
        if has("cancelled_ts_ms"):
            return OrderStatus.CANCELLED
        if has("delivered_ts_ms"):
            return OrderStatus.DELIVERED
        if has("picked_up_ts_ms"):
            return OrderStatus.PICKED_UP
        if has("ready_ts_ms"):
            return OrderStatus.READY
        if has("accepted_ts_ms"):
            return OrderStatus.ACCEPTED
        return OrderStatus.PLACED

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        data = asdict(self)
        data["event_ids"] = list(self.event_ids)
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> OrderState:
        """Inverse of `to_json`."""
        data: dict[str, Any] = orjson.loads(raw)
        data["milestones"] = {k: Milestone(**v) for k, v in data["milestones"].items()}
        data["event_ids"] = tuple(data["event_ids"])
        return cls(**data)


def apply_order_event(state: OrderState | None, event: Event) -> OrderState:
    """The order's state after `event`; raises `EventRejected` if the event cannot apply."""
    kind = event["type"]
    event_id = str(event["event_id"])
    if kind == "order_created":
        return _create_order(state, event)
    if state is None:
        msg = f"{kind} for unknown order {event['order_id']!r}"
        raise EventRejected(RejectReason.UNKNOWN_ID, msg)
    if event_id in state.event_ids:
        raise EventRejected(RejectReason.DUPLICATE_EVENT, f"event {event_id!r} already applied")
    ts_ms = int(event["ts_ms"])
    if ts_ms < state.placed_ts_ms - CREATION_SKEW_MS:
        msg = f"{kind} at {ts_ms} is before order {state.order_id!r} was placed"
        raise EventRejected(RejectReason.INVALID_TRANSITION, msg)
    status = state.status
    if kind in ("delivery_picked_up", "delivery_delivered", "delivery_arrived") and (
        status is OrderStatus.CANCELLED
    ):
        msg = f"{kind} for cancelled order {state.order_id!r}"
        raise EventRejected(RejectReason.INVALID_TRANSITION, msg)
    if kind == "order_cancelled" and status in (OrderStatus.PICKED_UP, OrderStatus.DELIVERED):
        msg = f"cannot cancel order {state.order_id!r}: already {status.value}"
        raise EventRejected(RejectReason.INVALID_TRANSITION, msg)
    if kind in ("merchant_accepted", "order_ready") and status is OrderStatus.CANCELLED:
        cancelled = state.ts("cancelled_ts_ms")
        if cancelled is not None and ts_ms >= cancelled:
            msg = f"{kind} after order {state.order_id!r} was cancelled"
            raise EventRejected(RejectReason.INVALID_TRANSITION, msg)
    changes: dict[str, Any] = {"event_ids": (*state.event_ids, event_id)}
    milestones = dict(state.milestones)
    if kind == "delivery_arrived":
        name = f"arrived_{event['stop']}_ts_ms"
        milestones[name] = Milestone(ts_ms, event_id).earlier(milestones.get(name))
    else:
        name = _MILESTONE_OF[kind]
        milestones[name] = Milestone(ts_ms, event_id).earlier(milestones.get(name))
    if kind == "merchant_accepted" and "estimated_ready_ts_ms" in event:
        changes["estimated_ready_ts_ms"] = int(event["estimated_ready_ts_ms"])
    if kind in ("delivery_picked_up", "delivery_delivered", "delivery_arrived"):
        changes["courier_id"] = str(event["courier_id"])
    if kind == "order_cancelled":
        changes["cancel_reason"] = str(event["reason"])
    changes["milestones"] = milestones
    return replace(state, **changes)


def _create_order(state: OrderState | None, event: Event) -> OrderState:
    event_id = str(event["event_id"])
    if state is not None:
        if event_id in state.event_ids:
            msg = f"event {event_id!r} already applied"
            raise EventRejected(RejectReason.DUPLICATE_EVENT, msg)
        msg = f"order {state.order_id!r} already exists"
        raise EventRejected(RejectReason.INVALID_TRANSITION, msg)
    pickup, dropoff = event["pickup"], event["dropoff"]
    return OrderState(
        order_id=str(event["order_id"]),
        shard=str(event["shard"]),
        merchant_id=str(event["merchant_id"]),
        pickup_lat=float(pickup["lat"]),
        pickup_lon=float(pickup["lon"]),
        dropoff_lat=float(dropoff["lat"]),
        dropoff_lon=float(dropoff["lon"]),
        placed_ts_ms=int(event["ts_ms"]),
        promise_ts_ms=event.get("promise_ts_ms"),
        prep_estimate_s=event.get("prep_estimate_s"),
        n_items=event.get("n_items"),
        event_ids=(event_id,),
    )


class CourierStatus(enum.StrEnum):
    """Whether a courier can take work."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class CourierState:
    """A courier's status as known by the courier directory (keyed by courier)."""

    courier_id: str
    status: CourierStatus
    status_ts_ms: int
    status_event_id: str
    capacity: int
    capacity_ts_ms: int
    vehicle: str
    vehicle_ts_ms: int
    shard: str | None
    shift_end_ts_ms: int | None = None
    recent_event_ids: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        data = asdict(self)
        data["recent_event_ids"] = list(self.recent_event_ids)
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> CourierState:
        """Inverse of `to_json`."""
        data: dict[str, Any] = orjson.loads(raw)
        data["status"] = CourierStatus(data["status"])
        data["recent_event_ids"] = tuple(data["recent_event_ids"])
        return cls(**data)


COURIER_EVENT_TYPES = frozenset(
    ("courier_online", "courier_offline", "courier_capacity", "courier_vehicle")
)


def apply_courier_event(state: CourierState | None, event: Event, shard: str | None) -> CourierState:
    """The courier's state after `event`; `shard` is the shard of the event's position, if any.

    Raises `EventRejected` for unknown couriers (anything before a first `courier_online`) and
    duplicate event ids.
    """
    kind = event["type"]
    event_id = str(event["event_id"])
    ts_ms = int(event["ts_ms"])
    if state is None:
        if kind != "courier_online":
            msg = f"{kind} for unknown courier {event['courier_id']!r}"
            raise EventRejected(RejectReason.UNKNOWN_ID, msg)
        return CourierState(
            courier_id=str(event["courier_id"]),
            status=CourierStatus.ONLINE,
            status_ts_ms=ts_ms,
            status_event_id=event_id,
            capacity=int(event["capacity"]),
            capacity_ts_ms=ts_ms,
            vehicle=str(event["vehicle"]),
            vehicle_ts_ms=ts_ms,
            shard=shard,
            shift_end_ts_ms=event.get("shift_end_ts_ms"),
            recent_event_ids=(event_id,),
        )
    if event_id in state.recent_event_ids:
        raise EventRejected(RejectReason.DUPLICATE_EVENT, f"event {event_id!r} already applied")
    changes: dict[str, Any] = {
        "recent_event_ids": (*state.recent_event_ids, event_id)[-COURIER_EVENT_MEMORY:]
    }
    newer_status = (ts_ms, event_id) > (state.status_ts_ms, state.status_event_id)
    if kind in ("courier_online", "courier_offline") and newer_status:
        changes["status"] = CourierStatus.ONLINE if kind == "courier_online" else CourierStatus.OFFLINE
        changes["status_ts_ms"] = ts_ms
        changes["status_event_id"] = event_id
        if kind == "courier_online":
            changes["shard"] = shard
            changes["shift_end_ts_ms"] = event.get("shift_end_ts_ms")
    if "capacity" in event and ts_ms >= state.capacity_ts_ms:
        changes["capacity"] = int(event["capacity"])
        changes["capacity_ts_ms"] = ts_ms
    if "vehicle" in event and ts_ms >= state.vehicle_ts_ms:
        changes["vehicle"] = str(event["vehicle"])
        changes["vehicle_ts_ms"] = ts_ms
    return replace(state, **changes)
