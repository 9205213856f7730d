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


class AssignmentCommitted(TypedDict):
    """The decision downstream reads: the courier accepted the bundle. One live commit per order."""

    event_id: str
    type: Literal["assignment_committed"]
    v: int
    ts_ms: int
    decision_id: str
    shard: str
    shard_generation: int
    order_ids: list[str]
    courier_id: str
    route: list[RouteStop]
    policy_version: NotRequired[str]
    model_version: NotRequired[str]


class AssignmentProposed(TypedDict):
    """An offer of a bundle of orders to a courier; both are leased until the lease expires."""

    event_id: str
    type: Literal["assignment_proposed"]
    v: int
    ts_ms: int
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


class AssignmentReleased(TypedDict):
    """An assignment ended without delivery; its orders are dispatched again."""

    event_id: str
    type: Literal["assignment_released"]
    v: int
    ts_ms: int
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


class AssignmentResponse(TypedDict):
    """The courier app's answer to an offer."""

    event_id: str
    type: Literal["assignment_response"]
    v: int
    ts_ms: int
    decision_id: str
    courier_id: str
    shard: str
    response: Literal["accept", "decline"]
    reason: NotRequired[str]


class CourierCapacity(TypedDict):
    """A courier's carrying capacity changed."""

    event_id: str
    type: Literal["courier_capacity"]
    v: int
    ts_ms: int
    courier_id: str
    capacity: int


class CourierHandoff(TypedDict):
    """A courier crossed from one shard into another."""

    event_id: str
    type: Literal["courier_handoff"]
    v: int
    ts_ms: int
    courier_id: str
    from_shard: str | None
    to_shard: str


class CourierOffline(TypedDict):
    """A courier ended a shift or went unavailable."""

    event_id: str
    type: Literal["courier_offline"]
    v: int
    ts_ms: int
    courier_id: str


class CourierOnline(TypedDict):
    """A courier started a shift and is available for work."""

    event_id: str
    type: Literal["courier_online"]
    v: int
    ts_ms: int
    courier_id: str
    lat: float
    lon: float
    capacity: int
    vehicle: Literal["walk", "bike", "ebike", "scooter", "car"]
    shift_end_ts_ms: NotRequired[int]


class CourierPing(TypedDict):
    """One location fix from a courier's device."""

    event_id: str
    type: Literal["courier_ping"]
    v: int
    ts_ms: int
    courier_id: str
    lat: float
    lon: float
    speed_mps: NotRequired[float]
    heading_deg: NotRequired[float]
    accuracy_m: NotRequired[float]


class CourierPingBatch(TypedDict):
    """Fixes of one or many couriers sent together, e.g. a gateway's pings of one second."""

    event_id: str
    type: Literal["courier_ping_batch"]
    v: int
    ts_ms: int
    pings: list[PingFix]


class CourierSighting(TypedDict):
    """A shard saw couriers it did not hold, all of the record's partition (internal)."""

    event_id: str
    type: Literal["courier_sighting"]
    v: int
    ts_ms: int
    shard: str
    couriers: list[dict[str, Any]]


class CourierStateUpdate(TypedDict):
    """Courier status for one shard (internal), from the directory or the shard it leaves."""

    event_id: str
    type: Literal["courier_state_update"]
    v: int
    ts_ms: int
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


class CourierVehicle(TypedDict):
    """A courier switched vehicle."""

    event_id: str
    type: Literal["courier_vehicle"]
    v: int
    ts_ms: int
    courier_id: str
    vehicle: Literal["walk", "bike", "ebike", "scooter", "car"]


class DeliveryArrived(TypedDict):
    """A courier arrived at a stop of an order."""

    event_id: str
    type: Literal["delivery_arrived"]
    v: int
    ts_ms: int
    order_id: str
    courier_id: str
    shard: str
    stop: Literal["pickup", "dropoff"]


class DeliveryDelivered(TypedDict):
    """A courier handed an order to the customer."""

    event_id: str
    type: Literal["delivery_delivered"]
    v: int
    ts_ms: int
    order_id: str
    courier_id: str
    shard: str


class DeliveryPickedUp(TypedDict):
    """A courier picked up an order."""

    event_id: str
    type: Literal["delivery_picked_up"]
    v: int
    ts_ms: int
    order_id: str
    courier_id: str
    shard: str


class DispatchControl(TypedDict):
    """Runtime policy flags for one shard (or `*` for every shard the worker owns)."""

    event_id: str
    type: Literal["dispatch_control"]
    v: int
    ts_ms: int
    shard: str
    policy_version: str
    batching_enabled: NotRequired[bool]
    max_detour_s: NotRequired[float]
    weights: NotRequired[dict[str, Any]]


class DispatchTick(TypedDict):
    """Time for one shard to decide, from the ticker (wall clock) or a simulator (event time)."""

    event_id: str
    type: Literal["dispatch_tick"]
    v: int
    ts_ms: int
    shard: str


class EtaUpdate(TypedDict):
    """Current delivery ETA of a live order for customer tracking."""

    event_id: str
    type: Literal["eta_update"]
    v: int
    ts_ms: int
    order_id: str
    shard: str
    dropoff_p50_ts_ms: int
    dropoff_p90_ts_ms: int
    fallback_used: bool
    fallback_reason: NotRequired[str | None]
    model_version: str


class MerchantAccepted(TypedDict):
    """The merchant accepted an order (and may estimate when it is ready)."""

    event_id: str
    type: Literal["merchant_accepted"]
    v: int
    ts_ms: int
    order_id: str
    merchant_id: str
    shard: str
    estimated_ready_ts_ms: NotRequired[int]


class OrderCancelled(TypedDict):
    """An order was cancelled."""

    event_id: str
    type: Literal["order_cancelled"]
    v: int
    ts_ms: int
    order_id: str
    shard: str
    reason: Literal["customer", "merchant", "ops", "timeout", "other"]


class OrderCreated(TypedDict):
    """A customer placed an order at a merchant."""

    event_id: str
    type: Literal["order_created"]
    v: int
    ts_ms: int
    order_id: str
    merchant_id: str
    shard: str
    pickup: Point
    dropoff: Point
    promise_ts_ms: NotRequired[int]
    prep_estimate_s: NotRequired[float]
    n_items: NotRequired[int]
    subtotal_cents: NotRequired[int]


class OrderExpired(TypedDict):
    """The dispatcher gave up on an order it could not assign in time (final)."""

    event_id: str
    type: Literal["order_expired"]
    v: int
    ts_ms: int
    order_id: str
    shard: str
    reason: Literal["max_age", "promise_unreachable", "no_courier"]
    detail: NotRequired[str]


class OrderReady(TypedDict):
    """The merchant marked an order ready for pickup."""

    event_id: str
    type: Literal["order_ready"]
    v: int
    ts_ms: int
    order_id: str
    merchant_id: str
    shard: str


class SurgeUpdate(TypedDict):
    """Supply/demand state and price multiplier of a zone."""

    event_id: str
    type: Literal["surge_update"]
    v: int
    ts_ms: int
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
