"""Typed records of every event, kept equal to the JSON Schemas by a test (the schemas win).

No `from __future__ import annotations` here: TypedDict needs real annotations to tell
required keys from `NotRequired` ones.
"""

from typing import Any, Literal, NotRequired, TypedDict

from contracts.schemas import SCHEMA_VERSION


class Point(TypedDict):
    """A WGS84 position in degrees."""

    lat: float
    lon: float


class PingFix(TypedDict):
    """One fix inside a `courier_ping_batch`."""

    courier_id: str
    lat: float
    lon: float
    ts_ms: int
    speed_mps: NotRequired[float]
    heading_deg: NotRequired[float]
    accuracy_m: NotRequired[float]


class RouteStop(TypedDict):
    """A planned stop of an assignment's route."""

    kind: Literal["pickup", "dropoff"]
    order_id: str
    lat: float
    lon: float
    planned_ts_ms: int


class Eta(TypedDict):
    """ETA quantiles in seconds from the decision time."""

    p50_s: float
    p90_s: float
    fallback_used: NotRequired[bool]
    fallback_reason: NotRequired[str | None]


class Explanation(TypedDict):
    """Why a decision was made: its reason, cost terms (minutes, named `<term>_min`), runner-up."""

    reason: str
    terms: dict[str, float]
    runner_up_courier_id: NotRequired[str | None]
    runner_up_cost: NotRequired[float | None]


class Envelope(TypedDict):
    """What every event carries besides its `type` (see `envelope`)."""

    event_id: str
    v: int
    ts_ms: int


class AssignmentCommitted(Envelope):
    """The decision downstream reads: the courier accepted the bundle. One live commit per order."""

    type: Literal["assignment_committed"]
    decision_id: str
    shard: str
    shard_generation: int
    order_ids: list[str]
    courier_id: str
    route: list[RouteStop]
    policy_version: NotRequired[str]
    model_version: NotRequired[str]


class AssignmentProposed(Envelope):
    """An offer of a bundle of orders to a courier; both are leased until the lease expires."""

    type: Literal["assignment_proposed"]
    decision_id: str
    shard: str
    shard_generation: int
    order_ids: list[str]
    courier_id: str
    lease_expires_ts_ms: int
    route: list[RouteStop]
    etas: NotRequired[dict[str, Eta]]
    cost: float
    explanation: Explanation
    model_version: str
    policy_version: str


class AssignmentReleased(Envelope):
    """An assignment ended without delivery; its orders are dispatched again."""

    type: Literal["assignment_released"]
    decision_id: str
    shard: str
    shard_generation: NotRequired[int]
    order_ids: list[str]
    courier_id: str
    reason: Literal[
        "declined",
        "lease_expired",
        "courier_offline",
        "order_cancelled",
        "superseded",
        "shard_moved",
    ]


class AssignmentResponse(Envelope):
    """The courier app's answer to an offer."""

    type: Literal["assignment_response"]
    decision_id: str
    courier_id: str
    shard: str
    response: Literal["accept", "decline"]
    reason: NotRequired[str]


class CourierCapacity(Envelope):
    """A courier's carrying capacity changed."""

    type: Literal["courier_capacity"]
    courier_id: str
    capacity: int


class CourierHandoff(Envelope):
    """A courier crossed from one shard into another."""

    type: Literal["courier_handoff"]
    courier_id: str
    from_shard: str | None
    to_shard: str


class CourierOffline(Envelope):
    """A courier ended a shift or went unavailable."""

    type: Literal["courier_offline"]
    courier_id: str


class CourierOnline(Envelope):
    """A courier started a shift and is available for work."""

    type: Literal["courier_online"]
    courier_id: str
    lat: float
    lon: float
    capacity: int
    vehicle: Literal["walk", "bike", "ebike", "scooter", "car"]
    shift_end_ts_ms: NotRequired[int]


class CourierPing(Envelope):
    """One location fix from a courier's device."""

    type: Literal["courier_ping"]
    courier_id: str
    lat: float
    lon: float
    speed_mps: NotRequired[float]
    heading_deg: NotRequired[float]
    accuracy_m: NotRequired[float]


class CourierPingBatch(Envelope):
    """Fixes of one or many couriers sent together, e.g. a gateway's pings of one second."""

    type: Literal["courier_ping_batch"]
    pings: list[PingFix]


class CourierSighting(Envelope):
    """A shard saw couriers it did not hold, all of the record's partition (internal)."""

    type: Literal["courier_sighting"]
    shard: str
    couriers: list[dict[str, Any]]


class CourierStateUpdate(Envelope):
    """Courier status for one shard (internal), from the directory or the shard it leaves."""

    type: Literal["courier_state_update"]
    courier_id: str
    shard: str
    kind: Literal["status", "arrived", "left", "handover"]
    status: Literal["online", "offline"]
    capacity: int
    vehicle: Literal["walk", "bike", "ebike", "scooter", "car"]
    shift_end_ts_ms: NotRequired[int | None]
    status_ts_ms: int
    epoch: NotRequired[int]
    from_shard: NotRequired[str | None]
    to_shard: NotRequired[str | None]


class CourierVehicle(Envelope):
    """A courier switched vehicle."""

    type: Literal["courier_vehicle"]
    courier_id: str
    vehicle: Literal["walk", "bike", "ebike", "scooter", "car"]


class DeliveryArrived(Envelope):
    """A courier arrived at a stop of an order."""

    type: Literal["delivery_arrived"]
    order_id: str
    courier_id: str
    shard: str
    stop: Literal["pickup", "dropoff"]


class DeliveryDelivered(Envelope):
    """A courier handed an order to the customer."""

    type: Literal["delivery_delivered"]
    order_id: str
    courier_id: str
    shard: str


class DeliveryPickedUp(Envelope):
    """A courier picked up an order."""

    type: Literal["delivery_picked_up"]
    order_id: str
    courier_id: str
    shard: str


class DispatchControl(Envelope):
    """Runtime policy flags for one shard (or `*` for every shard the worker owns)."""

    type: Literal["dispatch_control"]
    shard: str
    policy_version: str
    batching_enabled: NotRequired[bool]
    max_detour_s: NotRequired[float]
    weights: NotRequired[dict[str, Any]]


class DispatchTick(Envelope):
    """Time for one shard to decide, from the ticker (wall clock) or a simulator (event time)."""

    type: Literal["dispatch_tick"]
    shard: str


class EtaUpdate(Envelope):
    """Current delivery ETA of a live order for customer tracking."""

    type: Literal["eta_update"]
    order_id: str
    shard: str
    dropoff_p50_ts_ms: int
    dropoff_p90_ts_ms: int
    fallback_used: bool
    fallback_reason: NotRequired[str | None]
    model_version: str


class MerchantAccepted(Envelope):
    """The merchant accepted an order (and may estimate when it is ready)."""

    type: Literal["merchant_accepted"]
    order_id: str
    merchant_id: str
    shard: str
    estimated_ready_ts_ms: NotRequired[int]


class OrderCancelled(Envelope):
    """An order was cancelled."""

    type: Literal["order_cancelled"]
    order_id: str
    shard: str
    reason: Literal["customer", "merchant", "ops", "timeout", "other"]


class OrderCreated(Envelope):
    """A customer placed an order at a merchant."""

    type: Literal["order_created"]
    order_id: str
    merchant_id: str
    shard: str
    pickup: Point
    dropoff: Point
    promise_ts_ms: NotRequired[int]
    prep_estimate_s: NotRequired[float]
    n_items: NotRequired[int]
    subtotal_cents: NotRequired[int]


class OrderExpired(Envelope):
    """The dispatcher gave up on an order it could not assign in time (final)."""

    type: Literal["order_expired"]
    order_id: str
    shard: str
    reason: Literal["max_age", "promise_unreachable", "no_courier"]
    detail: NotRequired[str]


class OrderReady(Envelope):
    """The merchant marked an order ready for pickup."""

    type: Literal["order_ready"]
    order_id: str
    merchant_id: str
    shard: str


class SurgeUpdate(Envelope):
    """Supply/demand state and price multiplier of a zone."""

    type: Literal["surge_update"]
    zone: str
    shard: str
    supply: int
    demand: int
    multiplier: float


#: Record type of every event type with a schema.
RECORD_TYPES: dict[str, type] = {
    "assignment_committed": AssignmentCommitted,
    "assignment_proposed": AssignmentProposed,
    "assignment_released": AssignmentReleased,
    "assignment_response": AssignmentResponse,
    "courier_capacity": CourierCapacity,
    "courier_handoff": CourierHandoff,
    "courier_offline": CourierOffline,
    "courier_online": CourierOnline,
    "courier_ping": CourierPing,
    "courier_ping_batch": CourierPingBatch,
    "courier_sighting": CourierSighting,
    "courier_state_update": CourierStateUpdate,
    "courier_vehicle": CourierVehicle,
    "delivery_arrived": DeliveryArrived,
    "delivery_delivered": DeliveryDelivered,
    "delivery_picked_up": DeliveryPickedUp,
    "dispatch_control": DispatchControl,
    "dispatch_tick": DispatchTick,
    "eta_update": EtaUpdate,
    "merchant_accepted": MerchantAccepted,
    "order_cancelled": OrderCancelled,
    "order_created": OrderCreated,
    "order_expired": OrderExpired,
    "order_ready": OrderReady,
    "surge_update": SurgeUpdate,
}


def envelope(event_type: str, event_id: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """An event of `event_type`: the envelope every event carries, then its own `fields`.

    The one place events are built: `event_id`, `type`, `v` (the current schema version) and
    `ts_ms` (event time, epoch milliseconds) first, as every schema requires.

    >>> envelope("dispatch_tick", "tick:dr5r:1", 1, shard="dr5r")
    {'event_id': 'tick:dr5r:1', 'type': 'dispatch_tick', 'v': 1, 'ts_ms': 1, 'shard': 'dr5r'}
    """
    return {
        "event_id": event_id,
        "type": event_type,
        "v": SCHEMA_VERSION,
        "ts_ms": int(ts_ms),
        **fields,
    }
