"""Greedy nearest-available dispatch: the baseline policy and the circuit-breaker fallback.

Open orders are taken in ready-time order (then placement, then id); each goes at once to the
candidate courier with the earliest possible pickup (ties: shorter travel, then courier row)
that has not already received an order in this tick, appended after its current route. No
bundling, no holding, no repositioning.
"""

from __future__ import annotations

import numpy as np

from dispatch.candidates import TickFrame, courier_index, nearest_couriers, plan_pairs
from dispatch.costs import single_terms
from dispatch.decisions import Assignment, Decisions
from dispatch.policy import Policy
from dispatch.routes import explanation, new_job_assignment, runner_up
from dispatch.snapshot import Snapshot


def greedy_decide(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, *, fallback: bool
) -> Decisions:
    """Greedy decisions for this tick.

    Args:
        snapshot: the tick's snapshot.
        frame: its derived arrays.
        policy: candidate limits and cost weights (for the explanation) come from here.
        fallback: True when called as the circuit breaker of another policy.
    """
    orders = snapshot.orders
    rows = frame.open_rows
    key_ids = np.asarray(orders.order_id, dtype=object)[rows] if rows.size else rows
    rank = np.lexsort((key_ids, frame.placed_s[rows], frame.ready_s[rows])) if rows.size else rows
    rows = rows[rank]
    index = courier_index(snapshot, frame, policy)
    o_rows, c_rows, stride = nearest_couriers(snapshot, index, rows, policy)
    pairs = plan_pairs(snapshot, frame, o_rows, c_rows, policy, stride)
    pairs = pairs.take(pairs.feasible)
    terms = single_terms(snapshot, frame, pairs, policy)
    costs = terms.sum(axis=1)
    position = np.empty(orders.n, dtype=np.int64)
    position[rows] = np.arange(rows.size)
    order_rank = position[pairs.order_row]
    by_preference = np.lexsort(
        (pairs.courier_row, pairs.travel_p50_s, pairs.pickup_p50_s, order_rank)
    )
    starts = np.searchsorted(order_rank[by_preference], np.arange(rows.size + 1))
    used: set[int] = set()
    assignments: list[Assignment] = []
    held: list[str] = []
    for i, row in enumerate(rows):
        candidates = by_preference[starts[i] : starts[i + 1]]
        chosen = next((e for e in candidates if int(pairs.courier_row[e]) not in used), None)
        if chosen is None:
            held.append(orders.order_id[row])
            continue
        c = int(pairs.courier_row[chosen])
        used.add(c)
        others = candidates[candidates != chosen]
        second, second_cost = runner_up(pairs.courier_row[others], costs[others], c)
        explain = explanation(
            terms[chosen],
            None if second is None else snapshot.couriers.courier_id[second],
            second_cost,
            "immediate",
        )
        assignments.append(new_job_assignment(snapshot, frame, pairs, int(chosen), explain))
    return Decisions(
        now_ts_ms=snapshot.now_ts_ms,
        policy_name=policy.name,
        assignments=tuple(assignments),
        repositions=(),
        held_order_ids=tuple(held),
        fallback_used=fallback,
    )
