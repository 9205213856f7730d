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


#: A copied field: its name (the same in both forms) and the type it is read as.
_Field = tuple[str, Callable[[Any], Any]]
_ORDER: tuple[_Field, ...] = (("order_id", str),)

#: Per mapped contract type: its feature type and the fields copied, in the feature event's
#: order (after `type`, `event_id` and `ts_ms`). `to_feature_event` adds what is not copied.
_COPIED: dict[str, tuple[str, tuple[_Field, ...]]] = {
    "order_created": (ev.ORDER_CREATED, (*_ORDER, ("merchant_id", str))),
    "order_ready": (ev.MERCHANT_READY, (*_ORDER, ("merchant_id", str))),
    "merchant_accepted": (
        ev.MERCHANT_ESTIMATE,
        (*_ORDER, ("merchant_id", str), ("estimated_ready_ts_ms", int)),
    ),
    "delivery_arrived": (ev.ARRIVED, (*_ORDER, ("courier_id", str), ("stop", str))),
    "delivery_picked_up": (ev.PICKED_UP, _ORDER),
    "order_cancelled": (ev.ORDER_CANCELLED, _ORDER),
    "delivery_delivered": (ev.DELIVERED, (*_ORDER, ("courier_id", str))),
    "courier_ping": (ev.COURIER_PING, (("courier_id", str), ("lat", float), ("lon", float))),
    "assignment_response": (
        ev.ASSIGNMENT_RESPONSE,
        (("courier_id", str), ("decision_id", str), ("response", str)),
    ),
}

#: Contract event types that map to a feature event.
MAPPED_TYPES = frozenset(_COPIED)


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
    if etype not in _COPIED:
        return None
    if etype == "merchant_accepted" and event.get("estimated_ready_ts_ms") is None:
        return None
    feature_type, fields = _COPIED[etype]
    out: dict[str, Any] = {
        "type": feature_type,
        "event_id": str(event["event_id"]),
        "ts_ms": int(event["ts_ms"]),
    }
    out.update((name, read(event[name])) for name, read in fields)
    if etype == "order_created":
        for stop in ("pickup", "dropoff"):
            out[f"{stop}_lat"] = float(event[stop]["lat"])
            out[f"{stop}_lon"] = float(event[stop]["lon"])
        if event.get("prep_estimate_s") is not None:
            out["prep_estimate_s"] = float(event["prep_estimate_s"])
    elif etype in ("delivery_picked_up", "order_cancelled"):
        merchant_id = merchant_of(out["order_id"])
        if merchant_id is None:
            return None
        out["merchant_id"] = merchant_id
        if etype == "delivery_picked_up":
            out["courier_id"] = str(event["courier_id"])
    elif etype == "courier_ping":
        out["speed_mps"] = _speed(event.get("speed_mps"))
    return out
