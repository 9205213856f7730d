"""Schema-valid contract events for the console's read-model tests, and a feeder."""

from __future__ import annotations

import itertools
from typing import Any

from console.deadletters import dead_letter_of
from console.model import OpsModel
from contracts.geo import shard_of
from contracts.records import envelope
from contracts.validation import validate_schema

T0 = 1_781_625_600_000
S = 1_000
MIN = 60_000
LAT, LON = 40.75, -73.99
SHARD = shard_of(LAT, LON, 4)
PICKUP = (LAT, LON)
DROPOFF = (40.76, -73.98)

_ids = itertools.count()
_offsets = itertools.count()


def event(event_type: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """A schema-valid event of `event_type` (the schema is checked here)."""
    return dict(
        validate_schema(envelope(event_type, f"{event_type}-{next(_ids)}", ts_ms, **fields))
    )


def created(
    order_id: str,
    ts_ms: int = T0,
    *,
    merchant_id: str = "m1",
    pickup: tuple[float, float] = PICKUP,
    dropoff: tuple[float, float] = DROPOFF,
    promise_ts_ms: int | None = None,
    shard: str = SHARD,
) -> dict[str, Any]:
    """`order_created` (promise 40 min after placement unless given)."""
    return event(
        "order_created",
        ts_ms,
        order_id=order_id,
        merchant_id=merchant_id,
        shard=shard,
        pickup={"lat": pickup[0], "lon": pickup[1]},
        dropoff={"lat": dropoff[0], "lon": dropoff[1]},
        promise_ts_ms=promise_ts_ms if promise_ts_ms is not None else ts_ms + 40 * MIN,
    )


def milestone(event_type: str, order_id: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """An event about order `order_id` in `SHARD` (`order_ready`, `eta_update`, ...)."""
    return event(event_type, ts_ms, order_id=order_id, shard=SHARD, **fields)


def assignment(
    event_type: str,
    decision_id: str,
    order_ids: list[str],
    courier_id: str,
    ts_ms: int,
    **fields: Any,
) -> dict[str, Any]:
    """An `assignment_*` event of decision `decision_id` in `SHARD`; `fields` add the rest."""
    return event(
        event_type,
        ts_ms,
        decision_id=decision_id,
        shard=SHARD,
        order_ids=order_ids,
        courier_id=courier_id,
        **fields,
    )


def proposed(
    decision_id: str,
    order_ids: list[str],
    courier_id: str,
    ts_ms: int,
    *,
    terms: dict[str, float] | None = None,
    runner_up: tuple[str, float] | None = ("c9", 9.5),
    p50_s: float = 900.0,
    p90_s: float = 1200.0,
    policy_version: str = "default",
) -> dict[str, Any]:
    """`assignment_proposed` whose cost is the sum of `terms`."""
    terms = terms if terms is not None else {"delay": 1.5, "late": 0.0, "courier_time": 2.25}
    return assignment(
        "assignment_proposed",
        decision_id,
        order_ids,
        courier_id,
        ts_ms,
        shard_generation=1,
        lease_expires_ts_ms=ts_ms + 30 * S,
        route=[],
        etas={o: {"p50_s": p50_s, "p90_s": p90_s, "fallback_used": False} for o in order_ids},
        cost=round(sum(terms.values()), 4),
        explanation={
            "reason": "ready",
            "terms": {f"{name}_min": value for name, value in terms.items()},
            "runner_up_courier_id": None if runner_up is None else runner_up[0],
            "runner_up_cost": None if runner_up is None else runner_up[1],
        },
        model_version="m-test",
        policy_version=policy_version,
    )


def committed(decision_id: str, order_ids: list[str], courier_id: str, ts_ms: int) -> Any:
    """`assignment_committed`."""
    return assignment(
        "assignment_committed",
        decision_id,
        order_ids,
        courier_id,
        ts_ms,
        shard_generation=1,
        route=[],
        policy_version="default",
        model_version="m-test",
    )


def released(
    decision_id: str, order_ids: list[str], courier_id: str, ts_ms: int, reason: str
) -> dict[str, Any]:
    """`assignment_released` with `reason`."""
    return assignment(
        "assignment_released", decision_id, order_ids, courier_id, ts_ms, reason=reason
    )


def eta_update(order_id: str, ts_ms: int, p50_ts_ms: int, p90_ts_ms: int) -> dict[str, Any]:
    """`eta_update`."""
    return milestone(
        "eta_update",
        order_id,
        ts_ms,
        dropoff_p50_ts_ms=p50_ts_ms,
        dropoff_p90_ts_ms=p90_ts_ms,
        fallback_used=False,
        model_version="m-test",
    )


def state_update(
    courier_id: str,
    ts_ms: int,
    *,
    status: str = "online",
    kind: str = "status",
    shard: str = SHARD,
    capacity: int = 2,
    epoch: int = 0,
    status_ts_ms: int | None = None,
    to_shard: str | None = None,
) -> dict[str, Any]:
    """`courier_state_update`."""
    return event(
        "courier_state_update",
        ts_ms,
        courier_id=courier_id,
        shard=shard,
        kind=kind,
        status=status,
        capacity=capacity,
        vehicle="bike",
        status_ts_ms=status_ts_ms if status_ts_ms is not None else ts_ms,
        epoch=epoch,
        to_shard=to_shard,
    )


#: The topic each event type is read from.
TOPIC_OF = {
    "order_created": "order_events",
    "order_cancelled": "order_events",
    "merchant_accepted": "merchant_ready",
    "order_ready": "merchant_ready",
    "delivery_arrived": "delivery_events",
    "delivery_picked_up": "delivery_events",
    "delivery_delivered": "delivery_events",
    "dispatch_control": "dispatch_control",
    "assignment_proposed": "assignment_proposed",
    "assignment_committed": "assignment_committed",
    "assignment_released": "assignment_released",
    "order_expired": "assignment_released",
    "eta_update": "eta_updates",
    "surge_update": "surge_updates",
    "courier_state_update": "courier_state_updates",
}


def feed(model: OpsModel, *events: dict[str, Any], partition: int = 0) -> list[int]:
    """Apply `events` in order, each at a new offset of its topic; return their offsets."""
    offsets = []
    for e in events:
        offset = next(_offsets)
        model.apply_event(TOPIC_OF[e["type"]], partition, offset, e)
        offsets.append(offset)
    return offsets


def reject(model: OpsModel, topic: str, offset: int, reason: str, partition: int = 0) -> None:
    """Apply the dead letter that rejects the record at (`topic`, `partition`, `offset`)."""
    headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.message", f"rejected: {reason}".encode()),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", str(partition).encode()),
        ("dlq.offset", str(offset).encode()),
    ]
    letter = dead_letter_of(f"{topic}_dlq", 0, next(_offsets), T0, b"k", b"v", headers)
    model.apply_dead_letter(letter)
