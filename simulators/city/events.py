"""Building the simulator's input events and their records (topic and key per `topics.yaml`).

Event ids are deterministic: they are made from the ids and counters of the simulation, never
from clocks or random draws, so one seed always yields the same ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

from contracts.tracing import start_trace
from simulators.city.protocol import SimRecord

#: Topic of each event type the simulator produces.
TOPIC_OF: dict[str, str] = {
    "order_created": "order_events",
    "order_cancelled": "order_events",
    "merchant_accepted": "merchant_ready",
    "order_ready": "merchant_ready",
    "courier_online": "courier_events",
    "courier_offline": "courier_events",
    "courier_ping_batch": "courier_pings",
    "delivery_arrived": "delivery_events",
    "delivery_picked_up": "delivery_events",
    "delivery_delivered": "delivery_events",
    "assignment_response": "assignment_responses",
    "dispatch_tick": "dispatch_ticks",
}

#: Event field that is the record key, per topic (ping batches are keyed by the gateway).
KEY_FIELD_OF: dict[str, str] = {
    "order_events": "shard",
    "merchant_ready": "shard",
    "courier_events": "courier_id",
    "delivery_events": "shard",
    "assignment_responses": "shard",
    "dispatch_ticks": "shard",
}

_MAX_ID = 128


def make_id(*parts: object) -> str:
    """A deterministic event id from its parts, kept within the contracts' 128 characters."""
    text = "-".join(str(p) for p in parts)
    if len(text) <= _MAX_ID:
        return text
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{text[: _MAX_ID - len(digest) - 1]}-{digest}"


def record(body: dict[str, Any], gateway_id: str = "gateway-1") -> SimRecord:
    """The record carrying `body`: its topic by event type, its key as `topics.yaml` says.

    An `order_created` carries a `traceparent` header, as the ordering app would send: a sampled
    trace derived from the order id.
    """
    topic = TOPIC_OF[body["type"]]
    key = gateway_id if topic == "courier_pings" else str(body[KEY_FIELD_OF[topic]])
    trace = None
    if body["type"] == "order_created":
        trace = start_trace(f"order-app:{body['order_id']}", sampled=True).header
    return SimRecord(topic, key.encode("utf-8"), body, trace)


def point(lat: float, lon: float) -> dict[str, float]:
    """A contract `point`, rounded to 1e-6 degrees (about 0.1 m)."""
    return {"lat": round(lat, 6), "lon": round(lon, 6)}
