"""The input events the feature definitions consume, and their validation.

Every event is a plain dict (decoded JSON) with `type`, `event_id` (str), `ts_ms` (event time,
epoch milliseconds, int) and the fields below. Unknown extra fields are ignored; a missing or
malformed field raises `EventError`.

- `order_created`: `order_id`, `merchant_id`, `pickup_lat`, `pickup_lon`, `dropoff_lat`,
  `dropoff_lon` (degrees): a customer placed an order (pickup = the merchant's location).
- `merchant_ready`: `order_id`, `merchant_id`: the merchant marked the order ready.
- `merchant_estimate`: `order_id`, `merchant_id`, `estimated_ready_ts_ms` (epoch ms): the
  merchant's estimate of when the order will be ready.
- `courier_ping`: `courier_id`, `lat`, `lon`, `speed_mps` (null allowed): a courier position.
- `assignment_response`: `courier_id`, `decision_id`, `response` (`accept` | `decline`): the
  courier's answer to an offer.
- `picked_up`: `order_id`, `merchant_id`, `courier_id`: the courier picked the order up.
- `delivered`: `order_id`, `courier_id`: the order reached the customer.
- `order_cancelled`: `order_id`, `merchant_id`: the order was cancelled.
- `arrived`: `order_id`, `courier_id`, `stop` (`pickup` | `dropoff`): a courier arrived at one
  of the order's stops (no feature consumes it; it labels travel legs offline).

`order_created` may also carry `prep_estimate_s` (the platform's prep estimate, seconds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

ORDER_CREATED: Final = "order_created"
MERCHANT_READY: Final = "merchant_ready"
MERCHANT_ESTIMATE: Final = "merchant_estimate"
COURIER_PING: Final = "courier_ping"
ASSIGNMENT_RESPONSE: Final = "assignment_response"
PICKED_UP: Final = "picked_up"
DELIVERED: Final = "delivered"
ORDER_CANCELLED: Final = "order_cancelled"
ARRIVED: Final = "arrived"

_STR = "str"
_COORD_LAT = "lat"
_COORD_LON = "lon"
_SPEED = "speed"
_RESPONSE = "response"
_TS = "ts"
_STOP = "stop"
#: Largest time field of a feature event (the contracts' bound, 2100-01-01).
MAX_TS_MS: Final = 4_102_444_800_000

#: Required fields (beyond `type`, `event_id`, `ts_ms`) and their kind, per event type.
EVENT_FIELDS: Final[Mapping[str, Mapping[str, str]]] = {
    ORDER_CREATED: {
        "order_id": _STR,
        "merchant_id": _STR,
        "pickup_lat": _COORD_LAT,
        "pickup_lon": _COORD_LON,
        "dropoff_lat": _COORD_LAT,
        "dropoff_lon": _COORD_LON,
    },
    MERCHANT_READY: {"order_id": _STR, "merchant_id": _STR},
    MERCHANT_ESTIMATE: {"order_id": _STR, "merchant_id": _STR, "estimated_ready_ts_ms": _TS},
    COURIER_PING: {"courier_id": _STR, "lat": _COORD_LAT, "lon": _COORD_LON, "speed_mps": _SPEED},
    ASSIGNMENT_RESPONSE: {"courier_id": _STR, "decision_id": _STR, "response": _RESPONSE},
    PICKED_UP: {"order_id": _STR, "merchant_id": _STR, "courier_id": _STR},
    DELIVERED: {"order_id": _STR, "courier_id": _STR},
    ORDER_CANCELLED: {"order_id": _STR, "merchant_id": _STR},
    ARRIVED: {"order_id": _STR, "courier_id": _STR, "stop": _STOP},
}

#: Largest plausible courier speed (m/s); faster pings are treated as GPS noise.
MAX_SPEED_MPS: Final = 70.0


class EventError(ValueError):
    """An event is malformed: unknown type, missing field or value out of range."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def validate_event(event: Mapping[str, Any]) -> str:
    """Check an event against its shape and return its type.

    Raises:
        EventError: with a message naming the offending field.
    """
    etype = event.get("type")
    if not isinstance(etype, str) or etype not in EVENT_FIELDS:
        raise EventError(f"unknown event type {etype!r}")
    eid = event.get("event_id")
    if not isinstance(eid, str) or not eid:
        raise EventError(f"{etype}: event_id must be a non-empty string")
    ts = event.get("ts_ms")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise EventError(f"{etype}: ts_ms must be a non-negative int (epoch ms)")
    for name, kind in EVENT_FIELDS[etype].items():
        if name not in event:
            raise EventError(f"{etype}: missing field {name!r}")
        v = event[name]
        if kind == _STR:
            ok = isinstance(v, str) and bool(v)
        elif kind == _COORD_LAT:
            ok = _is_number(v) and -90.0 <= v <= 90.0
        elif kind == _COORD_LON:
            ok = _is_number(v) and -180.0 <= v <= 180.0
        elif kind == _SPEED:
            ok = v is None or (_is_number(v) and 0.0 <= v <= MAX_SPEED_MPS)
        elif kind == _TS:
            ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_TS_MS
        elif kind == _STOP:
            ok = v in ("pickup", "dropoff")
        else:
            ok = v in ("accept", "decline")
        if not ok:
            raise EventError(f"{etype}: invalid {name}={v!r}")
    return str(etype)
