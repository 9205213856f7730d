"""Contract events (`contracts/schemas/*.v1.json`, already validated) as feature events.

`to_feature_event` maps one contract event to the dict `FeatureEngine.apply` takes (shapes in
`features.events`), or None when no feature consumes it:

- `order_created` → `order_created` (`pickup`/`dropoff` points flattened to `*_lat`/`*_lon`,
  with its `prep_estimate_s` when it has one);
- `order_ready` → `merchant_ready`;
- `merchant_accepted` with an `estimated_ready_ts_ms` → `merchant_estimate`;
- `delivery_arrived` → `arrived` (labels travel legs offline);
- `delivery_picked_up` → `picked_up`, `order_cancelled` → `order_cancelled`: both need the
  order's merchant, which these contracts do not carry; it comes from `merchant_of(order_id)`,
  and the event maps to None when the merchant is unknown;
- `delivery_delivered` → `delivered`;
- `courier_ping` → `courier_ping` (a missing or implausible `speed_mps` becomes None, unknown);
- `assignment_response` → `assignment_response` (the courier, the decision, accept or decline);
- everything else (`merchant_accepted` without an estimate, courier status events, ping
  batches: see `features.offline` for those) → None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from features import events as ev

#: Looks up the merchant of an order id (None when unknown).
MerchantOf = Callable[[str], str | None]


#: Contract event types that map to a feature event.
MAPPED_TYPES = frozenset(
    {
        "order_created",
        "order_ready",
        "merchant_accepted",
        "delivery_arrived",
        "delivery_picked_up",
        "order_cancelled",
        "delivery_delivered",
        "courier_ping",
        "assignment_response",
    }
)


def _no_merchant(order_id: str) -> str | None:
    return None


def _speed(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    speed = float(value)
    return speed if 0.0 <= speed <= ev.MAX_SPEED_MPS else None


def to_feature_event(
    event: Mapping[str, Any], merchant_of: MerchantOf = _no_merchant
) -> dict[str, Any] | None:
    """The feature event equivalent to a validated contract event, or None if unused.

    Args:
        event: a contract event that passed schema validation.
        merchant_of: merchant of an order id, for events that name only the order.

    Returns:
        A dict `FeatureEngine.apply` accepts, or None when no feature consumes the event (or
        its merchant is unknown).
    """
    etype = event.get("type")
    if etype not in MAPPED_TYPES:
        return None
    head = {"event_id": str(event["event_id"]), "ts_ms": int(event["ts_ms"])}
    if etype == "order_created":
        pickup, dropoff = event["pickup"], event["dropoff"]
        created = {
            "type": ev.ORDER_CREATED,
            **head,
            "order_id": str(event["order_id"]),
            "merchant_id": str(event["merchant_id"]),
            "pickup_lat": float(pickup["lat"]),
            "pickup_lon": float(pickup["lon"]),
            "dropoff_lat": float(dropoff["lat"]),
            "dropoff_lon": float(dropoff["lon"]),
        }
        if event.get("prep_estimate_s") is not None:
            created["prep_estimate_s"] = float(event["prep_estimate_s"])
        return created
    if etype == "merchant_accepted":
        if event.get("estimated_ready_ts_ms") is None:
            return None
        return {
            "type": ev.MERCHANT_ESTIMATE,
            **head,
            "order_id": str(event["order_id"]),
            "merchant_id": str(event["merchant_id"]),
            "estimated_ready_ts_ms": int(event["estimated_ready_ts_ms"]),
        }
    if etype == "delivery_arrived":
        return {
            "type": ev.ARRIVED,
            **head,
            "order_id": str(event["order_id"]),
            "courier_id": str(event["courier_id"]),
            "stop": str(event["stop"]),
        }
    if etype == "order_ready":
        return {
            "type": ev.MERCHANT_READY,
            **head,
            "order_id": str(event["order_id"]),
            "merchant_id": str(event["merchant_id"]),
        }
    if etype in ("delivery_picked_up", "order_cancelled"):
        order_id = str(event["order_id"])
        merchant_id = merchant_of(order_id)
        if merchant_id is None:
            return None
        out = {
            "type": ev.PICKED_UP if etype == "delivery_picked_up" else ev.ORDER_CANCELLED,
            **head,
            "order_id": order_id,
            "merchant_id": merchant_id,
        }
        if etype == "delivery_picked_up":
            out["courier_id"] = str(event["courier_id"])
        return out
    if etype == "delivery_delivered":
        return {
            "type": ev.DELIVERED,
            **head,
            "order_id": str(event["order_id"]),
            "courier_id": str(event["courier_id"]),
        }
    if etype == "courier_ping":
        return {
            "type": ev.COURIER_PING,
            **head,
            "courier_id": str(event["courier_id"]),
            "lat": float(event["lat"]),
            "lon": float(event["lon"]),
            "speed_mps": _speed(event.get("speed_mps")),
        }
    if etype == "assignment_response":
        return {
            "type": ev.ASSIGNMENT_RESPONSE,
            **head,
            "courier_id": str(event["courier_id"]),
            "decision_id": str(event["decision_id"]),
            "response": str(event["response"]),
        }
    return None
