"""KPIs of a simulation run, computed from its log alone (inputs and outputs).

Definitions (every time is event time; minutes are 60 000 ms):

* `orders`: distinct `order_created` inputs.
* Each order has exactly one outcome, in this precedence:
  `delivered` (a `delivery_delivered` input), else `cancelled` (an `order_cancelled` input),
  else `expired` — the dispatcher emitted `order_expired` for it (`expired_with_reason`), or it
  was still open `max_order_age_s` after placement when the log ends (`expired_past_max_age`) —
  else `open_at_end`. So `delivered + cancelled + expired + open_at_end == orders`.
* `on_time_rate`: share of delivered orders delivered at or before their `promise_ts_ms`
  (orders without a promise are left out).
* `ctod_p50_min`, `ctod_p90_min`, `ctod_mean_min`: click-to-door, delivery time minus
  `order_created` time, over delivered orders.
* `ready_to_pickup_p50_min`: pickup time minus `order_ready` time over picked-up orders (negative:
  the courier picked up before the merchant's ready event).
* `courier_wait_min` and `food_wait_min`, over picked-up orders with a ready time and an arrival:
  the arrival is the picking courier's last `delivery_arrived` at the pickup before the pickup;
  the courier waits `max(0, ready − arrival)` for the food and the food waits
  `max(0, arrival − ready)` for the courier (means, in minutes).
* `acceptance_rate`: accept answers over all `assignment_response` inputs (late ones included).
  `late_responses` counts answers after their offer's `lease_expires_ts_ms`.
* `courier_utilization`: summed over couriers, time online while holding at least one live
  committed order, over time online. Online: from `courier_online` to the next
  `courier_offline` (or the log's end). A committed order is live from its
  `assignment_committed` until delivered, cancelled, expired, or released under that decision.
* ETA quality, over delivered orders with an announced ETA. With `eta_source="proposal"`
  (default) the ETA is the `etas[order_id]` (p50_s, p90_s, relative to the proposal's ts_ms) of
  the accepted offer: the `assignment_proposed` whose decision committed the order last before
  delivery (or, when no offer has that decision id, the last offer of the order that got an
  accept). With `eta_source="update"` it is the last `eta_update` of the order before its pickup,
  falling back to the proposal when there is none. With `eta_source="placement"` it is the
  `eta_update` announced when the order was placed (its `ts_ms` is the `order_created` time);
  orders without one are left out. Realized = delivery time.
  `eta_p50_abs_err_min` / `eta_p90_abs_err_min`: median and 90th percentile of
  |realized − predicted p50|; `eta_p90_coverage`: share with realized <= predicted p90;
  `fallback_rate`: share of those ETAs that are the base ETA rather than a model's, and
  `fallback_reasons`: their count by reason. An ETA whose offer (or update) carries the
  model-free predictor's `model_version` (`MODEL_FREE_VERSION`: no model is configured) is a
  fallback with reason `missing_model`; otherwise one flagged `fallback_used` counts under its
  `fallback_reason` (`unspecified` when it gives none).
* `circuit_breaker_ticks`: as passed by the caller; otherwise distinct (shard, ts_ms) of outputs
  that say a tick fell back to the greedy policy: a truthy top-level or explanation
  `circuit_breaker` field, or a positive `explanation.terms.circuit_breaker`.
* `invariant_violations`: as passed by the caller (the consistency checker's count); None when
  no check ran.

Rates and quantiles over an empty set are None.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from simulators.city.protocol import SimRecord
from simulators.city.runner import SimulationLog

MS_PER_MIN = 60_000.0
#: `model_version` of decisions made without any ETA model: the engine's straight-line
#: predictor (`dispatch.live.eta.StraightLinePredictor`), i.e. the base ETA itself.
MODEL_FREE_VERSION = "straight-line"
#: Fallback reason of an ETA served while no model is configured.
MISSING_MODEL = "missing_model"

EtaSource = Literal["proposal", "update", "placement"]


@dataclass
class OrderOutcome:
    """What happened to one order, from the log."""

    order_id: str
    shard: str
    created_ts_ms: int
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    promise_ts_ms: int | None = None
    ready_ts_ms: int | None = None
    arrived_ts_ms: int | None = None
    picked_ts_ms: int | None = None
    picked_by: str | None = None
    delivered_ts_ms: int | None = None
    cancelled_ts_ms: int | None = None
    expired_ts_ms: int | None = None
    expired_reason: str | None = None
    outcome: str = "open"  # delivered | cancelled | expired | open


@dataclass(frozen=True)
class EtaSample:
    """One announced dropoff ETA and the realized delivery time (epoch ms)."""

    order_id: str
    source: str  # proposal | update
    issued_ts_ms: int
    p50_ts_ms: int
    p90_ts_ms: int
    realized_ts_ms: int
    fallback_used: bool
    fallback_reason: str | None = None


def _events(records: Iterable[SimRecord]) -> Iterable[dict[str, Any]]:
    return (r.event for r in records)


def fallback_of(
    model_version: Any, fallback_used: Any, fallback_reason: Any
) -> tuple[bool, str | None]:
    """Whether an announced ETA is the base rather than a model's, and why (None: it is not).

    The model-free version is `missing_model` whatever the flag says: no model could have
    served it.
    """
    if model_version == MODEL_FREE_VERSION:
        return True, MISSING_MODEL
    if fallback_used:
        return True, str(fallback_reason) if fallback_reason else "unspecified"
    return False, None


def order_outcomes(log: SimulationLog) -> dict[str, OrderOutcome]:
    """Every order of the log with its milestones and outcome (see the module's definitions)."""
    out: dict[str, OrderOutcome] = {}
    for body in _events(log.inputs):
        if body["type"] == "order_created" and body["order_id"] not in out:
            p, d = body["pickup"], body["dropoff"]
            out[body["order_id"]] = OrderOutcome(
                order_id=body["order_id"],
                shard=body["shard"],
                created_ts_ms=int(body["ts_ms"]),
                pickup=(float(p["lat"]), float(p["lon"])),
                dropoff=(float(d["lat"]), float(d["lon"])),
                promise_ts_ms=body.get("promise_ts_ms"),
            )
    firsts = {
        "order_ready": "ready_ts_ms",
        "delivery_picked_up": "picked_ts_ms",
        "delivery_delivered": "delivered_ts_ms",
        "order_cancelled": "cancelled_ts_ms",
    }
    arrivals: dict[tuple[str, str], list[int]] = defaultdict(list)
    for body in _events(log.inputs):
        attr = firsts.get(body["type"])
        order = out.get(str(body.get("order_id")))
        if attr is not None and order is not None and getattr(order, attr) is None:
            setattr(order, attr, int(body["ts_ms"]))
            if attr == "picked_ts_ms":
                order.picked_by = str(body["courier_id"])
        if body["type"] == "delivery_arrived" and body.get("stop") == "pickup":
            arrivals[(str(body["order_id"]), str(body["courier_id"]))].append(int(body["ts_ms"]))
    for order in out.values():
        if order.picked_ts_ms is None or order.picked_by is None:
            continue
        before = [
            t
            for t in arrivals.get((order.order_id, order.picked_by), [])
            if t <= order.picked_ts_ms
        ]
        order.arrived_ts_ms = max(before) if before else None
    for body in _events(log.outputs):
        order = out.get(str(body.get("order_id")))
        if body["type"] == "order_expired" and order is not None and order.expired_ts_ms is None:
            order.expired_ts_ms = int(body["ts_ms"])
            order.expired_reason = str(body["reason"])
    max_age_ms = round(log.max_order_age_s * 1000)
    for order in out.values():
        if order.delivered_ts_ms is not None:
            order.outcome = "delivered"
        elif order.cancelled_ts_ms is not None:
            order.outcome = "cancelled"
        elif order.expired_ts_ms is not None or log.end_ts_ms - order.created_ts_ms >= max_age_ms:
            order.outcome = "expired"
        else:
            order.outcome = "open"
    return out


def eta_samples(
    log: SimulationLog,
    outcomes: dict[str, OrderOutcome] | None = None,
    eta_source: EtaSource = "proposal",
) -> list[EtaSample]:
    """Announced dropoff ETAs of delivered orders beside their realized delivery times."""
    outcomes = outcomes if outcomes is not None else order_outcomes(log)
    proposals: dict[str, dict[str, Any]] = {}
    accepted: set[str] = set()
    last_commit: dict[str, tuple[int, str]] = {}
    updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in _events(log.outputs):
        kind = body["type"]
        if kind == "assignment_proposed":
            proposals.setdefault(str(body["decision_id"]), body)
        elif kind == "assignment_committed":
            for oid in body["order_ids"]:
                last_commit[str(oid)] = (int(body["ts_ms"]), str(body["decision_id"]))
        elif kind == "eta_update":
            updates[str(body["order_id"])].append(body)
    for body in _events(log.inputs):
        if body["type"] == "assignment_response" and body["response"] == "accept":
            accepted.add(str(body["decision_id"]))
    accepted_by_order: dict[str, dict[str, Any]] = {}
    for decision_id, body in proposals.items():
        if decision_id in accepted:
            for oid in body["order_ids"]:
                prev = accepted_by_order.get(str(oid))
                if prev is None or int(prev["ts_ms"]) <= int(body["ts_ms"]):
                    accepted_by_order[str(oid)] = body
    samples: list[EtaSample] = []
    for oid, order in outcomes.items():
        if order.delivered_ts_ms is None:
            continue
        realized = order.delivered_ts_ms
        if eta_source == "placement":
            announced = [u for u in updates.get(oid, []) if int(u["ts_ms"]) == order.created_ts_ms]
            if announced:
                samples.append(_update_sample(oid, "placement", announced[0], realized))
            continue
        if eta_source == "update":
            cutoff = order.picked_ts_ms if order.picked_ts_ms is not None else realized
            before = [u for u in updates.get(oid, []) if int(u["ts_ms"]) <= cutoff]
            if before:
                u = max(before, key=lambda e: int(e["ts_ms"]))
                samples.append(_update_sample(oid, "update", u, realized))
                continue
        proposal = None
        commit = last_commit.get(oid)
        if commit is not None and commit[1] in proposals:
            proposal = proposals[commit[1]]
        if proposal is None:
            proposal = accepted_by_order.get(oid)
        eta = (proposal or {}).get("etas", {}).get(oid)
        if proposal is None or eta is None:
            continue
        issued = int(proposal["ts_ms"])
        used, reason = fallback_of(
            proposal.get("model_version"), eta.get("fallback_used"), eta.get("fallback_reason")
        )
        samples.append(
            EtaSample(
                oid,
                "proposal",
                issued,
                issued + round(float(eta["p50_s"]) * 1000),
                issued + round(float(eta["p90_s"]) * 1000),
                realized,
                used,
                reason,
            )
        )
    return samples


def _update_sample(order_id: str, source: str, update: dict[str, Any], realized: int) -> EtaSample:
    """The `EtaSample` of an `eta_update` announced for an order delivered at `realized`."""
    used, reason = fallback_of(
        update.get("model_version"), update.get("fallback_used"), update.get("fallback_reason")
    )
    return EtaSample(
        order_id,
        source,
        int(update["ts_ms"]),
        int(update["dropoff_p50_ts_ms"]),
        int(update["dropoff_p90_ts_ms"]),
        realized,
        used,
        reason,
    )


def courier_times(log: SimulationLog) -> tuple[float, float]:
    """(busy seconds, online seconds) summed over couriers (see the module's definitions)."""
    prio = {
        "courier_online": 0,
        "courier_offline": 0,
        "delivery_delivered": 1,
        "order_cancelled": 1,
        "order_expired": 1,
        "assignment_released": 2,
        "assignment_committed": 3,
    }
    stream = [
        (int(b["ts_ms"]), prio[b["type"]], i, b)
        for i, b in enumerate([*_events(log.inputs), *_events(log.outputs)])
        if b["type"] in prio
    ]
    stream.sort(key=lambda x: (x[0], x[1], x[2]))
    online_since: dict[str, int] = {}
    held: dict[str, dict[str, str]] = defaultdict(dict)  # courier -> order -> decision
    holder: dict[str, str] = {}  # order -> courier
    busy_since: dict[str, int] = {}
    terminal: set[str] = set()
    busy_s = online_s = 0.0

    def settle(courier: str, ts_ms: int) -> None:
        nonlocal busy_s
        is_busy = courier in online_since and bool(held[courier])
        if is_busy and courier not in busy_since:
            busy_since[courier] = ts_ms
        elif not is_busy and courier in busy_since:
            busy_s += (ts_ms - busy_since.pop(courier)) / 1000

    def unhold(order_id: str, ts_ms: int, decision: str | None = None) -> None:
        courier = holder.get(order_id)
        if courier is None or (decision is not None and held[courier].get(order_id) != decision):
            return
        del holder[order_id]
        held[courier].pop(order_id, None)
        settle(courier, ts_ms)

    for ts_ms, _, _, body in stream:
        kind = body["type"]
        if kind == "courier_online":
            courier = str(body["courier_id"])
            online_since.setdefault(courier, ts_ms)
            settle(courier, ts_ms)
        elif kind == "courier_offline":
            courier = str(body["courier_id"])
            if courier in online_since:
                online_s += (ts_ms - online_since.pop(courier)) / 1000
            settle(courier, ts_ms)
        elif kind in ("delivery_delivered", "order_cancelled", "order_expired"):
            terminal.add(str(body["order_id"]))
            unhold(str(body["order_id"]), ts_ms)
        elif kind == "assignment_released":
            for oid in body["order_ids"]:
                unhold(str(oid), ts_ms, str(body["decision_id"]))
        else:
            courier = str(body["courier_id"])
            for oid in map(str, body["order_ids"]):
                if oid in terminal:
                    continue
                if holder.get(oid) not in (None, courier):
                    unhold(oid, ts_ms)
                holder[oid] = courier
                held[courier][oid] = str(body["decision_id"])
            settle(courier, ts_ms)
    end = log.end_ts_ms
    for since in online_since.values():
        online_s += (end - since) / 1000
    for since in busy_since.values():
        busy_s += (end - since) / 1000
    return busy_s, online_s


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _circuit_breaker_ticks(log: SimulationLog) -> int:
    ticks: set[tuple[str, int]] = set()
    for body in _events(log.outputs):
        explanation = _as_dict(body.get("explanation"))
        terms = _as_dict(explanation.get("terms"))
        flagged = (
            bool(body.get("circuit_breaker"))
            or bool(explanation.get("circuit_breaker"))
            or float(terms.get("circuit_breaker", 0) or 0) > 0
        )
        if flagged:
            ticks.add((str(body.get("shard")), int(body["ts_ms"])))
    return len(ticks)


def compute_kpis(
    log: SimulationLog,
    *,
    invariant_violations: int | None = None,
    circuit_breaker_ticks: int | None = None,
    eta_source: EtaSource = "proposal",
) -> dict[str, Any]:
    """The run's KPIs as a JSON-able dict (definitions in the module docstring)."""
    outcomes = order_outcomes(log)
    by_outcome = Counter(o.outcome for o in outcomes.values())
    delivered = [o for o in outcomes.values() if o.delivered_ts_ms is not None]
    ctod = [
        (o.delivered_ts_ms - o.created_ts_ms) / MS_PER_MIN for o in delivered if o.delivered_ts_ms
    ]
    promised = [o for o in delivered if o.promise_ts_ms is not None]
    on_time = sum(1 for o in promised if (o.delivered_ts_ms or 0) <= (o.promise_ts_ms or 0))
    ready_to_pickup = [
        (o.picked_ts_ms - o.ready_ts_ms) / MS_PER_MIN
        for o in outcomes.values()
        if o.picked_ts_ms is not None and o.ready_ts_ms is not None
    ]
    met = [
        o for o in outcomes.values() if o.arrived_ts_ms is not None and o.ready_ts_ms is not None
    ]
    courier_wait = [max(0, (o.ready_ts_ms or 0) - (o.arrived_ts_ms or 0)) / MS_PER_MIN for o in met]
    food_wait = [max(0, (o.arrived_ts_ms or 0) - (o.ready_ts_ms or 0)) / MS_PER_MIN for o in met]
    expired_with_reason = sum(
        1 for o in outcomes.values() if o.outcome == "expired" and o.expired_reason is not None
    )
    leases = {
        str(b["decision_id"]): int(b["lease_expires_ts_ms"])
        for b in _events(log.outputs)
        if b["type"] == "assignment_proposed"
    }
    responses = [b for b in _events(log.inputs) if b["type"] == "assignment_response"]
    accepts = sum(1 for b in responses if b["response"] == "accept")
    late = sum(1 for b in responses if int(b["ts_ms"]) > leases.get(str(b["decision_id"]), 1 << 62))
    commits = [b for b in _events(log.outputs) if b["type"] == "assignment_committed"]
    releases = Counter(
        str(b["reason"]) for b in _events(log.outputs) if b["type"] == "assignment_released"
    )
    busy_s, online_s = courier_times(log)
    samples = eta_samples(log, outcomes, eta_source)
    errors = [abs(s.realized_ts_ms - s.p50_ts_ms) / MS_PER_MIN for s in samples]
    covered = sum(1 for s in samples if s.realized_ts_ms <= s.p90_ts_ms)
    fallbacks = sum(1 for s in samples if s.fallback_used)
    fallback_reasons = Counter(
        s.fallback_reason or "unspecified" for s in samples if s.fallback_used
    )
    fixes = sum(len(b["pings"]) for b in _events(log.inputs) if b["type"] == "courier_ping_batch")
    return {
        "scenario": log.config.name,
        "seed": log.config.seed,
        "orders": len(outcomes),
        "delivered": by_outcome["delivered"],
        "cancelled": by_outcome["cancelled"],
        "expired": by_outcome["expired"],
        "expired_with_reason": expired_with_reason,
        "expired_past_max_age": by_outcome["expired"] - expired_with_reason,
        "open_at_end": by_outcome["open"],
        "on_time_rate": _rounded(_share(on_time, len(promised))),
        "ctod_p50_min": _rounded(_quantile(ctod, 50), 2),
        "ctod_p90_min": _rounded(_quantile(ctod, 90), 2),
        "ctod_mean_min": _rounded(float(np.mean(ctod)) if ctod else None, 2),
        "ready_to_pickup_p50_min": _rounded(_quantile(ready_to_pickup, 50), 2),
        "courier_wait_min": _rounded(float(np.mean(courier_wait)) if met else None, 3),
        "food_wait_min": _rounded(float(np.mean(food_wait)) if met else None, 3),
        "acceptance_rate": _rounded(_share(accepts, len(responses))),
        "responses": len(responses),
        "late_responses": late,
        "proposals": len(leases),
        "commits": len(commits),
        "orders_per_commit": _rounded(
            float(np.mean([len(b["order_ids"]) for b in commits])) if commits else None, 3
        ),
        "releases_by_reason": dict(sorted(releases.items())),
        "courier_utilization": _rounded(busy_s / online_s if online_s > 0 else None),
        "courier_online_h": round(online_s / 3600, 2),
        "eta_source": eta_source,
        "eta_samples": len(samples),
        "eta_p50_abs_err_min": _rounded(_quantile(errors, 50), 2),
        "eta_p90_abs_err_min": _rounded(_quantile(errors, 90), 2),
        "eta_p90_coverage": _rounded(_share(covered, len(samples))),
        "fallback_rate": _rounded(_share(fallbacks, len(samples))),
        "fallback_reasons": dict(sorted(fallback_reasons.items())),
        "circuit_breaker_ticks": (
            circuit_breaker_ticks
            if circuit_breaker_ticks is not None
            else _circuit_breaker_ticks(log)
        ),
        "invariant_violations": invariant_violations,
        "ping_fixes": fixes,
        "input_records": len(log.inputs),
        "output_records": len(log.outputs),
        "ticks_per_shard": log.steps,
        "simulated_min": round((log.end_ts_ms - log.start_ts_ms) / MS_PER_MIN, 1),
        "settled": log.settled,
    }
