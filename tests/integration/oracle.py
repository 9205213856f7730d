"""The state a worker must reach from a list of records, computed in process with the pure core.

Records are applied in event-time order; the lifecycle is order-independent, so the worker,
which consumes topics in whatever interleaving the broker gives, must reach the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from contracts.geo import shard_of
from dispatch.lifecycle import apply_courier_event, apply_order_event
from simulators.synthetic import Record

ORDER_TOPICS = ("order_events", "merchant_ready", "delivery_events")


def expected_state(records: Sequence[Record], precision: int = 4) -> dict[str, Any]:
    """Orders (status, counting events), courier (status, shard) and latest positions."""
    valid = [r for r in records if r.expect_reason is None]
    events = sorted(
        ((orjson.loads(r.value), r.topic) for r in valid),
        key=lambda x: (x[0]["ts_ms"], x[0]["event_id"]),
    )
    orders: dict[str, Any] = {}
    created = [e for e, t in events if e["type"] == "order_created"]
    for event in created:
        orders[event["order_id"]] = apply_order_event(None, event).state
    for event, topic in events:
        if topic in ORDER_TOPICS and event["type"] != "order_created":
            update = apply_order_event(orders[event["order_id"]], event)
            orders[event["order_id"]] = update.state
    couriers: dict[str, Any] = {}
    for event, topic in events:
        if topic == "courier_events":
            cid = event["courier_id"]
            shard = shard_of(event["lat"], event["lon"], precision) if "lat" in event else None
            couriers[cid] = apply_courier_event(couriers.get(cid), event, shard)
    positions: dict[str, Any] = {}
    # A courier's shard is that of its newest fix: its online event's position or a ping.
    placed: dict[str, tuple[int, str]] = {}
    for event, topic in events:
        if topic == "courier_events" and "lat" in event:
            fixes = [event]
        elif topic == "courier_pings":
            fixes = event.get("pings", [event])
        else:
            continue
        for fix in fixes:
            cid, ts_ms = fix["courier_id"], fix["ts_ms"]
            shard = shard_of(fix["lat"], fix["lon"], precision)
            if cid not in placed or ts_ms > placed[cid][0]:
                placed[cid] = (ts_ms, shard)
            current = positions.get(cid)
            if topic == "courier_pings" and (current is None or ts_ms > current["ts_ms"]):
                positions[cid] = {
                    "ts_ms": ts_ms,
                    "lat": fix["lat"],
                    "lon": fix["lon"],
                    "shard": shard,
                }
    return {
        "orders": {
            o: (s.status.value, sorted((e.kind, e.ts_ms, e.event_id) for e in s.events))
            for o, s in orders.items()
        },
        "directory": {c: (s.status.value, placed[c][1]) for c, s in couriers.items()},
        "positions": positions,
    }


def observed_state(detail: dict[str, Any]) -> dict[str, Any]:
    """The same view of a worker's `/state?detail=1` (or of several workers' merged)."""
    return {
        "orders": {
            o: (v["status"], sorted(tuple(e) for e in v["events"]))
            for o, v in detail["orders"].items()
        },
        "directory": {c: (v["status"], v["shard"]) for c, v in detail["courier_directory"].items()},
        "positions": {
            c: {"ts_ms": v["ts_ms"], "lat": v["lat"], "lon": v["lon"], "shard": v["shard"]}
            for c, v in detail["positions"].items()
        },
    }


def merge(*details: dict[str, Any]) -> dict[str, Any]:
    """Union of several workers' detailed states (they own disjoint partitions)."""
    out: dict[str, Any] = {"orders": {}, "couriers": {}, "courier_directory": {}, "positions": {}}
    for detail in details:
        for key in out:
            overlap = set(out[key]) & set(detail[key])
            if overlap:
                msg = f"{key} owned by two workers: {sorted(overlap)[:5]}"
                raise AssertionError(msg)
            out[key].update(detail[key])
    return out
