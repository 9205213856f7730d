"""The dispatch decision: `decide(snapshot, policy)` for a tick, `rank(...)` for one request.

`decide` (optimize mode): candidate couriers per open order from the spatial index; planned
times and cost terms for new jobs and for insertions into pending pickups; a min-cost matching
of orders to couriers and pending pickups (old orders get matching priority); then
just-in-time commitment. A matched new job is committed only when its courier is free and must
leave now to hand over at ready time, or the order is already late; it is held instead when
another courier could take it on time right after the job that courier is matched to (a
chain). An insertion is committed when it does not move the handover or when the pickup
happens before the next tick. Everything else is held and re-optimised at the next tick. Idle
couriers are then repositioned towards demand. Greedy mode, and the circuit breaker when a
tick has more candidate pairs than `policy.max_pairs`, use `dispatch.greedy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dispatch.bundles import Insertion, insertions
from dispatch.candidates import PairTable, TickFrame, nearest_couriers, plan_pairs, tick_frame
from dispatch.costs import TERM_NAMES, single_terms
from dispatch.coverage import coverage
from dispatch.decisions import Assignment, Decisions, Explanation
from dispatch.greedy import greedy_decide
from dispatch.matching import min_cost_matching
from dispatch.policy import DEFAULT_POLICY, Policy
from dispatch.reposition import repositions
from dispatch.routes import build_assignment, explanation, runner_up, to_ts_ms
from dispatch.snapshot import OPEN, OrderTable, Snapshot, SnapshotError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class _Choice:
    """A matched option that is committed in this tick."""

    courier: int
    reason: str
    terms: FloatArray
    new_job: int | None
    insertion: Insertion | None


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
    cover = coverage(snapshot, frame, policy) if (policy.reposition or policy.w_coverage) else None
    loss = None
    if cover is not None and policy.w_coverage > 0:
        loss = np.zeros(snapshot.couriers.m)
        loss[cover.couriers] = cover.loss()
    terms = single_terms(snapshot, frame, pairs, policy, loss)
    extra = insertions(snapshot, frame, policy)

    m = snapshot.couriers.m
    n_open = frame.open_rows.size
    compact = np.full(snapshot.orders.n, -1, dtype=np.int64)
    compact[frame.open_rows] = np.arange(n_open)
    edge_row = np.concatenate(
        [compact[pairs.order_row], np.array([compact[x.order_row] for x in extra], dtype=np.int64)]
    )
    edge_col = np.concatenate(
        [pairs.courier_row, np.array([m + x.courier_row for x in extra], dtype=np.int64)]
    )
    edge_cost = np.concatenate(
        [terms.sum(axis=1), np.array([sum(x.terms) for x in extra], dtype=np.float64)]
    )
    age_min = np.maximum(-frame.ready_s[frame.open_rows], 0.0) / 60.0
    match = min_cost_matching(
        edge_row,
        edge_col,
        edge_cost - policy.w_age * age_min[edge_row],
        n_open,
        2 * m,
        np.full(n_open, policy.hold_cost),
    )
    matched_edge = _matched_edges(edge_row, edge_col, match)

    alternatives = _on_time_alternatives(frame, pairs, compact, match, n_open)
    choices: dict[int, _Choice] = {}
    for i in np.flatnonzero(match >= 0):
        e = int(matched_edge[i])
        if e < pairs.size:
            choice = _new_job_choice(
                snapshot, frame, policy, pairs, terms, e, matched_edge, int(alternatives[i])
            )
        else:
            choice = _insertion_choice(snapshot, frame, policy, extra[e - pairs.size])
        if choice is not None:
            choices[int(i)] = choice

    assignments: list[Assignment] = []
    held: list[str] = []
    edge_courier = np.where(edge_col >= m, edge_col - m, edge_col)
    by_row = np.argsort(edge_row, kind="stable")
    starts = np.searchsorted(edge_row[by_row], np.arange(n_open + 1))
    for i, row in enumerate(frame.open_rows):
        choice = choices.get(i)
        if choice is None:
            held.append(snapshot.orders.order_id[row])
            continue
        edges = by_row[starts[i] : starts[i + 1]]
        second, second_cost = runner_up(edge_courier[edges], edge_cost[edges], choice.courier)
        explain = explanation(
            choice.terms,
            None if second is None else snapshot.couriers.courier_id[second],
            second_cost,
            choice.reason,
        )
        assignments.append(_assignment(snapshot, frame, pairs, choice, explain))

    reserved = {c.courier for c in choices.values()}
    reserved |= {int(c) for c in match[(match >= 0) & (match < m)]}
    if policy.keep_backups:
        on_time = pairs.pickup_p50_s <= frame.ready_s[pairs.order_row]
        reserved |= {int(c) for c in pairs.courier_row[on_time]}
    moves = repositions(snapshot, frame, policy, reserved, cover) if policy.reposition else []
    return Decisions(
        now_ts_ms=snapshot.now_ts_ms,
        policy_name=policy.name,
        assignments=tuple(assignments),
        repositions=tuple(moves),
        held_order_ids=tuple(held),
        fallback_used=False,
    )


def _matched_edges(edge_row: IntArray, edge_col: IntArray, match: IntArray) -> IntArray:
    """Index of the edge each row is matched through (-1 for unmatched rows)."""
    out = np.full(match.size, -1, dtype=np.int64)
    hit = np.flatnonzero((match[edge_row] == edge_col) & (match[edge_row] >= 0))
    # Duplicate edges of one (row, column) keep the cheapest first in the matching; any is fine
    # for timing since duplicates carry identical plans.
    out[edge_row[hit[::-1]]] = hit[::-1]
    return out


def _on_time_alternatives(
    frame: TickFrame, pairs: PairTable, compact: IntArray, match: IntArray, n_open: int
) -> IntArray:
    """Per open order: couriers that could still hand over at ready time and are not matched
    to another order in this tick."""
    row = compact[pairs.order_row]
    on_time = pairs.pickup_p50_s <= frame.ready_s[pairs.order_row]
    taken = np.zeros(int(pairs.courier_row.max(initial=-1)) + 1, dtype=np.int64) - 1
    matched = np.flatnonzero((match >= 0) & (match < taken.size))
    taken[match[matched]] = matched
    free_for_row = (taken[pairs.courier_row] < 0) | (taken[pairs.courier_row] == row)
    return np.bincount(row[on_time & free_for_row], minlength=n_open).astype(np.int64)


def _new_job_choice(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: PairTable,
    terms: FloatArray,
    e: int,
    matched_edge: IntArray,
    alternatives: int,
) -> _Choice | None:
    """Commit the matched new job `e` now, or None to hold it for a later tick."""
    c = int(pairs.courier_row[e])
    row = int(pairs.order_row[e])
    ready = float(frame.ready_s[row])
    pickup = float(pairs.pickup_p50_s[e])
    late = pickup > ready
    if not policy.jit:
        return _Choice(c, "late" if late else "immediate", terms[e], e, None)
    idle = frame.free_s[c] <= 0 and not np.isfinite(frame.pending_pickup_s[c])
    if not idle:
        return None
    tick = snapshot.tick_s
    latest = ready - policy.commit_buffer_s
    if float(pairs.travel_p50_s[e]) == 0.0:
        must_go = latest < tick  # waiting at the merchant: commit by the handover
    else:
        # Leaving at the next tick would miss a handover at ready time (p90 travel).
        must_go = tick + float(pairs.travel_p90_s[e]) + frame.half_pickup_s > latest
    last_backup = not late and alternatives < policy.min_alternatives
    if not (must_go or late or last_backup):
        return None
    if policy.chain_hold and _chain_beats(snapshot, frame, pairs, e, matched_edge, pickup):
        return None
    reason = "late" if late else ("just_in_time" if must_go else "last_backup")
    return _Choice(c, reason, terms[e], e, None)


def _chain_beats(
    snapshot: Snapshot,
    frame: TickFrame,
    pairs: PairTable,
    e: int,
    matched_edge: IntArray,
    pickup_s: float,
) -> bool:
    """Whether another matched courier, right after its matched job, picks up no later."""
    planned = matched_edge[(matched_edge >= 0) & (matched_edge < pairs.size)]
    planned = planned[pairs.courier_row[planned] != pairs.courier_row[e]]
    if planned.size == 0:
        return False
    row = int(pairs.order_row[e])
    previous = pairs.order_row[planned]
    couriers = pairs.courier_row[planned]
    free_s = pairs.dropoff_p50_s[planned] + frame.half_dropoff_s
    eta = snapshot.eta.travel_s(
        snapshot.orders.dropoff_xy_m[previous], snapshot.orders.pickup_xy_m[row][None, :]
    )
    arrival = free_s + np.asarray(eta.p90_s, dtype=np.float64)
    chained = np.maximum(arrival + frame.half_pickup_s, frame.ready_s[row])
    feasible = chained <= frame.shift_end_s[couriers]
    return bool((feasible & (chained <= pickup_s)).any())


def _insertion_choice(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, x: Insertion
) -> _Choice | None:
    """Commit the matched insertion if it keeps the handover time or the pickup is imminent."""
    pickup_old = float(frame.pending_pickup_s[x.courier_row])
    keeps_handover = float(frame.ready_s[x.order_row]) <= pickup_old
    if policy.jit and pickup_old >= snapshot.tick_s and not keeps_handover:
        return None
    return _Choice(x.courier_row, "pickup_closing", np.asarray(x.terms), None, x)


def _assignment(
    snapshot: Snapshot, frame: TickFrame, pairs: PairTable, choice: _Choice, explain: Explanation
) -> Assignment:
    """The decision record of a committed choice."""
    if choice.insertion is not None:
        x = choice.insertion
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
    e = choice.new_job
    assert e is not None
    row = int(pairs.order_row[e])
    c = choice.courier
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
