"""The dispatch decision of a tick: `decide(snapshot, policy)` (one job: `dispatch.ranking`).

`decide` (optimize mode): candidate couriers per open order from the spatial index; planned
times and cost terms for new jobs and for insertions into pending pickups; a min-cost matching
of orders to couriers and pending pickups (old orders get matching priority, plans on couriers
who are not free now a priority penalty); then just-in-time commitment. A matched new job is
committed only when its courier is free and must leave now to hand over at ready time, or the
order is already late; it is held instead when another courier could take it on time right
after the job that courier is matched to (a chain). An insertion is committed when it does not
move the handover or when the pickup happens before the next tick. Everything else is held and
re-optimised at the next tick. Idle couriers are then repositioned towards demand. Greedy mode,
and the circuit breaker when a tick has more candidate pairs than `policy.max_pairs`, use
`dispatch.greedy`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from dispatch.bundles import Insertion, InsertionTable, insertions
from dispatch.candidates import (
    PairTable,
    TickFrame,
    courier_index,
    nearest_couriers,
    plan_pairs,
    tick_frame,
)
from dispatch.chains import chain_pairs
from dispatch.costs import single_terms
from dispatch.coverage import coverage
from dispatch.decisions import Assignment, Decisions, Explanation
from dispatch.greedy import greedy_decide
from dispatch.matching import min_cost_matching
from dispatch.policy import DEFAULT_POLICY, Policy
from dispatch.reposition import repositions
from dispatch.routes import build_assignment, explanation, new_job_assignment, runner_up
from dispatch.snapshot import Snapshot

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
    its spare capacity; no planned pickup after a courier's shift end; no order assigned (as
    a new job or an insertion) to a courier the snapshot forbids it with, nor held for one
    (chains); the same snapshot and policy always give the same decisions (ids included);
    each assignment's explanation terms sum to its cost.
    """
    frame = tick_frame(snapshot, policy)
    if policy.mode == "greedy":
        return greedy_decide(snapshot, frame, policy, fallback=False)
    index = courier_index(snapshot, frame, policy)
    o_rows, c_rows, stride = nearest_couriers(snapshot, index, frame.open_rows, policy)
    if o_rows.size > policy.max_pairs:
        return greedy_decide(snapshot, frame, policy, fallback=True)
    every_pair = plan_pairs(snapshot, frame, o_rows, c_rows, policy, stride)
    extra = insertions(snapshot, frame, policy)
    due = _due_orders(snapshot, frame, policy, every_pair, extra)
    pairs = every_pair.take(due[every_pair.order_row])
    wants_cover = policy.reposition or policy.w_coverage > 0
    cover = coverage(snapshot, frame, policy, index) if wants_cover else None
    loss = None
    if cover is not None and policy.w_coverage > 0:
        loss = np.zeros(snapshot.couriers.m)
        loss[cover.couriers] = cover.loss()
    terms = single_terms(snapshot, frame, pairs, policy, loss)
    graph = _graph(snapshot, frame, policy, pairs, terms, extra, due)
    match = min_cost_matching(
        graph.row,
        graph.col,
        graph.priority_cost,
        graph.n_rows,
        2 * snapshot.couriers.m,
        np.full(graph.n_rows, policy.hold_cost),
        distinct=True,
    )
    if policy.chain_lookahead:
        base = graph
        for round_ in range(policy.chain_rounds):
            graph, match = _chained(
                snapshot, frame, policy, pairs, base, match, loss, reuse=round_ == 0
            )
    matched_edge = _matched_edges(graph, match)
    choices = _commitments(snapshot, frame, policy, pairs, terms, extra, graph, match, matched_edge)

    assignments: list[Assignment] = []
    for i in sorted(choices):
        choice = choices[i]
        edges = graph.by_row[graph.starts[i] : graph.starts[i + 1]]
        edges = edges[graph.source[edges] >= 0]
        second, second_cost = runner_up(graph.courier[edges], graph.cost[edges], choice.courier)
        explain = explanation(
            choice.terms.tolist(),
            None if second is None else snapshot.couriers.courier_id[second],
            second_cost,
            choice.reason,
        )
        assignments.append(_assignment(snapshot, frame, pairs, choice, explain))
    still_open = np.ones(snapshot.orders.n, dtype=bool)
    still_open[graph.order_row[np.array(sorted(choices), dtype=np.int64)]] = False
    held = _ids_of(snapshot.orders.order_id, frame.open_rows[still_open[frame.open_rows]])

    m = snapshot.couriers.m
    reserved_rows = [np.array([c.courier for c in choices.values()], dtype=np.int64)]
    reserved_rows.append(match[(match >= 0) & (match < m)])
    if policy.keep_backups:
        on_time = every_pair.feasible & (
            every_pair.pickup_p50_s <= frame.ready_s[every_pair.order_row]
        )
        reserved_rows.append(every_pair.courier_row[on_time])
    reserved = set(np.unique(np.concatenate(reserved_rows)).tolist())
    moves = repositions(snapshot, frame, policy, reserved, cover) if policy.reposition else []
    return Decisions(
        now_ts_ms=snapshot.now_ts_ms,
        policy_name=policy.name,
        assignments=tuple(assignments),
        repositions=tuple(moves),
        held_order_ids=held,
        fallback_used=False,
    )


def _ids_of(ids: tuple[str, ...], rows: IntArray) -> tuple[str, ...]:
    """The ids at `rows` (a C-level gather from the id tuple)."""
    if rows.size == 0:
        return ()
    if rows.size == 1:
        return (ids[int(rows[0])],)
    return tuple(operator.itemgetter(*rows.tolist())(ids))


@dataclass(frozen=True)
class _Graph:
    """The matching graph: rows are open orders due soon, columns couriers and pending pickups.

    An edge's `source` is its new-job pair (below the pair count), its insertion (pair count
    plus insertion index), or -1 for a job chained after another (never committed).
    """

    order_row: IntArray
    n_rows: int
    row: IntArray
    col: IntArray
    cost: FloatArray
    priority_cost: FloatArray
    source: IntArray
    courier: IntArray
    by_row: IntArray
    starts: IntArray


def _due_orders(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: PairTable,
    extra: InsertionTable,
) -> NDArray[np.bool_]:
    """Per order row: whether it enters this tick's matching.

    An open order is due when one of its couriers would have to leave within
    `matching_horizon_s` to hand over at ready time (at most `max_matching_orders` of them,
    the most urgent), or when it may join a pending pickup; other orders are held without
    claiming a courier.
    """
    slack = frame.ready_s[pairs.order_row] - frame.half_pickup_s - pairs.travel_p90_s
    slack = np.where(pairs.feasible, slack, np.inf)
    due = np.zeros(snapshot.orders.n, dtype=bool)
    if pairs.size:
        best = slack.reshape(-1, pairs.stride).min(axis=1)
        rows = pairs.order_row[:: pairs.stride]
        within = best <= policy.matching_horizon_s
        if int(within.sum()) > policy.max_matching_orders:
            # The most urgent first; ties by row, so the choice is deterministic.
            urgent = np.lexsort((rows, best))[: policy.max_matching_orders]
            within = np.zeros_like(within)
            within[urgent] = True
        due[rows] = within
    due[extra.order_row] = True
    return due


def _graph(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: PairTable,
    terms: FloatArray,
    extra: InsertionTable,
    due: NDArray[np.bool_],
) -> _Graph:
    """Edges of the matching: each due order's cheapest options (new jobs and insertions)."""
    m = snapshot.couriers.m
    n_orders = snapshot.orders.n
    open_due = frame.open_rows[due[frame.open_rows]]
    compact = np.full(n_orders, -1, dtype=np.int64)
    compact[open_due] = np.arange(open_due.size)
    age_min = np.maximum(-frame.ready_s, 0.0) / 60.0
    # New jobs: each due order keeps its `max_edges_per_order` cheapest feasible couriers.
    k = pairs.stride
    cost = terms.sum(axis=1)
    busy = frame.free_s[pairs.courier_row] > 0
    priority = np.where(
        pairs.feasible,
        cost - policy.w_age * age_min[pairs.order_row] + policy.w_busy_plan * busy,
        np.inf,
    )
    if k and pairs.size:
        grid = priority.reshape(-1, k)
        keep_k = min(policy.max_edges_per_order, k)
        if keep_k < k:
            pick = np.argpartition(grid, keep_k - 1, axis=1)[:, :keep_k]
        else:
            pick = np.broadcast_to(np.arange(k), grid.shape)
        pick = np.sort(pick, axis=1)
        pair_edge = (np.arange(grid.shape[0])[:, None] * k + pick).reshape(-1)
        pair_edge = pair_edge[np.isfinite(priority[pair_edge])]
    else:
        pair_edge = np.zeros(0, dtype=np.int64)
    ins = np.flatnonzero(compact[extra.order_row] >= 0)
    row = np.concatenate([compact[pairs.order_row[pair_edge]], compact[extra.order_row[ins]]])
    col = np.concatenate([pairs.courier_row[pair_edge], m + extra.courier_row[ins]])
    ins_cost = extra.terms[ins].sum(axis=1)
    cost_e = np.concatenate([cost[pair_edge], ins_cost])
    priority_e = np.concatenate(
        [priority[pair_edge], ins_cost - policy.w_age * age_min[extra.order_row[ins]]]
    )
    source = np.concatenate([pair_edge, pairs.size + ins])
    order = np.argsort(row, kind="stable")
    row, col, cost_e, priority_e, source = (
        row[order],
        col[order],
        cost_e[order],
        priority_e[order],
        source[order],
    )
    starts = np.searchsorted(row, np.arange(open_due.size + 1))
    return _Graph(
        order_row=open_due,
        n_rows=int(open_due.size),
        row=row,
        col=col,
        cost=cost_e,
        priority_cost=priority_e,
        source=source,
        courier=np.where(col >= m, col - m, col),
        by_row=np.arange(row.size, dtype=np.int64),
        starts=starts,
    )


def _chained(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: PairTable,
    graph: _Graph,
    match: IntArray,
    coverage_loss: FloatArray | None,
    *,
    reuse: bool,
) -> tuple[_Graph, IntArray]:
    """The graph with chained-courier edges and its matching (unchanged if there are none).

    Each courier matched to a new job is offered again, right after that job, as its own
    column; the matching is then solved afresh over all edges. With `reuse` (when `match`
    is the matching of `graph` itself), components no chained edge touches keep `match`.
    """
    matched = graph.source[_matched_edges(graph, match)]
    matched = np.sort(matched[(matched >= 0) & (matched < pairs.size)])
    if matched.size == 0:
        return graph, match
    chain = chain_pairs(
        snapshot, frame, policy, pairs.take(matched), graph.order_row, coverage_loss
    )
    if chain.size == 0:
        return graph, match
    m = snapshot.couriers.m
    compact = np.full(snapshot.orders.n, -1, dtype=np.int64)
    compact[graph.order_row] = np.arange(graph.n_rows)
    age_min = np.maximum(-frame.ready_s[chain.pairs.order_row], 0.0) / 60.0
    cost = chain.terms.sum(axis=1)
    row = np.concatenate([graph.row, compact[chain.pairs.order_row]])
    col = np.concatenate([graph.col, 2 * m + chain.chain])
    cost_e = np.concatenate([graph.cost, cost])
    chained_priority = cost - policy.w_age * age_min + policy.w_busy_plan
    priority_e = np.concatenate([graph.priority_cost, chained_priority])
    source = np.concatenate([graph.source, np.full(chain.size, -1, dtype=np.int64)])
    courier = np.concatenate([graph.courier, chain.pairs.courier_row])
    order = np.argsort(row, kind="stable")
    chained = _Graph(
        order_row=graph.order_row,
        n_rows=graph.n_rows,
        row=row[order],
        col=col[order],
        cost=cost_e[order],
        priority_cost=priority_e[order],
        source=source[order],
        courier=courier[order],
        by_row=np.arange(row.size, dtype=np.int64),
        starts=np.searchsorted(row[order], np.arange(graph.n_rows + 1)),
    )
    rematch = min_cost_matching(
        chained.row,
        chained.col,
        chained.priority_cost,
        chained.n_rows,
        2 * m + chain.n_chains,
        np.full(chained.n_rows, policy.hold_cost),
        distinct=True,
        prior=match if reuse else None,
        new_edge=chained.source == -1 if reuse else None,
    )
    return chained, rematch


def _matched_edges(graph: _Graph, match: IntArray) -> IntArray:
    """Per row, the index (into the graph's edges) of the edge it is matched through, or -1."""
    out = np.full(graph.n_rows, -1, dtype=np.int64)
    hit = np.flatnonzero(match[graph.row] == graph.col)
    out[graph.row[hit[::-1]]] = hit[::-1]
    return out


def _commitments(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    pairs: PairTable,
    terms: FloatArray,
    extra: InsertionTable,
    graph: _Graph,
    match: IntArray,
    matched_edge: IntArray,
) -> dict[int, _Choice]:
    """The matched options committed in this tick, by graph row."""
    choices: dict[int, _Choice] = {}
    rows = np.flatnonzero(matched_edge >= 0)
    source = graph.source[matched_edge[rows]]
    rows, source = rows[source >= 0], source[source >= 0]
    is_pair = source < pairs.size
    for i, src in zip(rows[~is_pair], source[~is_pair], strict=True):
        choice = _insertion_choice(snapshot, frame, policy, extra.item(int(src) - pairs.size))
        if choice is not None:
            choices[int(i)] = choice
    rows, e = rows[is_pair], source[is_pair]
    if e.size == 0:
        return choices
    c = pairs.courier_row[e]
    o = pairs.order_row[e]
    ready = frame.ready_s[o]
    late = pairs.pickup_p50_s[e] > ready
    if not policy.jit:
        used = {choice.courier for choice in choices.values()}
        for i, ee, lt in zip(rows, e, late, strict=True):
            courier = int(pairs.courier_row[ee])
            if courier not in used:
                used.add(courier)
                reason = "late" if lt else "immediate"
                choices[int(i)] = _Choice(courier, reason, terms[ee], int(ee), None)
        return choices
    idle = frame.idle[c]
    latest = ready - policy.commit_buffer_s
    tick = snapshot.tick_s
    must_go = np.where(
        pairs.travel_p50_s[e] == 0.0,
        latest < tick,  # waiting at the merchant: commit by the handover
        tick + pairs.travel_p90_s[e] + frame.half_pickup_s > latest,
    )
    alternatives = _on_time_alternatives(frame, pairs, graph, match)[rows]
    last_backup = ~late & (alternatives < policy.min_alternatives)
    commit = idle & (must_go | late | last_backup)
    if policy.chain_hold and commit.any():
        commit[commit] = ~_chain_beats(snapshot, frame, pairs, e[commit], graph, matched_edge)
    # A courier with a pending pickup may be matched twice (its pickup and its route end):
    # it takes at most one decision per tick, the insertion first.
    used = {choice.courier for choice in choices.values()}
    for i, ee, lt, mg in zip(rows[commit], e[commit], late[commit], must_go[commit], strict=True):
        courier = int(pairs.courier_row[ee])
        if courier in used:
            continue
        used.add(courier)
        reason = "late" if lt else ("just_in_time" if mg else "last_backup")
        choices[int(i)] = _Choice(courier, reason, terms[ee], int(ee), None)
    return choices


def _on_time_alternatives(
    frame: TickFrame, pairs: PairTable, graph: _Graph, match: IntArray
) -> IntArray:
    """Per graph row: couriers still able to hand the order over at ready time.

    Couriers matched to another order in this tick do not count.
    """
    compact = np.full(frame.ready_s.size, -1, dtype=np.int64)
    compact[graph.order_row] = np.arange(graph.n_rows)
    row = compact[pairs.order_row]
    on_time = pairs.feasible & (pairs.pickup_p50_s <= frame.ready_s[pairs.order_row]) & (row >= 0)
    taken = np.full(int(pairs.courier_row.max(initial=-1)) + 1, -1, dtype=np.int64)
    matched = np.flatnonzero((match >= 0) & (match < taken.size))
    taken[match[matched]] = matched
    owner = taken[pairs.courier_row]
    free_for_row = (owner < 0) | (owner == row)
    return np.bincount(row[on_time & free_for_row], minlength=graph.n_rows).astype(np.int64)


def _chain_beats(
    snapshot: Snapshot,
    frame: TickFrame,
    pairs: PairTable,
    due: IntArray,
    graph: _Graph,
    matched_edge: IntArray,
) -> NDArray[np.bool_]:
    """Per due pair: whether a chain beats it.

    A chain is another matched courier, not forbidden with the order, picking it up right
    after the job it is matched to, no later than the pair would; checked against the nearest
    planned job ends.
    """
    planned = graph.source[matched_edge[matched_edge >= 0]]
    planned = planned[(planned >= 0) & (planned < pairs.size)]
    out = np.zeros(due.size, dtype=bool)
    if planned.size < 2:
        return out
    end_xy = snapshot.orders.dropoff_xy_m[pairs.order_row[planned]]
    end_s = pairs.dropoff_p50_s[planned] + frame.half_dropoff_s
    k = min(8, planned.size)
    pickup_xy = snapshot.orders.pickup_xy_m[pairs.order_row[due]]
    _, near = cKDTree(end_xy).query(pickup_xy, k=k)
    near = np.asarray(near, dtype=np.int64).reshape(due.size, k)
    eta = snapshot.eta.travel_s(end_xy[near], pickup_xy[:, None, :])
    arrival = end_s[near] + np.asarray(eta.p90_s).reshape(due.size, k)
    row = pairs.order_row[due]
    chained = np.maximum(arrival + frame.half_pickup_s, frame.ready_s[row][:, None])
    courier = pairs.courier_row[planned][near]
    other = courier != pairs.courier_row[due][:, None]
    feasible = (chained <= frame.shift_end_s[courier]) & ~snapshot.forbids(row[:, None], courier)
    better = chained <= pairs.pickup_p50_s[due][:, None]
    return (other & feasible & better).any(axis=1)


def _insertion_choice(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, x: Insertion
) -> _Choice | None:
    """Commit the matched insertion if it keeps the handover time or the pickup is imminent."""
    pickup_old = float(frame.pending_pickup_s[x.courier_row])
    keeps_handover = x.pickup_p50_s <= pickup_old
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
            arrival_s=x.pending_pickup_p50_s - frame.half_pickup_s,
            pickup_p50_s=x.pending_pickup_p50_s,
            pickup_p90_s=x.pending_pickup_p50_s,
            dropoff_p50_s=x.dropoff_p50_s,
            dropoff_p90_s=x.dropoff_p90_s,
            explain=explain,
            extra_pickup=(x.order_row, x.pickup_p50_s),
            first_row=next(r for r in x.sequence if r != x.order_row),
        )
    e = choice.new_job
    if e is None:  # pragma: no cover - a choice is a new job or an insertion
        raise ValueError("a committed choice without a job")
    return new_job_assignment(snapshot, frame, pairs, e, explain)
