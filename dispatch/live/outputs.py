"""Every record the worker core writes: decisions, ETAs, expiries, surge, courier moves, ticks.

Every event gets a deterministic id from what it is about, so a redelivered input never makes a
second, different record. Records about an order continue the order's trace
(`contracts.tracing`); a record about a bundle follows its first order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from contracts.pings import PingColumns
from contracts.positions import encode_position_batch
from contracts.records import envelope
from contracts.tracing import trace_header_for
from contracts.validation import Event
from dispatch.lifecycle import CourierState, OrderState
from dispatch.live.records import CourierRecord, DecisionRecord, RouteStop

#: Suffix of every published cost term: each is in minutes of customer delay (`dispatch.costs`).
TERM_UNIT_SUFFIX = "_min"
#: Decimals of the cost and its terms in published explanations.
COST_DECIMALS = 4


def decision_event(
    event_type: str,
    event_id: str,
    ts_ms: int,
    decision: DecisionRecord,
    order_ids: Sequence[str],
    **fields: Any,
) -> dict[str, Any]:
    """An event about `order_ids` of `decision`: its id, shard, generation and courier first."""
    return envelope(
        event_type,
        event_id,
        ts_ms,
        decision_id=decision.decision_id,
        shard=decision.shard,
        shard_generation=decision.generation,
        order_ids=list(order_ids),
        courier_id=decision.courier_id,
        **fields,
    )


def order_trace(order: OrderState, event: Mapping[str, Any]) -> str:
    """The `traceparent` of `event`, a record about `order`: it continues the order's trace."""
    source = order.created_source
    parent = source.traceparent if source is not None else None
    return trace_header_for(parent, order.order_id, str(event["event_id"]))


def route_json(route: Sequence[RouteStop]) -> list[dict[str, Any]]:
    """Route stops as the contracts carry them: one entry per order per stop."""
    return [
        {
            "kind": s.kind,
            "order_id": o,
            "lat": s.lat,
            "lon": s.lon,
            "planned_ts_ms": int(s.planned_ts_ms),
        }
        for s in route
        for o in s.order_ids
    ]


def proposal_event(
    record: DecisionRecord, etas: Mapping[str, tuple[float, float, float]], fallback: bool
) -> dict[str, Any]:
    """The `assignment_proposed` of `record`: route, ETAs, cost and its explanation."""
    return envelope(
        "assignment_proposed",
        f"proposed:{record.decision_id}",
        record.proposed_ts_ms,
        decision_id=record.decision_id,
        shard=record.shard,
        shard_generation=record.generation,
        order_ids=list(record.new_order_ids),
        courier_id=record.courier_id,
        lease_expires_ts_ms=record.lease_expires_ts_ms,
        route=route_json(record.route),
        etas={
            o: {
                "p50_s": round(v[0], 1),
                "p90_s": round(v[2], 1),
                "fallback_used": fallback,
                "fallback_reason": "model" if fallback else None,
            }
            for o, v in sorted(etas.items())
        },
        cost=round(record.cost, COST_DECIMALS),
        explanation={
            "reason": record.reason,
            "terms": {
                f"{k}{TERM_UNIT_SUFFIX}": round(v, COST_DECIMALS) for k, v in record.terms.items()
            },
            "runner_up_courier_id": record.runner_up_courier_id,
            "runner_up_cost": None
            if record.runner_up_cost is None
            else round(record.runner_up_cost, COST_DECIMALS),
        },
        model_version=record.model_version,
        policy_version=record.policy_version,
    )


def committed_event(
    decision: DecisionRecord,
    order_ids: Sequence[str],
    route: Sequence[RouteStop],
    ts_ms: int,
) -> dict[str, Any]:
    """The `assignment_committed` of `decision` for the orders it holds, with their route."""
    return decision_event(
        "assignment_committed",
        f"committed:{decision.decision_id}",
        ts_ms,
        decision,
        order_ids,
        route=route_json(route),
        policy_version=decision.policy_version,
        model_version=decision.model_version,
    )


def released_event(
    decision: DecisionRecord, order_ids: Sequence[str], reason: str, ts_ms: int
) -> dict[str, Any]:
    """The `assignment_released` of `order_ids` of `decision`, for `reason`."""
    return decision_event(
        "assignment_released",
        f"released:{decision.decision_id}:{reason}:{'.'.join(order_ids)}",
        ts_ms,
        decision,
        order_ids,
        reason=reason,
    )


def expired_event(order_id: str, shard: str, reason: str, detail: str, ts_ms: int) -> Event:
    """The `order_expired` of an order the dispatcher gave up on."""
    return envelope(
        "order_expired",
        f"expired:{order_id}",
        ts_ms,
        order_id=order_id,
        shard=shard,
        reason=reason,
        detail=detail,
    )


def eta_event(
    order_id: str,
    shard: str,
    now_ms: int,
    p50_ts_ms: int,
    p90_ts_ms: int,
    model_version: str,
    fallback_reason: str | None = None,
) -> dict[str, Any]:
    """An `eta_update`: the order's drop-off p50 and p90 as announced at `now_ms`.

    A `fallback_reason` marks it as the base ETA served because the model could not be.
    """
    return envelope(
        "eta_update",
        f"eta:{order_id}:{now_ms}",
        now_ms,
        order_id=order_id,
        shard=shard,
        dropoff_p50_ts_ms=p50_ts_ms,
        dropoff_p90_ts_ms=p90_ts_ms,
        fallback_used=fallback_reason is not None,
        fallback_reason=fallback_reason,
        model_version=model_version,
    )


def surge_event(
    zone: str, shard: str, supply: int, demand: int, multiplier: float, ts_ms: int
) -> dict[str, Any]:
    """A `surge_update` of one zone."""
    return envelope(
        "surge_update",
        f"surge:{zone}:{ts_ms}",
        ts_ms,
        zone=zone,
        shard=shard,
        supply=supply,
        demand=demand,
        multiplier=multiplier,
    )


def left_tombstone(shard: str, courier_id: str, ts_ms: int) -> bytes:
    """A `courier_positions` tombstone: `courier_id` left `shard` at `ts_ms`."""
    nan = np.array([np.nan])
    columns = PingColumns(
        np.array([courier_id], dtype=object), nan, nan, np.array([ts_ms]), nan, nan, nan
    )
    return encode_position_batch(
        shard, f"left:{courier_id}:{shard}:{ts_ms}", ts_ms, columns, left=True
    )


#: What a `courier_state_update` tells about its courier, in the event's field order.
_COURIER_FACTS = ("status", "capacity", "vehicle", "shift_end_ts_ms", "status_ts_ms")


def _courier_update(
    event_id: str,
    ts_ms: int,
    courier_id: str,
    facts: Mapping[str, Any],
    shard: str,
    kind: str,
    epoch: int,
    from_shard: str | None,
    to_shard: str | None,
) -> dict[str, Any]:
    """A `courier_state_update` telling `shard` the courier's `facts` (`_COURIER_FACTS`)."""
    return envelope(
        "courier_state_update",
        event_id,
        ts_ms,
        courier_id=courier_id,
        shard=shard,
        kind=kind,
        **{name: facts.get(name) for name in _COURIER_FACTS},
        epoch=epoch,
        from_shard=from_shard,
        to_shard=to_shard,
    )


def _facts(courier: CourierState | CourierRecord) -> dict[str, Any]:
    """The `_COURIER_FACTS` of a courier's state, its status as a plain string."""
    facts = {name: getattr(courier, name) for name in _COURIER_FACTS}
    facts["status"] = str(facts["status"])
    return facts


def state_update(
    state: CourierState,
    shard: str,
    kind: str,
    ts_ms: int,
    *,
    from_shard: str | None = None,
    to_shard: str | None = None,
) -> dict[str, Any]:
    """A `courier_state_update` telling `shard` about `state` (from the courier directory)."""
    event_id = f"state:{state.courier_id}:{shard}:{kind}:{ts_ms}:{state.status_ts_ms}"
    return _courier_update(
        event_id,
        ts_ms,
        state.courier_id,
        _facts(state),
        shard,
        kind,
        state.epoch,
        from_shard,
        to_shard,
    )


def handover(courier: CourierRecord, to_shard: str, epoch: int, ts_ms: int) -> dict[str, Any]:
    """The `handover` update a shard sends when a courier that left holds no more work there."""
    event_id = f"handover:{courier.courier_id}:{to_shard}:{epoch}"
    facts = _facts(courier)
    return _courier_update(
        event_id,
        ts_ms,
        courier.courier_id,
        facts,
        to_shard,
        "handover",
        epoch,
        courier.shard,
        to_shard,
    )


def handover_from(update: Event, to_shard: str, epoch: int, ts_ms: int) -> dict[str, Any]:
    """A handover for a courier this shard never held (only its move is released)."""
    courier_id = str(update["courier_id"])
    event_id = f"handover:{courier_id}:{to_shard}:{epoch}"
    return _courier_update(
        event_id, ts_ms, courier_id, update, to_shard, "handover", epoch, update["shard"], to_shard
    )


def handoff(courier_id: str, from_shard: str | None, to_shard: str, ts_ms: int) -> dict[str, Any]:
    """A `courier_handoff`: the courier moved from one shard to another."""
    return envelope(
        "courier_handoff",
        f"handoff:{courier_id}:{to_shard}:{ts_ms}",
        ts_ms,
        courier_id=courier_id,
        from_shard=from_shard,
        to_shard=to_shard,
    )


def sighting_event(
    shard: str, partition: int, offset: int, couriers: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A `courier_sighting` of `couriers` (`courier_id`, `ts_ms`) seen in `shard`.

    Caused by the positions record at `partition` and `offset`; stamped with the newest fix.
    """
    return envelope(
        "courier_sighting",
        f"sighting:{shard}:{partition}:{offset}:{couriers[0]['courier_id']}",
        max(int(c["ts_ms"]) for c in couriers),
        shard=shard,
        couriers=list(couriers),
    )


def tick_event(shard: str, now_ms: int) -> bytes:
    """A `dispatch_tick` record value: tick `shard` at `now_ms`."""
    return orjson.dumps(envelope("dispatch_tick", f"tick:{shard}:{now_ms}", now_ms, shard=shard))
