"""JSON views of the read model for the API and the page: orders, decisions, couriers, the map.

Every time is event time in epoch ms (`*_ts_ms`) or a duration in minutes (`*_min`), metres
(`*_m`) or seconds (`*_s`); positions are degrees, and map coordinates are metres east (`x_m`)
and north (`y_m`) of the map's origin.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from console.model import OpsModel
from console.orders import Decision, OrderSummary
from console.terms import ROUNDING_TOLERANCE_MIN, Control, term_rows, weights_of_version
from contracts.geo import project_m
from dispatch.live.outputs import TERM_UNIT_SUFFIX

#: Live order states in which a courier carries or is about to carry the order.
CARRYING = ("assigned", "picked_up")


def _point(lat_lon: tuple[float, float]) -> dict[str, float]:
    return {"lat": lat_lon[0], "lon": lat_lon[1]}


def order_row(summary: OrderSummary, now_ms: int) -> dict[str, Any]:
    """An order's state for lists and the map."""
    return {
        "order_id": summary.order_id,
        "shard": summary.shard,
        "merchant_id": summary.merchant_id,
        "state": summary.state,
        "end_reason": summary.end_reason,
        "courier_id": summary.courier_id,
        "delivered_by": summary.delivered_by,
        "decision_id": summary.decision_id,
        "created_ts_ms": summary.created_ts_ms,
        "age_min": round(summary.age_min(now_ms), 2),
        "promise_ts_ms": summary.promise_ts_ms,
        "ready_ts_ms": summary.ready_ts_ms,
        "ready": summary.ready_ts_ms is not None and summary.ready_ts_ms <= now_ms,
        "picked_up_ts_ms": summary.picked_up_ts_ms,
        "delivered_ts_ms": summary.delivered_ts_ms,
        "eta_p50_ts_ms": summary.eta_p50_ts_ms,
        "eta_p90_ts_ms": summary.eta_p90_ts_ms,
        "predicted_lateness_min": _round(summary.predicted_lateness_min),
        "pickup": _point(summary.pickup),
        "dropoff": _point(summary.dropoff),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def orders_view(model: OpsModel, state: str | None = None) -> dict[str, Any]:
    """`GET /api/orders`: every known order (optionally only those in `state`, or `live`)."""
    rows = []
    for summary in model.summaries():
        if state == "live" and summary.ended:
            continue
        if state not in (None, "live") and summary.state != state:
            continue
        rows.append(order_row(summary, model.clock_ms))
    counts = Counter(s.state for s in model.summaries())
    return {"now_ts_ms": model.clock_ms, "counts": dict(sorted(counts.items())), "orders": rows}


def decision_row(decision: Decision, order_id: str, controls: Sequence[Control]) -> dict[str, Any]:
    """One step of an order's decision history.

    A proposal carries its cost terms in cost minutes (`terms[].cost_min`, adding up to
    `cost_min` within `rounding_tolerance_min`), the quantity behind each term when the weights
    of its policy version are known, the runner-up, and this order's drop-off ETA quantiles in
    minutes from the decision.
    """
    event = decision.event
    row: dict[str, Any] = {
        "kind": decision.kind,
        "ts_ms": decision.ts_ms,
        "event_id": event["event_id"],
        "decision_id": decision.decision_id,
        "shard": event["shard"],
        "courier_id": event.get("courier_id"),
        "order_ids": list(event.get("order_ids") or [event.get("order_id")]),
        "reason": event.get("reason"),
        "detail": event.get("detail"),
        "policy_version": event.get("policy_version"),
        "model_version": event.get("model_version"),
    }
    if decision.kind != "proposed":
        return row
    explanation = event["explanation"]
    terms = {
        str(k).removesuffix(TERM_UNIT_SUFFIX): float(v) for k, v in explanation["terms"].items()
    }
    weights = weights_of_version(str(event["policy_version"]), str(event["shard"]), controls)
    rows = term_rows(terms, weights)
    eta = (event.get("etas") or {}).get(order_id)
    cost_min = float(event["cost"])
    runner_up_cost = explanation.get("runner_up_cost")
    row.update(
        reason=explanation.get("reason"),
        cost_min=cost_min,
        terms=rows,
        terms_sum_min=round(sum(r["cost_min"] for r in rows), 6),
        rounding_tolerance_min=ROUNDING_TOLERANCE_MIN,
        weights_known=weights is not None,
        runner_up_courier_id=explanation.get("runner_up_courier_id"),
        runner_up_cost_min=runner_up_cost,
        runner_up_margin_min=None
        if runner_up_cost is None
        else round(float(runner_up_cost) - cost_min, 4),
        lease_expires_ts_ms=event["lease_expires_ts_ms"],
        eta_p50_min=None if eta is None else round(eta["p50_s"] / 60, 2),
        eta_p90_min=None if eta is None else round(eta["p90_s"] / 60, 2),
        eta_fallback_used=None if eta is None else eta.get("fallback_used"),
    )
    return row


def order_detail(model: OpsModel, order_id: str) -> dict[str, Any] | None:
    """`GET /api/orders/<id>`: the order and its decision history (None if unknown)."""
    summary = model.summary(order_id)
    record = model.orders.get(order_id)
    if summary is None or record is None:
        return None
    rejected = model.dead_letters.rejected
    milestones = []
    for name in record.milestones:
        found = record.milestone(name, rejected)
        if found is not None:
            milestones.append({"name": name, "ts_ms": found.ts_ms})
    milestones.sort(key=lambda m: (m["ts_ms"], m["name"]))
    controls = model.control_list()
    return {
        "now_ts_ms": model.clock_ms,
        "order": order_row(summary, model.clock_ms),
        "milestones": milestones,
        "decisions": [decision_row(d, order_id, controls) for d in record.history()],
    }


def work_by_courier(
    summaries: Iterable[OrderSummary],
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(orders carried or to be picked up, orders offered) per courier, from live orders."""
    load: dict[str, list[str]] = defaultdict(list)
    offered: dict[str, list[str]] = defaultdict(list)
    for s in summaries:
        if s.courier_id is None:
            continue
        if s.state in CARRYING:
            load[s.courier_id].append(s.order_id)
        elif s.state == "offered":
            offered[s.courier_id].append(s.order_id)
    return load, offered


def couriers_view(model: OpsModel) -> dict[str, Any]:
    """`GET /api/couriers`: every courier with status, load and position.

    `activity` is `offline`, `busy` (holds committed orders), `offered` (an offer is pending)
    or `idle`; `unknown` until a state update is read.
    """
    load, offered = work_by_courier(model.summaries())
    rows = []
    for courier in sorted(model.couriers.values(), key=lambda c: c.courier_id):
        if courier.status is None:
            activity = "unknown"
        elif not courier.online:
            activity = "offline"
        elif load.get(courier.courier_id):
            activity = "busy"
        elif offered.get(courier.courier_id):
            activity = "offered"
        else:
            activity = "idle"
        rows.append(
            {
                "courier_id": courier.courier_id,
                "shard": courier.shard,
                "status": courier.status,
                "activity": activity,
                "capacity": courier.capacity,
                "vehicle": courier.vehicle,
                "load": len(load.get(courier.courier_id, ())),
                "orders": sorted(load.get(courier.courier_id, ())),
                "offered_orders": sorted(offered.get(courier.courier_id, ())),
                "lat": courier.lat,
                "lon": courier.lon,
                "position_ts_ms": courier.position_ts_ms or None,
            }
        )
    online = [r for r in rows if r["status"] == "online"]
    return {
        "now_ts_ms": model.clock_ms,
        "online": len(online),
        "online_without_position": sum(1 for r in online if r["lat"] is None),
        "couriers": rows,
    }


def merchants_view(model: OpsModel) -> dict[str, Any]:
    """`GET /api/merchants`: merchants of the orders in the model, with their open orders."""
    merchants: dict[str, dict[str, Any]] = {}
    for s in model.summaries():
        m = merchants.setdefault(
            s.merchant_id,
            {"merchant_id": s.merchant_id, "shard": s.shard, "orders": 0, "live_orders": 0},
        )
        m["lat"], m["lon"] = s.pickup
        m["orders"] += 1
        m["live_orders"] += 0 if s.ended else 1
        m["last_order_ts_ms"] = s.created_ts_ms
    return {"merchants": sorted(merchants.values(), key=lambda m: m["merchant_id"])}


def map_view(model: OpsModel) -> dict[str, Any]:
    """`GET /api/map`: online couriers with a position, live orders and merchants, projected.

    The origin is the centre of the points' bounding box; `x_m`/`y_m` are metres from it
    (equirectangular, fine at metro scale). A live order has its pickup at `pickup_x_m`,
    `pickup_y_m` and its drop-off at `dropoff_x_m`, `dropoff_y_m`.
    """
    now_ms = model.clock_ms
    couriers = [c for c in couriers_view(model)["couriers"] if c["status"] == "online" and c["lat"]]
    orders = [order_row(s, now_ms) for s in model.summaries() if not s.ended]
    merchants = merchants_view(model)["merchants"]
    places: list[tuple[dict[str, Any], str, float, float]] = [
        *((c, "", c["lat"], c["lon"]) for c in couriers),
        *((m, "", m["lat"], m["lon"]) for m in merchants),
        *((o, "pickup_", o["pickup"]["lat"], o["pickup"]["lon"]) for o in orders),
        *((o, "dropoff_", o["dropoff"]["lat"], o["dropoff"]["lon"]) for o in orders),
    ]
    origin = None
    if places:
        lats = np.array([p[2] for p in places])
        lons = np.array([p[3] for p in places])
        origin = (float(lats.min() + lats.max()) / 2, float(lons.min() + lons.max()) / 2)
        xs, ys = project_m(lats, lons, *origin)
        for (item, prefix, _, _), x, y in zip(places, xs.tolist(), ys.tolist(), strict=True):
            item[f"{prefix}x_m"] = round(x, 1)
            item[f"{prefix}y_m"] = round(y, 1)
    return {
        "now_ts_ms": now_ms,
        "origin": None if origin is None else _point(origin),
        "couriers": couriers,
        "orders": orders,
        "merchants": merchants,
    }


def dead_letters_view(model: OpsModel) -> dict[str, Any]:
    """`GET /api/dead_letters`: counts by source topic and reason, and the latest letters."""
    tally = model.dead_letters
    return {
        "total": tally.total,
        "by_reason": [
            {"source_topic": topic, "reason": reason, "count": n}
            for (topic, reason), n in sorted(tally.counts.items())
        ],
        "latest": [
            {
                "ts_ms": x.ts_ms,
                "dlq_topic": x.dlq_topic,
                "source_topic": x.source_topic,
                "reason": x.reason,
                "message": x.message,
                "exception": x.exception,
                "index": x.index,
                "key": x.key,
                "value": x.value,
            }
            for x in tally.latest
        ],
    }
