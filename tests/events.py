"""Valid input events for tests, built with the product's one envelope builder.

Every builder takes the event's time and returns the event as a dict; ids default to ones
derived from the entity (`<order>-created`, `<courier>-online`), so a test that needs two
records with one id says so explicitly.
"""

from __future__ import annotations

from typing import Any

from contracts.geo import shard_of
from contracts.records import envelope

#: Midtown Manhattan: the merchant district of the integration tests.
LAT, LON = 40.7580, -73.9855
SHARD = shard_of(LAT, LON, 4)


def order_created(
    order_id: str,
    ts_ms: int,
    *,
    event_id: str | None = None,
    lat: float = LAT,
    lon: float = LON,
    **extra: Any,
) -> dict[str, Any]:
    """An order at (`lat`, `lon`) in its shard, delivered 1 km north; `extra` adds or overrides."""
    fields: dict[str, Any] = {
        "order_id": order_id,
        "merchant_id": "m1",
        "shard": shard_of(lat, lon, 4),
        "pickup": {"lat": lat, "lon": lon},
        "dropoff": {"lat": lat + 0.01, "lon": lon},
    }
    return envelope(
        "order_created", event_id or f"{order_id}-created", ts_ms, **{**fields, **extra}
    )


def courier_online(
    courier_id: str,
    ts_ms: int,
    *,
    event_id: str | None = None,
    lat: float = LAT,
    lon: float = LON,
    capacity: int = 2,
) -> dict[str, Any]:
    """A courier on a bike coming online at (`lat`, `lon`)."""
    return envelope(
        "courier_online",
        event_id or f"{courier_id}-online",
        ts_ms,
        courier_id=courier_id,
        lat=lat,
        lon=lon,
        capacity=capacity,
        vehicle="bike",
    )


def fix(
    courier_id: str, ts_ms: int, *, lat: float = LAT, lon: float = LON, **extra: Any
) -> dict[str, Any]:
    """One fix of a ping batch; `extra` adds optional fields."""
    return {"courier_id": courier_id, "lat": lat, "lon": lon, "ts_ms": ts_ms, **extra}


def ping_batch(event_id: str, ts_ms: int, fixes: list[Any]) -> dict[str, Any]:
    """A `courier_ping_batch` of `fixes`."""
    return envelope("courier_ping_batch", event_id, ts_ms, pings=fixes)


def response(
    decision_id: str, courier_id: str, ts_ms: int, answer: str = "accept", shard: str = SHARD
) -> dict[str, Any]:
    """A courier's answer to an offer."""
    return envelope(
        "assignment_response",
        f"{courier_id}-{answer}-{decision_id}",
        ts_ms,
        decision_id=decision_id,
        courier_id=courier_id,
        shard=shard,
        response=answer,
    )
