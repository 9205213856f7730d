"""The decision invariants of DESIGN.md, checked over a run's events (any run, any source).

Checked, in event time:

* `double_commit`: an order committed by a decision while another decision's commit of it is
  still live (not released, not delivered, not cancelled);
* `over_capacity`: a courier holding more live committed orders than its capacity;
* `commit_after_terminal`: a commit of an order already delivered, cancelled or expired;
* `unfinished_order` (only with `require_terminal`): an order that ends neither delivered, nor
  cancelled, nor expired with a reason;
* `trace_mismatch` (only when the records' `traceparent` headers are given): a commit whose
  header is missing, malformed, or not in the trace of any of its orders (the trace of the
  order's `order_created` header, or the one derived from the order id when that had none; see
  `contracts.tracing`). Orders whose `order_created` is not among the events are not checked.

Records of the same commit repeated with the same `decision_id` (at-least-once delivery) are not
violations; they are counted as `duplicate_commit_records` so consumers know to deduplicate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.tracing import TraceContextError, entity_trace, parse_traceparent

#: Violation kinds, in report order.
VIOLATIONS = (
    "double_commit",
    "over_capacity",
    "commit_after_terminal",
    "unfinished_order",
    "trace_mismatch",
)

# Order in which events with the same timestamp are applied: facts that end assignments first.
_PRIORITY = {
    "courier_online": 0,
    "courier_capacity": 0,
    "order_created": 1,
    "delivery_delivered": 2,
    "order_cancelled": 2,
    "order_expired": 2,
    "assignment_released": 3,
    "assignment_committed": 4,
}


@dataclass
class InvariantReport:
    """What the checker found: violations by kind (with examples) and run totals."""

    violations: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in VIOLATIONS})
    orders: int = 0
    commits: int = 0
    duplicate_commit_records: int = 0
    releases: int = 0
    delivered: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def violation_count(self) -> int:
        """Total number of violations."""
        return sum(len(v) for v in self.violations.values())

    def summary(self) -> dict[str, Any]:
        """Counts per kind and totals, JSON-able."""
        return {
            "violations": {k: len(v) for k, v in self.violations.items()},
            "violation_count": self.violation_count,
            "examples": {k: v[:5] for k, v in self.violations.items() if v},
            "orders": self.orders,
            "commits": self.commits,
            "duplicate_commit_records": self.duplicate_commit_records,
            "releases": self.releases,
            "delivered": self.delivered,
            "cancelled": self.cancelled,
            "expired": self.expired,
        }


def check_invariants(
    events: Iterable[dict[str, Any]],
    *,
    require_terminal: bool = False,
    traceparents: Mapping[str, str | None] | None = None,
) -> InvariantReport:
    """Check every invariant over `events` (decoded events of any topics, in any order).

    Args:
        events: the decoded events.
        require_terminal: also report orders that never ended.
        traceparents: the `traceparent` header of each record by its `event_id` (None when it
            had none); when given, commits are checked to continue their orders' traces.
    """
    ordered = sorted(
        (e for e in events if e.get("type") in _PRIORITY),
        key=lambda e: (int(e["ts_ms"]), _PRIORITY[e["type"]], str(e.get("event_id", ""))),
    )
    report = InvariantReport()
    live_by_order: dict[str, str] = {}  # order id -> decision id of its live commit
    decision_orders: dict[str, tuple[str, ...]] = {}
    decision_courier: dict[str, str] = {}
    live_by_courier: dict[str, set[str]] = defaultdict(set)  # courier -> live order ids
    capacity: dict[str, int] = {}
    terminal: dict[str, str] = {}
    seen_commits: set[str] = set()
    created: set[str] = set()
    # order id -> trace ids its records may continue (one per order_created record seen)
    order_traces: dict[str, set[str]] = defaultdict(set)

    def end_live(order_id: str) -> None:
        decision = live_by_order.pop(order_id, None)
        if decision is not None:
            live_by_courier[decision_courier[decision]].discard(order_id)

    for event in ordered:
        kind = event["type"]
        if kind in ("courier_online", "courier_capacity"):
            capacity[str(event["courier_id"])] = int(event["capacity"])
        elif kind == "order_created":
            order_id = str(event["order_id"])
            created.add(order_id)
            if traceparents is not None:
                header = traceparents.get(str(event.get("event_id", "")))
                order_traces[order_id].add(entity_trace(header, order_id).trace_id)
        elif kind in ("delivery_delivered", "order_cancelled", "order_expired"):
            order_id = str(event["order_id"])
            if order_id not in terminal:
                terminal[order_id] = kind
            end_live(order_id)
        elif kind == "assignment_released":
            report.releases += 1
            for order_id in event["order_ids"]:
                if live_by_order.get(order_id) == event["decision_id"]:
                    end_live(order_id)
        elif kind == "assignment_committed":
            decision = str(event["decision_id"])
            if decision in seen_commits:
                report.duplicate_commit_records += 1
                continue
            seen_commits.add(decision)
            report.commits += 1
            courier = str(event["courier_id"])
            orders = tuple(str(o) for o in event["order_ids"])
            decision_orders[decision] = orders
            decision_courier[decision] = courier
            for order_id in orders:
                if order_id in terminal:
                    report.violations["commit_after_terminal"].append(
                        f"{decision} commits {order_id} after {terminal[order_id]}"
                    )
                    continue
                other = live_by_order.get(order_id)
                if other is not None and other != decision:
                    report.violations["double_commit"].append(
                        f"{order_id} committed by {decision} while {other} is live"
                    )
                live_by_order[order_id] = decision
                live_by_courier[courier].add(order_id)
            if traceparents is not None:
                mismatch = _trace_mismatch(
                    traceparents.get(str(event.get("event_id", ""))), orders, order_traces
                )
                if mismatch:
                    report.violations["trace_mismatch"].append(f"{decision}: {mismatch}")
            limit = capacity.get(courier)
            if limit is not None and len(live_by_courier[courier]) > limit:
                report.violations["over_capacity"].append(
                    f"{courier} holds {len(live_by_courier[courier])} orders, capacity {limit}"
                    f" (at {decision})"
                )
    report.orders = len(created)
    report.delivered = sum(1 for k in terminal.values() if k == "delivery_delivered")
    report.cancelled = sum(1 for k in terminal.values() if k == "order_cancelled")
    report.expired = sum(1 for k in terminal.values() if k == "order_expired")
    if require_terminal:
        report.violations["unfinished_order"].extend(
            f"{order_id} never delivered, cancelled or expired"
            for order_id in sorted(created - set(terminal))
        )
    return report


def _trace_mismatch(
    header: str | None, orders: tuple[str, ...], order_traces: Mapping[str, set[str]]
) -> str | None:
    """Why a commit's `traceparent` breaks its orders' traces, or None when it does not.

    Orders with no known trace (their `order_created` was not seen) are not checked.
    """
    expected = set().union(*(order_traces.get(o, set()) for o in orders))
    if not expected:
        return None
    if header is None:
        return "no traceparent header"
    try:
        trace_id = parse_traceparent(header).trace_id
    except TraceContextError:
        return f"malformed traceparent {header!r}"
    if trace_id not in expected:
        return f"trace {trace_id} is none of its orders' traces"
    return None
