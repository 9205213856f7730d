"""The dispatch decision: `decide(snapshot, policy)` for a tick, `rank(...)` for one request.

`decide` (optimize mode): candidate couriers per open order from the spatial index; planned
times and cost terms for new jobs and for insertions into pending pickups; a min-cost matching
of orders to couriers and pending pickups; then just-in-time commitment: a matched order is
committed only when its courier is free and must leave now to be at the merchant when the food
is ready (or the order is already late), and an insertion only when the pickup happens before
the next tick. Everything else is held and re-optimised at the next tick. Idle couriers may
then be repositioned towards demand. Greedy mode, and the circuit breaker when a tick has more
candidate pairs than `policy.max_pairs`, use `dispatch.greedy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dispatch.bundles import Insertion, insertions
from dispatch.candidates import TickFrame, nearest_couriers, plan_pairs, tick_frame
from dispatch.costs import single_terms
from dispatch.decisions import Assignment, Decisions
from dispatch.greedy import greedy_decide
from dispatch.matching import min_cost_matching
from dispatch.policy import DEFAULT_POLICY, Policy
from dispatch.reposition import repositions
from dispatch.routes import build_assignment, explanation, runner_up
from dispatch.snapshot import OPEN, OrderTable, Snapshot, SnapshotError


def decide(snapshot: Snapshot, policy: Policy = DEFAULT_POLICY) -> Decisions:
    """Decide this tick's assignments and repositions.

    Guarantees: no order in two assignments; no courier in two decisions; no courier beyond
    its spare capacity; no planned pickup after a courier's shift end; the same snapshot and
    policy always give the same decisions (ids included); each assignment's explanation terms
    sum to its cost.
    """
    frame = tick_frame(snapshot, policy)
    if policy.mode == "greedy":
        return greedy_decide(snapshot, frame, policy, fallback=False)
    o_rows, c_rows = nearest_couriers(snapshot, frame, frame.open_rows, policy)
    if o_rows.size > policy.max_pairs:
        return greedy_decide(snapshot, frame, policy, fallback=True)
    pairs = plan_pairs(snapshot, frame, o_rows, c_rows, policy)
    terms = single_terms(snapshot, frame, pairs, policy)
    costs = terms.sum(axis=1)
    extra = insertions(snapshot, frame, policy)

    m = snapshot.couriers.m
    n_open = frame.open_rows.size
    compact = np.full(snapshot.orders.n, -1, dtype=np.int64)
    compact[frame.open_rows] = np.arange(n_open)
    ins_rows = np.array([x.order_row for x in extra], dtype=np.int64)
    ins_cols = np.array([m + x.courier_row for x in extra], dtype=np.int64)
    ins_costs = np.array([sum(x.terms) for x in extra], dtype=np.float64)
    edge_row = np.concatenate([compact[pairs.order_row], compact[ins_rows]])
    edge_col = np.concatenate([pairs.courier_row, ins_cols])
    edge_cost = np.concatenate([costs, ins_costs])
    match = min_cost_matching(
        edge_row, edge_col, edge_cost, n_open, 2 * m, np.full(n_open, policy.hold_cost)
    )

    edge_courier = np.where(edge_col >= m, edge_col - m, edge_col)
    order_of_edges = np.argsort(edge_row, kind="stable")
    starts = np.searchsorted(edge_row[order_of_edges], np.arange(n_open + 1))
    pair_index = {
        (int(r), int(c)): e
        for e, (r, c) in enumerate(zip(pairs.order_row, pairs.courier_row, strict=True))
    }
    insertion_index = {(x.order_row, x.courier_row): x for x in extra}

    tick = snapshot.tick_s
    assignments: list[Assignment] = []
    busy: set[int] = set()
    held: list[str] = []
    for i, row in enumerate(frame.open_rows):
        row = int(row)
        col = int(match[i])
        decided = None
        if 0 <= col < m:
            decided = _commit_new_job(
                snapshot, frame, policy, pairs, terms, pair_index[(row, col)], tick
            )
        elif col >= m:
            decided = _commit_insertion(snapshot, frame, policy, insertion_index[(row, col - m)])
        if decided is None:
            held.append(snapshot.orders.order_id[row])
            continue
        courier, reason, explain_terms, build = decided
        edges = order_of_edges[starts[i] : starts[i + 1]]
        second, second_cost = runner_up(edge_courier[edges], edge_cost[edges], courier)
        second_id = None if second is None else snapshot.couriers.courier_id[second]
        assignments.append(build(explanation(explain_terms, second_id, second_cost, reason)))
        busy.add(courier)
    moves = repositions(snapshot, frame, policy, busy) if policy.reposition else ()
    return Decisions(
        now_ts_ms=snapshot.now_ts_ms,
        policy_name=policy.name,
        assignments=tuple(assignments),
        repositions=tuple(moves),
        held_order_ids=tuple(held),
        fallback_used=False,
    )


def _commit_new_job(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: object,
    terms: np.ndarray,
    e: int,
    tick: float,
) -> tuple[int, str, Sequence[float], object] | None:
    """Commit the matched new job `e` now, or None to hold it for a later tick."""
    from dispatch.candidates import PairTable

    assert isinstance(pairs, PairTable)
    c = int(pairs.courier_row[e])
    row = int(pairs.order_row[e])
    idle = frame.free_s[c] <= 0 and not np.isfinite(frame.pending_pickup_s[c])
    ready = float(frame.ready_s[row])
    late = float(pairs.pickup_p50_s[e]) > ready
    if policy.jit:
        if not idle:
            return None
        travel90 = float(pairs.pickup_p90_s[e]) - 0.0  # placeholder, replaced below
        del travel90
        at_merchant = float(pairs.travel_p50_s[e]) == 0.0
        margin = policy.commit_buffer_s
        if at_merchant:
            must_go = ready - margin < tick
        else:
            # Leaving at the next tick instead would be too late for a handover at ready time.
            arrival_next = tick + (float(pairs.arrival_p50_s[e]) - max(float(frame.free_s[c]), 0.0))
            must_go = arrival_next + frame.half_pickup_s > ready - margin
        if not (must_go or late):
            return None
    reason = "late" if late else ("just_in_time" if policy.jit else "immediate")

    def build(explain: object) -> Assignment:
        from dispatch.decisions import Explanation

        assert isinstance(explain, Explanation)
        return build_assignment(
            snapshot,
            c,
            [row],
            [row],
            updates_pending=False,
            depart_s=max(float(frame.free_s[c]), 0.0),
            arrival_s=float(pairs.arrival_p50_s[e]),
            pickup_p50_s=float(pairs.pickup_p50_s[e]),
            pickup_p90_s=float(pairs.pickup_p90_s[e]),
            dropoff_p50_s=[float(pairs.dropoff_p50_s[e])],
            dropoff_p90_s=[float(pairs.dropoff_p90_s[e])],
            explain=explain,
        )

    return c, reason, terms[e], build


def _commit_insertion(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, x: Insertion
) -> tuple[int, str, Sequence[float], object] | None:
    """Commit the matched insertion now if the pickup happens before the next tick."""
    pickup_old = float(frame.pending_pickup_s[x.courier_row])
    if policy.jit and pickup_old >= snapshot.tick_s:
        return None

    def build(explain: object) -> Assignment:
        from dispatch.decisions import Explanation

        assert isinstance(explain, Explanation)
        return build_assignment(
            snapshot,
            x.courier_row,
            x.sequence,
            [x.order_row],
            updates_pending=True,
            depart_s=0.0,
            arrival_s=x.pickup_p50_s - frame.half_pickup_s,
            pickup_p50_s=x.pickup_p50_s,
            pickup_p90_s=x.pickup_p50_s,
            dropoff_p50_s=x.dropoff_p50_s,
            dropoff_p90_s=x.dropoff_p90_s,
            explain=explain,
        )

    return x.courier_row, "pickup_closing", x.terms, build


@dataclass(frozen=True)
class RankedCourier:
    """One courier's offer for a request, with the same cost terms `decide` uses.

    Attributes:
        courier_id: the courier.
        cost: total cost (sum of `terms`).
        terms: `(name, weighted value)` pairs.
        pickup_ts_ms: planned handover at the merchant (p50).
        dropoff_ts_ms: planned handover at the customer (p50).
    """

    courier_id: str
    cost: float
    terms: tuple[tuple[str, float], ...]
    pickup_ts_ms: int
    dropoff_ts_ms: int


def rank(
    request: OrderTable, snapshot: Snapshot, k: int, policy: Policy = DEFAULT_POLICY
) -> tuple[RankedCourier, ...]:
    """The `k` cheapest couriers for one single-order request, cheapest first.

    Args:
        request: a one-row order table (the order to place; `courier_index` must be open).
        snapshot: the current snapshot (its couriers are ranked; its orders are ignored).
        k: how many couriers to return (at most).
        policy: weights and candidate limits.

    Raises:
        SnapshotError: if the request is not exactly one open order.
    """
    if request.n != 1 or int(request.courier_index[0]) != OPEN:
        raise SnapshotError("rank() takes exactly one open order")
    if k < 1:
        return ()
    alone = Snapshot(
        now_ts_ms=snapshot.now_ts_ms,
        tick_s=snapshot.tick_s,
        orders=request,
        couriers=snapshot.couriers,
        eta=snapshot.eta,
        service=snapshot.service,
        shard_id=snapshot.shard_id,
    )
    frame = tick_frame(alone, policy)
    o_rows, c_rows = nearest_couriers(alone, frame, frame.open_rows, policy)
    pairs = plan_pairs(alone, frame, o_rows, c_rows, policy)
    terms = single_terms(alone, frame, pairs, policy)
    costs = terms.sum(axis=1)
    best = np.lexsort((pairs.courier_row, costs))[:k]
    from dispatch.costs import TERM_NAMES
    from dispatch.routes import to_ts_ms

    return tuple(
        RankedCourier(
            courier_id=snapshot.couriers.courier_id[int(pairs.courier_row[e])],
            cost=float(sum(float(v) for v in terms[e])),
            terms=tuple((name, float(v)) for name, v in zip(TERM_NAMES, terms[e], strict=True)),
            pickup_ts_ms=to_ts_ms(snapshot.now_ts_ms, float(pairs.pickup_p50_s[e])),
            dropoff_ts_ms=to_ts_ms(snapshot.now_ts_ms, float(pairs.dropoff_p50_s[e])),
        )
        for e in best
    )
