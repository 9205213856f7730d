"""What a tick decides: assignments (with routes and explanations) and courier repositions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: Namespace of every decision id (uuid5 over the decision's identifying inputs).
DECISION_NAMESPACE = uuid.UUID("5b0a4f64-9d1e-5c2f-8a35-6d0c7e2b9f10")


def decision_id(
    kind: str, shard_id: str, now_ts_ms: int, courier_id: str, order_ids: Iterable[str]
) -> str:
    """Deterministic id of a decision: the same inputs always give the same id.

    Args:
        kind: decision kind (`"assign"` or `"reposition"`).
        shard_id: shard that made the decision.
        now_ts_ms: tick time (epoch ms).
        courier_id: courier concerned.
        order_ids: orders concerned (order does not matter).

    Returns:
        A UUID string.
    """
    key = "|".join((kind, shard_id, str(int(now_ts_ms)), courier_id, ",".join(sorted(order_ids))))
    return str(uuid.uuid5(DECISION_NAMESPACE, key))


@dataclass(frozen=True)
class Explanation:
    """Why a courier got a job: the cost split into weighted terms, and the next-best courier.

    Attributes:
        terms: `(name, weighted value)` pairs; their sum is `total_cost`.
        total_cost: the cost the assignment minimised for this choice.
        runner_up_courier_id: the next-cheapest courier for the same orders, if any.
        runner_up_cost: that courier's total cost, if any.
        reason: why it was committed now (`"just_in_time"`, `"late"`, `"pickup_closing"`,
            `"immediate"`).
    """

    terms: tuple[tuple[str, float], ...]
    total_cost: float
    runner_up_courier_id: str | None
    runner_up_cost: float | None
    reason: str

    @property
    def term_sum(self) -> float:
        """Sum of the weighted terms (equals `total_cost` up to rounding)."""
        return float(sum(value for _, value in self.terms))


@dataclass(frozen=True)
class Stop:
    """One stop of a planned route.

    Attributes:
        kind: `"pickup"` at a merchant or `"dropoff"` at a customer.
        order_ids: orders handed over at this stop.
        xy_m: stop location, metres.
        arrival_ts_ms: planned arrival (p50, epoch ms).
        handover_ts_ms: planned handover (p50, epoch ms).
        handover_p90_ts_ms: handover if every leg takes its p90 time (epoch ms).
    """

    kind: Literal["pickup", "dropoff"]
    order_ids: tuple[str, ...]
    xy_m: tuple[float, float]
    arrival_ts_ms: int
    handover_ts_ms: int
    handover_p90_ts_ms: int


@dataclass(frozen=True)
class Assignment:
    """Commit a bundle of one merchant's orders to a courier, with its planned route.

    Attributes:
        decision_id: deterministic id (see `decision_id`).
        courier_id: the courier.
        merchant_id: the merchant where the bundle is picked up.
        order_ids: every order of the bundle, in drop-off sequence.
        new_order_ids: the orders this decision adds (all of them unless it updates a pending
            pickup).
        updates_pending: True when the decision extends the courier's pending pickup at the
            merchant instead of appending a new job after its current route.
        depart_ts_ms: when the courier leaves for the merchant (p50 plan, epoch ms).
        stops: pickup then drop-offs, with planned times.
        cost: total cost of the choice (sum of the explanation's terms).
        explanation: cost terms and runner-up.
    """

    decision_id: str
    courier_id: str
    merchant_id: str
    order_ids: tuple[str, ...]
    new_order_ids: tuple[str, ...]
    updates_pending: bool
    depart_ts_ms: int
    stops: tuple[Stop, ...]
    cost: float
    explanation: Explanation

    @property
    def pickup_ts_ms(self) -> int:
        """Planned handover time at the merchant (p50)."""
        return self.stops[0].handover_ts_ms


@dataclass(frozen=True)
class Reposition:
    """Send an idle courier to a merchant ahead of demand (no order attached).

    Attributes:
        decision_id: deterministic id.
        courier_id: the courier.
        merchant_id: target merchant.
        xy_m: target location, metres.
        depart_ts_ms: departure (epoch ms).
        arrival_ts_ms: planned arrival (p50, epoch ms).
        reason: why (`"upcoming_order"` or `"coverage"`).
    """

    decision_id: str
    courier_id: str
    merchant_id: str
    xy_m: tuple[float, float]
    depart_ts_ms: int
    arrival_ts_ms: int
    reason: str


@dataclass(frozen=True)
class Decisions:
    """Everything one tick decided.

    Attributes:
        now_ts_ms: tick time (epoch ms).
        policy_name: policy that decided.
        assignments: committed bundles; no order and no courier appears twice.
        repositions: courier moves ahead of demand; couriers here get no assignment.
        held_order_ids: open orders deliberately left for a later tick.
        fallback_used: True when the greedy circuit breaker replaced the optimiser.
    """

    now_ts_ms: int
    policy_name: str
    assignments: tuple[Assignment, ...]
    repositions: tuple[Reposition, ...]
    held_order_ids: tuple[str, ...]
    fallback_used: bool = False
