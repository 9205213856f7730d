"""Orders in the read model: milestones from the input topics, decisions from the outputs.

The console reads many topics side by side, so records about one order arrive in no useful
order. An order therefore keeps every milestone and decision with its event time, and its state
is derived from the whole set (`summarize`): reading order never changes the result. An input
record that the worker dead-lettered is ignored once its dead letter has been read (its
`RecordRef` is in `rejected`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Where a record was read: (topic, partition, offset).
RecordRef = tuple[str, int, int]

MS_PER_MIN = 60_000

#: Milestone name of each input event type (arrivals are named by their stop).
MILESTONES: dict[str, str] = {
    "order_created": "created",
    "order_cancelled": "cancelled",
    "merchant_accepted": "accepted",
    "order_ready": "ready",
    "delivery_picked_up": "picked_up",
    "delivery_delivered": "delivered",
}

#: Decision kind of each output event type, and its rank among events of one event time.
DECISIONS: dict[str, tuple[str, int]] = {
    "assignment_proposed": ("proposed", 0),
    "assignment_committed": ("committed", 1),
    "assignment_released": ("released", 2),
    "order_expired": ("expired", 3),
}


def milestone_name(event: Mapping[str, Any]) -> str | None:
    """The milestone an input event marks (`arrived_pickup`, `created`, ...), or None."""
    if event["type"] == "delivery_arrived":
        return f"arrived_{event['stop']}"
    return MILESTONES.get(str(event["type"]))


@dataclass(frozen=True)
class Milestone:
    """One input event about an order, with the record it came from."""

    ts_ms: int
    ref: RecordRef | None
    event: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """One dispatch output about an order: proposed, committed, released or expired."""

    kind: str
    rank: int
    ts_ms: int
    event: Mapping[str, Any]

    @property
    def decision_id(self) -> str | None:
        """The decision this event belongs to (None for `order_expired`)."""
        value = self.event.get("decision_id")
        return None if value is None else str(value)


@dataclass
class OrderRecord:
    """Everything read about one order (some of it possibly before its `order_created`)."""

    order_id: str
    milestones: dict[str, list[Milestone]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    eta_update: Mapping[str, Any] | None = None
    newest_ts_ms: int = 0

    def add_milestone(self, name: str, milestone: Milestone) -> None:
        """Keep `milestone` (a redelivered record, same ref, is kept once)."""
        candidates = self.milestones.setdefault(name, [])
        if milestone.ref is None or all(m.ref != milestone.ref for m in candidates):
            candidates.append(milestone)
            candidates.sort(key=lambda m: (m.ts_ms, m.ref or ("", 0, 0)))
        self.newest_ts_ms = max(self.newest_ts_ms, milestone.ts_ms)

    def milestone(self, name: str, rejected: Container[RecordRef]) -> Milestone | None:
        """The earliest `name` milestone whose record the worker did not reject."""
        for candidate in self.milestones.get(name, ()):
            if candidate.ref is None or candidate.ref not in rejected:
                return candidate
        return None

    def add_decision(self, event: Mapping[str, Any]) -> None:
        """Keep an output event about this order (a repeated `event_id` is kept once)."""
        kind, rank = DECISIONS[str(event["type"])]
        ts_ms = int(event["ts_ms"])
        self.decisions.setdefault(str(event["event_id"]), Decision(kind, rank, ts_ms, event))
        self.newest_ts_ms = max(self.newest_ts_ms, ts_ms)

    def add_eta(self, event: Mapping[str, Any]) -> None:
        """Keep the newest `eta_update` (by event time)."""
        if self.eta_update is None or int(event["ts_ms"]) >= int(self.eta_update["ts_ms"]):
            self.eta_update = event
        self.newest_ts_ms = max(self.newest_ts_ms, int(event["ts_ms"]))

    def history(self) -> list[Decision]:
        """Every decision event, oldest first (same time: proposed, committed, released)."""
        return sorted(self.decisions.values(), key=lambda d: (d.ts_ms, d.rank, d.event["event_id"]))


#: States an order can be in, from the console's point of view.
ENDED_STATES = ("delivered", "cancelled", "expired")


@dataclass(frozen=True)
class OrderSummary:
    """An order's current state, derived from its record.

    Times are event times (epoch ms); `lat`/`lon` pairs are degrees. `state` is one of `open`
    (no courier), `offered` (a proposal is pending), `assigned` (committed, not picked up),
    `picked_up`, `delivered`, `cancelled`, `expired`. `courier_id` is the courier offered,
    committed to or carrying a live order; `delivered_by` the one that delivered it. `eta_*` are
    the drop-off quantiles of the live proposal or commitment (None without one).
    """

    order_id: str
    shard: str
    merchant_id: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    created_ts_ms: int
    promise_ts_ms: int | None
    ready_ts_ms: int | None
    picked_up_ts_ms: int | None
    delivered_ts_ms: int | None
    cancelled_ts_ms: int | None
    expired_ts_ms: int | None
    end_reason: str | None
    state: str
    courier_id: str | None
    delivered_by: str | None
    decision_id: str | None
    eta_p50_ts_ms: int | None
    eta_p90_ts_ms: int | None

    @property
    def ended(self) -> bool:
        """Delivered, cancelled or expired."""
        return self.state in ENDED_STATES

    @property
    def ended_ts_ms(self) -> int | None:
        """When the order ended (None while it is live)."""
        return {
            "delivered": self.delivered_ts_ms,
            "cancelled": self.cancelled_ts_ms,
            "expired": self.expired_ts_ms,
        }.get(self.state)

    @property
    def predicted_lateness_min(self) -> float | None:
        """Minutes the p90 drop-off is past the promise (negative: slack); None if unknown."""
        if self.eta_p90_ts_ms is None or self.promise_ts_ms is None:
            return None
        return (self.eta_p90_ts_ms - self.promise_ts_ms) / MS_PER_MIN

    @property
    def ctod_min(self) -> float | None:
        """Click-to-door minutes of a delivered order."""
        if self.delivered_ts_ms is None:
            return None
        return (self.delivered_ts_ms - self.created_ts_ms) / MS_PER_MIN

    def age_min(self, now_ms: int) -> float:
        """Minutes since the order was placed, at `now_ms` (or at its end, once ended)."""
        end = self.ended_ts_ms
        return ((end if end is not None else now_ms) - self.created_ts_ms) / MS_PER_MIN


def _point(value: Mapping[str, Any]) -> tuple[float, float]:
    return float(value["lat"]), float(value["lon"])


def _ts(milestone: Milestone | None) -> int | None:
    return None if milestone is None else milestone.ts_ms


def _live_decision(record: OrderRecord) -> Decision | None:
    """The newest proposal, commitment or release (what decides who has the order now)."""
    live = [d for d in record.history() if d.kind != "expired"]
    return live[-1] if live else None


def _eta(record: OrderRecord, live: Decision | None) -> tuple[int, int] | None:
    """(p50, p90) drop-off times of the live decision: its proposal's or a newer eta_update."""
    if live is None or live.kind == "released":
        return None
    candidates: list[tuple[int, int, int]] = []
    for decision in record.decisions.values():
        eta = decision.event.get("etas", {}).get(record.order_id)
        if decision.kind == "proposed" and decision.decision_id == live.decision_id and eta:
            ts = decision.ts_ms
            p50_ms, p90_ms = round(eta["p50_s"] * 1000), round(eta["p90_s"] * 1000)
            candidates.append((ts, ts + p50_ms, ts + p90_ms))
    update = record.eta_update
    if update is not None and live.kind == "committed" and int(update["ts_ms"]) >= live.ts_ms:
        candidates.append(
            (
                int(update["ts_ms"]),
                int(update["dropoff_p50_ts_ms"]),
                int(update["dropoff_p90_ts_ms"]),
            )
        )
    if not candidates:
        return None
    _, p50, p90 = max(candidates)
    return p50, p90


def summarize(record: OrderRecord, rejected: Container[RecordRef]) -> OrderSummary | None:
    """The order's state, or None while its `order_created` is unknown (or was rejected)."""
    created = record.milestone("created", rejected)
    if created is None:
        return None
    placed = created.event
    delivered = record.milestone("delivered", rejected)
    cancelled = record.milestone("cancelled", rejected)
    picked = record.milestone("picked_up", rejected)
    expired = next((d for d in record.history() if d.kind == "expired"), None)
    live = _live_decision(record)
    courier_id = None
    if live is not None and live.kind in ("proposed", "committed"):
        courier_id = str(live.event["courier_id"])
    if delivered is not None:
        state, end_reason = "delivered", None
    elif cancelled is not None:
        state, end_reason = "cancelled", str(cancelled.event.get("reason", ""))
    elif expired is not None:
        state, end_reason = "expired", str(expired.event.get("reason", ""))
    elif picked is not None:
        state, end_reason = "picked_up", None
        courier_id = str(picked.event["courier_id"])
    elif live is not None and live.kind == "committed":
        state, end_reason = "assigned", None
    elif live is not None and live.kind == "proposed":
        state, end_reason = "offered", None
    else:
        state, end_reason = "open", None
    eta = _eta(record, live) if state in ("offered", "assigned", "picked_up") else None
    return OrderSummary(
        order_id=record.order_id,
        shard=str(placed["shard"]),
        merchant_id=str(placed["merchant_id"]),
        pickup=_point(placed["pickup"]),
        dropoff=_point(placed["dropoff"]),
        created_ts_ms=created.ts_ms,
        promise_ts_ms=placed.get("promise_ts_ms"),
        ready_ts_ms=_ts(record.milestone("ready", rejected)),
        picked_up_ts_ms=_ts(picked),
        delivered_ts_ms=_ts(delivered),
        cancelled_ts_ms=_ts(cancelled),
        expired_ts_ms=None if expired is None else expired.ts_ms,
        end_reason=end_reason,
        state=state,
        courier_id=courier_id if state not in ENDED_STATES else None,
        delivered_by=None if delivered is None else str(delivered.event["courier_id"]),
        decision_id=live.decision_id if live is not None and courier_id is not None else None,
        eta_p50_ts_ms=None if eta is None else eta[0],
        eta_p90_ts_ms=None if eta is None else eta[1],
    )
