"""Order and courier lifecycles: pure state machines over input events.

Events may be consumed in any order across topics, so the outcome depends only on the set of
events, never on their arrival order:

* an order's status is derived from its accepted events by event time (the furthest milestone
  reached; a repeated milestone counts from its earliest `(ts_ms, event_id)`);
* a cancellation and a pickup or delivery contradict each other: if the order was picked up or
  delivered at or before the (earliest) cancellation, the cancellation is invalid; otherwise every
  event after the cancellation is. The state keeps every event and derives the winners from all of
  them, so the final state never depends on arrival order. An event is reported (rejected, or
  *evicted* if it had been accepted) the first time it loses; in the rare case that a later
  arrival makes it win again, it counts again in the state, and its earlier report stands;
* courier status, capacity and vehicle are last-writer-wins by `(ts_ms, event_id)`.

Every accepted event remembers its `Source` (topic, partition, offset): the same record consumed
again after a restart raises `AlreadyApplied` (skip it), while the same `event_id` in another
record is a duplicate and is rejected.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from contracts.rejections import EventRejected, RejectReason
from contracts.validation import Event
from dispatch.live.records import OrderDispatch

#: How far before its creation an order event may be stamped (clock skew between services).
CREATION_SKEW_MS = 60_000
#: Event ids remembered per courier for duplicate detection.
COURIER_EVENT_MEMORY = 32
#: Most events one order accepts (its normal life has fewer than ten); more are refused, so that
#: no stream of events can grow an order's state past what a table record can hold.
MAX_ORDER_EVENTS = 32
#: Rejected records remembered per order (their place only), to recognise a redelivery.
REJECTED_MEMORY = 64


class AlreadyApplied(Exception):
    """This very record was applied before (a redelivery after a restart): skip it."""


@dataclass(frozen=True)
class Source:
    """Where an input record came from, and its bytes (for dead-lettering it later).

    `traceparent` is the record's validated W3C trace context header, if it had one
    (`contracts.tracing`): an order's records continue the trace of its `order_created`.
    `headers` are all of the record's headers, as they were (a dead letter carries them).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    traceparent: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def identity(self) -> Source:
        """This record's place only (topic, partition, offset), without its bytes."""
        return Source(self.topic, self.partition, self.offset)

    def same_record(self, other: Source | None) -> bool:
        """True if `other` is this very record (same topic, partition and offset)."""
        return other is not None and (self.topic, self.partition, self.offset) == (
            other.topic,
            other.partition,
            other.offset,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": _b64(self.key),
            "value": _b64(self.value),
            "traceparent": self.traceparent,
        }
        if self.headers:
            data["headers"] = [[name, _b64(raw)] for name, raw in self.headers]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        """Inverse of `to_dict`."""
        return cls(
            data["topic"],
            data["partition"],
            data["offset"],
            _unb64(data["key"]),
            _unb64(data["value"]),
            data.get("traceparent"),
            tuple((str(name), _unb64(raw) or b"") for name, raw in data.get("headers", ())),
        )


def _b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode() if raw is not None else None


def _unb64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


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


_PROGRESS = frozenset(("delivery_picked_up", "delivery_delivered"))


@dataclass(frozen=True)
class OrderEvent:
    """An accepted event of an order (everything but its creation)."""

    kind: str
    ts_ms: int
    event_id: str
    courier_id: str | None = None
    stop: str | None = None
    estimated_ready_ts_ms: int | None = None
    reason: str | None = None
    source: Source | None = None

    @property
    def rank(self) -> tuple[int, str]:
        """Event-time order: `(ts_ms, event_id)`."""
        return (self.ts_ms, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = {k: v for k, v in self.__dict__.items() if k != "source" and v is not None}
        if self.source is not None:
            data["source"] = self.source.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderEvent:
        """Inverse of `to_dict`."""
        source = data.get("source")
        fields = {k: v for k, v in data.items() if k != "source"}
        return cls(**fields, source=Source.from_dict(source) if source else None)

    @classmethod
    def of(cls, event: Event, source: Source | None) -> OrderEvent:
        """The accepted form of an input event."""
        return cls(
            kind=str(event["type"]),
            ts_ms=int(event["ts_ms"]),
            event_id=str(event["event_id"]),
            courier_id=event.get("courier_id"),
            stop=event.get("stop"),
            estimated_ready_ts_ms=event.get("estimated_ready_ts_ms"),
            reason=event.get("reason"),
            source=source,
        )


@dataclass(frozen=True)
class OrderState:
    """Everything known about one order, from its accepted events."""

    order_id: str
    shard: str
    merchant_id: str
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    placed_ts_ms: int
    created_event_id: str
    created_source: Source | None = None
    promise_ts_ms: int | None = None
    prep_estimate_s: float | None = None
    n_items: int | None = None
    all_events: tuple[OrderEvent, ...] = ()
    reported: tuple[str, ...] = ()
    rejected: tuple[Source, ...] = field(default=())
    dispatch: OrderDispatch = field(default_factory=OrderDispatch)

    @property
    def events(self) -> tuple[OrderEvent, ...]:
        """The events that count: all received ones minus the losers of conflicts."""
        return _resolve(self.all_events)[0]

    @property
    def lost_event_ids(self) -> frozenset[str]:
        """Ids of received events that currently lose a conflict."""
        return frozenset(e.event_id for e, _ in _resolve(self.all_events)[1])

    def first(self, kind: str, stop: str | None = None) -> OrderEvent | None:
        """Earliest counting event of `kind` (and `stop`), by event time."""
        found = [e for e in self.events if e.kind == kind and (stop is None or e.stop == stop)]
        return min(found, key=lambda e: e.rank) if found else None

    def ts(self, kind: str, stop: str | None = None) -> int | None:
        """Time of the earliest event of `kind`, or None."""
        event = self.first(kind, stop)
        return event.ts_ms if event is not None else None

    @property
    def status(self) -> OrderStatus:
        """The furthest milestone reached (cancellation overrides)."""
        kinds = {e.kind for e in self.events}
        if "order_cancelled" in kinds:
            return OrderStatus.CANCELLED
        if "delivery_delivered" in kinds:
            return OrderStatus.DELIVERED
        if "delivery_picked_up" in kinds:
            return OrderStatus.PICKED_UP
        if "order_ready" in kinds:
            return OrderStatus.READY
        if "merchant_accepted" in kinds:
            return OrderStatus.ACCEPTED
        return OrderStatus.PLACED

    @property
    def courier_id(self) -> str | None:
        """Courier of the newest pickup, arrival or delivery event."""
        with_courier = [e for e in self.events if e.courier_id is not None]
        return max(with_courier, key=lambda e: e.rank).courier_id if with_courier else None

    @property
    def estimated_ready_ts_ms(self) -> int | None:
        """The merchant's newest estimate of when the order is ready."""
        estimates = [e for e in self.events if e.estimated_ready_ts_ms is not None]
        if not estimates:
            return None
        return max(estimates, key=lambda e: e.rank).estimated_ready_ts_ms

    def seen(self, source: Source) -> bool:
        """True if this very record was applied or rejected before."""
        if source.same_record(self.created_source):
            return True
        return any(source.same_record(e.source) for e in self.all_events) or any(
            source.same_record(r) for r in self.rejected
        )

    @property
    def event_ids(self) -> frozenset[str]:
        """Ids of every received event, creation included."""
        return frozenset((self.created_event_id, *(e.event_id for e in self.all_events)))

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        data = {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("all_events", "rejected", "created_source", "dispatch")
        }
        data["dispatch"] = self.dispatch.to_dict()
        data["all_events"] = [e.to_dict() for e in self.all_events]
        data["rejected"] = [r.to_dict() for r in self.rejected]
        data["created_source"] = self.created_source.to_dict() if self.created_source else None
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> OrderState:
        """Inverse of `to_json`."""
        data: dict[str, Any] = orjson.loads(raw)
        data["all_events"] = tuple(OrderEvent.from_dict(e) for e in data["all_events"])
        data["reported"] = tuple(data["reported"])
        data["dispatch"] = OrderDispatch.from_dict(data["dispatch"])
        data["rejected"] = tuple(Source.from_dict(r) for r in data["rejected"])
        created = data["created_source"]
        data["created_source"] = Source.from_dict(created) if created else None
        return cls(**data)

    def public_view(self) -> dict[str, Any]:
        """What operators see of the order (no record bytes)."""
        return {
            "order_id": self.order_id,
            "shard": self.shard,
            "merchant_id": self.merchant_id,
            "status": self.status.value,
            "placed_ts_ms": self.placed_ts_ms,
            "promise_ts_ms": self.promise_ts_ms,
            "courier_id": self.courier_id,
            "events": sorted((e.kind, e.ts_ms, e.event_id) for e in self.events),
            "dispatch": self.dispatch.phase.value,
            "decision_id": self.dispatch.decision_id,
        }


@dataclass(frozen=True)
class OrderUpdate:
    """Result of applying one event: the new state, and which events (if any) lost.

    `rejected` is the new event's rejection (it was not accepted); `evicted` lists events accepted
    earlier that an event-time-earlier arrival has now made invalid.
    """

    state: OrderState
    rejected: EventRejected | None = None
    evicted: tuple[tuple[OrderEvent, EventRejected], ...] = ()


def create_order(event: Event, source: Source | None = None) -> OrderState:
    """The state of a newly created order."""
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
        created_event_id=str(event["event_id"]),
        created_source=source,
        promise_ts_ms=event.get("promise_ts_ms"),
        prep_estimate_s=event.get("prep_estimate_s"),
        n_items=event.get("n_items"),
    )


def apply_order_event(
    state: OrderState | None, event: Event, source: Source | None = None
) -> OrderUpdate:
    """Apply one schema-valid order event.

    Raises `EventRejected(UNKNOWN_ID)` for an event of an order that does not exist (yet) and
    `AlreadyApplied` for a record seen before; every other outcome is in the `OrderUpdate`. An
    event naming another shard than its order's is refused (`wrong_shard`).
    """
    kind = str(event["type"])
    event_id = str(event["event_id"])
    if state is not None and source is not None and state.seen(source):
        raise AlreadyApplied(f"{source.topic}[{source.partition}]@{source.offset}")
    if kind == "order_created":
        if state is None:
            return OrderUpdate(create_order(event, source))
        reason = (
            RejectReason.DUPLICATE_EVENT
            if event_id in state.event_ids
            else RejectReason.INVALID_TRANSITION
        )
        message = (
            f"event {event_id!r} already applied"
            if reason is RejectReason.DUPLICATE_EVENT
            else f"order {state.order_id!r} already exists"
        )
        return _reject(state, source, EventRejected(reason, message))
    if state is None:
        msg = f"{kind} for unknown order {event['order_id']!r}"
        raise EventRejected(RejectReason.UNKNOWN_ID, msg)
    if str(event["shard"]) != state.shard:
        # Another shard's key can share the order's partition: the order is found there, but
        # the event names a shard the order is not in.
        msg = f"{kind} names shard {event['shard']!r}; {state.order_id!r} is in {state.shard!r}"
        return _reject(state, source, EventRejected(RejectReason.WRONG_SHARD, msg))
    if event_id in state.event_ids:
        return _reject(
            state,
            source,
            EventRejected(RejectReason.DUPLICATE_EVENT, f"event {event_id!r} already applied"),
        )
    if len(state.all_events) >= MAX_ORDER_EVENTS:
        msg = f"order {state.order_id!r} already has {MAX_ORDER_EVENTS} events"
        return _reject(state, source, EventRejected(RejectReason.TOO_MANY_EVENTS, msg))
    new = OrderEvent.of(event, source)
    if new.ts_ms < state.placed_ts_ms - CREATION_SKEW_MS:
        msg = f"{kind} at {new.ts_ms} is before order {state.order_id!r} was placed"
        return _reject(state, source, EventRejected(RejectReason.INVALID_TRANSITION, msg))
    all_events = (*state.all_events, new)
    _, losers = _resolve(all_events)
    fresh = [(e, error) for e, error in losers if e.event_id not in state.reported]
    rejected = next((error for e, error in fresh if e is new), None)
    evicted = tuple((e, error) for e, error in fresh if e is not new)
    reported = (*state.reported, *(e.event_id for e, _ in fresh))
    return OrderUpdate(replace(state, all_events=all_events, reported=reported), rejected, evicted)


def _reject(state: OrderState, source: Source | None, error: EventRejected) -> OrderUpdate:
    """The rejection of `source`'s event; its place is remembered (the newest few only)."""
    if source is None:
        return OrderUpdate(state, error)
    rejected = (*state.rejected, source.identity)[-REJECTED_MEMORY:]
    return OrderUpdate(replace(state, rejected=rejected), error)


def _resolve(
    events: tuple[OrderEvent, ...],
) -> tuple[tuple[OrderEvent, ...], list[tuple[OrderEvent, EventRejected]]]:
    """Split events into the consistent ones and the losers of a cancel/progress conflict."""
    cancels = [e for e in events if e.kind == "order_cancelled"]
    if not cancels:
        return events, []
    cancel = min(cancels, key=lambda e: e.rank)
    progress = [e for e in events if e.kind in _PROGRESS]
    first_progress = min(progress, key=lambda e: e.rank) if progress else None
    losers: list[tuple[OrderEvent, EventRejected]] = []
    if first_progress is not None and first_progress.ts_ms <= cancel.ts_ms:
        done = first_progress.kind.removeprefix("delivery_")
        for c in cancels:
            msg = f"cannot cancel: the order was {done} at {first_progress.ts_ms}"
            losers.append((c, EventRejected(RejectReason.INVALID_TRANSITION, msg)))
    else:
        for e in events:
            if e.kind != "order_cancelled" and e.ts_ms > cancel.ts_ms:
                msg = f"{e.kind} at {e.ts_ms} after the order was cancelled at {cancel.ts_ms}"
                losers.append((e, EventRejected(RejectReason.INVALID_TRANSITION, msg)))
    lost = {id(e) for e, _ in losers}
    return tuple(e for e in events if id(e) not in lost), losers


@dataclass
class ParkedOutcome:
    """The result of `apply_parked`.

    Attributes:
        state: the order state after the parked events.
        accepted: indices (into the parked list) of the events accepted, in the order applied.
        rejected: parked events rejected: index and error.
        evicted: events accepted earlier that lost to a parked one, with the error to report.
    """

    state: OrderState
    accepted: list[int] = field(default_factory=list)
    rejected: list[tuple[int, EventRejected]] = field(default_factory=list)
    evicted: list[tuple[OrderEvent, EventRejected]] = field(default_factory=list)


def apply_parked(state: OrderState, parked: Sequence[tuple[Event, Source | None]]) -> ParkedOutcome:
    """Apply events that arrived before their order, in `(ts_ms, event_id)` order."""
    outcome = ParkedOutcome(state)
    order = sorted(
        range(len(parked)),
        key=lambda i: (int(parked[i][0]["ts_ms"]), str(parked[i][0]["event_id"])),
    )
    for i in order:
        event, source = parked[i]
        try:
            update = apply_order_event(outcome.state, event, source)
        except AlreadyApplied:
            continue
        outcome.state = update.state
        if update.rejected is not None:
            outcome.rejected.append((i, update.rejected))
        else:
            outcome.accepted.append(i)
        outcome.evicted.extend(update.evicted)
    return outcome


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
    capacity_rank: tuple[int, str]
    vehicle: str
    vehicle_rank: tuple[int, str]
    shard: str | None
    shift_end_ts_ms: int | None = None
    recent: tuple[tuple[str, str], ...] = ()  # (event_id, "topic:partition:offset")
    epoch: int = 0  # incremented on every change of shard
    shard_ts_ms: int = 0  # event time of the fix that placed the courier in `shard`

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes) -> CourierState:
        """Inverse of `to_json`."""
        data: dict[str, Any] = orjson.loads(raw)
        data["status"] = CourierStatus(data["status"])
        data["capacity_rank"] = tuple(data["capacity_rank"])
        data["vehicle_rank"] = tuple(data["vehicle_rank"])
        data["recent"] = tuple(tuple(x) for x in data["recent"])
        return cls(**data)


def _where(source: Source | None) -> str:
    return f"{source.topic}:{source.partition}:{source.offset}" if source is not None else ""


def apply_courier_event(
    state: CourierState | None, event: Event, shard: str | None, source: Source | None = None
) -> CourierState:
    """The courier's state after `event`; `shard` is the shard of the event's position, if any.

    Raises `EventRejected` for unknown couriers (anything before a first `courier_online`) and
    duplicate event ids, `AlreadyApplied` for a record seen before.
    """
    kind = event["type"]
    event_id = str(event["event_id"])
    rank = (int(event["ts_ms"]), event_id)
    where = _where(source)
    if state is None:
        if kind != "courier_online":
            msg = f"{kind} for unknown courier {event['courier_id']!r}"
            raise EventRejected(RejectReason.UNKNOWN_ID, msg)
        return CourierState(
            courier_id=str(event["courier_id"]),
            status=CourierStatus.ONLINE,
            status_ts_ms=rank[0],
            status_event_id=event_id,
            capacity=int(event["capacity"]),
            capacity_rank=rank,
            vehicle=str(event["vehicle"]),
            vehicle_rank=rank,
            shard=shard,
            shift_end_ts_ms=event.get("shift_end_ts_ms"),
            recent=((event_id, where),),
            shard_ts_ms=rank[0] if shard is not None else 0,
        )
    for seen_id, seen_where in state.recent:
        if where and seen_where == where:
            raise AlreadyApplied(where)
        if seen_id == event_id:
            raise EventRejected(RejectReason.DUPLICATE_EVENT, f"event {event_id!r} already applied")
    changes: dict[str, Any] = {"recent": (*state.recent, (event_id, where))[-COURIER_EVENT_MEMORY:]}
    if kind in ("courier_online", "courier_offline") and rank > (
        state.status_ts_ms,
        state.status_event_id,
    ):
        changes["status"] = (
            CourierStatus.ONLINE if kind == "courier_online" else CourierStatus.OFFLINE
        )
        changes["status_ts_ms"] = rank[0]
        changes["status_event_id"] = event_id
        if kind == "courier_online":
            changes["shift_end_ts_ms"] = event.get("shift_end_ts_ms")
            if rank[0] >= state.shard_ts_ms:
                changes["shard"] = shard
                changes["shard_ts_ms"] = rank[0]
    if "capacity" in event and rank > state.capacity_rank:
        changes["capacity"] = int(event["capacity"])
        changes["capacity_rank"] = rank
    if "vehicle" in event and rank > state.vehicle_rank:
        changes["vehicle"] = str(event["vehicle"])
        changes["vehicle_rank"] = rank
    return replace(state, **changes)
