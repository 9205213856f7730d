"""Bundles: adding an open order to a courier's pending pickup at the same merchant.

A courier heading to (or waiting at) a merchant for a committed bundle that has not been
picked up yet may take one more order: the handover moves to the later of the planned
handover and the new order's ready time, and the drop-offs are re-sequenced to minimise the
sum of drop-off times (all orders exactly up to `EXACT_SEQUENCE_LIMIT` orders, else the new
order is inserted at its best position). Orders join only from the same merchant, or, with
`nearby_merchant_bundles`, from a merchant whose pickup point is within `nearby_merchant_m`
(then picked up right after the first merchant's handover). Freshness and detour limits of
the policy are hard constraints; capacity and shift end are respected; an order never joins
the pending pickup of a courier the snapshot forbids it with. Candidates are evaluated in
batches of equal bundle size, fully vectorised.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from contracts.columns import take_rows
from dispatch.candidates import TickFrame
from dispatch.costs import (
    N_TERMS,
    past_guarantee,
    redispatch_minutes,
    shift_minutes,
    term_weights,
)
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Bundles up to this size are sequenced exactly (all permutations); larger ones by insertion.
EXACT_SEQUENCE_LIMIT = 5


@dataclass(frozen=True)
class Insertion:
    """One candidate: order `order_row` joins the pending pickup of courier `courier_row`.

    Attributes:
        order_row: the new order.
        courier_row: the courier.
        sequence: order rows of the whole bundle in the new drop-off sequence.
        pending_pickup_p50_s: planned handover of the pending orders (seconds from now).
        pickup_p50_s: handover time of the new order (seconds from now); for a same-merchant
            bundle every order is handed over then.
        dropoff_p50_s: drop-off times aligned with `sequence` (p50).
        dropoff_p90_s: drop-off times aligned with `sequence` (p90 legs).
        terms: weighted cost terms (`TERM_NAMES` order).
    """

    order_row: int
    courier_row: int
    sequence: tuple[int, ...]
    pending_pickup_p50_s: float
    pickup_p50_s: float
    dropoff_p50_s: tuple[float, ...]
    dropoff_p90_s: tuple[float, ...]
    terms: tuple[float, ...]


@dataclass(frozen=True)
class InsertionTable:
    """All admissible insertions of a tick, column-oriented (rows padded to the largest bundle).

    Attributes:
        order_row: the new order of each insertion.
        courier_row: the courier whose pending pickup it joins.
        size: bundle size after the insertion.
        sequence: order rows in drop-off sequence, `(n, s_max)`, padded with -1.
        pending_pickup_p50_s: planned handover of the pending orders.
        pickup_p50_s: handover of the new order.
        dropoff_p50_s: drop-off times aligned with `sequence` (NaN padding).
        dropoff_p90_s: drop-off times with p90 legs (NaN padding).
        terms: weighted cost terms, `(n, N_TERMS)`.
    """

    order_row: IntArray
    courier_row: IntArray
    size: IntArray
    sequence: IntArray
    pending_pickup_p50_s: FloatArray
    pickup_p50_s: FloatArray
    dropoff_p50_s: FloatArray
    dropoff_p90_s: FloatArray
    terms: FloatArray

    @property
    def n(self) -> int:
        """Number of insertions."""
        return int(self.order_row.size)

    def item(self, i: int) -> Insertion:
        """Insertion `i` as a record."""
        k = int(self.size[i])
        return Insertion(
            order_row=int(self.order_row[i]),
            courier_row=int(self.courier_row[i]),
            sequence=tuple(int(r) for r in self.sequence[i, :k]),
            pending_pickup_p50_s=float(self.pending_pickup_p50_s[i]),
            pickup_p50_s=float(self.pickup_p50_s[i]),
            dropoff_p50_s=tuple(float(d) for d in self.dropoff_p50_s[i, :k]),
            dropoff_p90_s=tuple(float(d) for d in self.dropoff_p90_s[i, :k]),
            terms=tuple(float(t) for t in self.terms[i]),
        )

    @classmethod
    def empty(cls) -> InsertionTable:
        """No insertions."""
        none = np.zeros(0, dtype=np.int64)
        flat = np.zeros(0)
        return cls(
            none,
            none,
            none,
            np.zeros((0, 1), dtype=np.int64),
            flat,
            flat,
            np.zeros((0, 1)),
            np.zeros((0, 1)),
            np.zeros((0, N_TERMS)),
        )


@cache
def _orders_to_try(size: int) -> IntArray:
    """Candidate drop sequences of `size` stops (indices 0..size-1, the new stop last)."""
    if size <= EXACT_SEQUENCE_LIMIT:
        return np.array(list(itertools.permutations(range(size))), dtype=np.int64).reshape(-1, size)
    fixed = np.arange(size - 1, dtype=np.int64)
    return np.array([np.insert(fixed, k, size - 1) for k in range(size)], dtype=np.int64)


def _drop_times(legs: FloatArray, order: IntArray, leave_s: FloatArray, half: float) -> FloatArray:
    """Drop-off times, shape `(n, q, s)`, for `n` bundles and `q` candidate sequences.

    `legs[b, i, j]` is bundle `b`'s travel time from stop `i` to stop `j`, stop 0 being the
    last pickup; `order[q, k]` is the k-th drop of sequence q (indices into stops 1..s).
    """
    previous = np.concatenate([np.zeros((order.shape[0], 1), dtype=np.int64), order[:, :-1] + 1], 1)
    travel = legs[:, previous, order + 1]
    position = np.arange(order.shape[1])
    return leave_s[:, None, None] + np.cumsum(travel, axis=2) + half * (2 * position + 1)


@dataclass(frozen=True)
class _Pending:
    """Pending bundles, one row per courier with a pending pickup (padded with -1)."""

    courier: IntArray
    rows: IntArray
    count: IntArray


def _pending(snapshot: Snapshot) -> _Pending:
    orders = snapshot.orders
    pending_rows = np.flatnonzero(orders.courier_index >= 0)
    owner = orders.courier_index[pending_rows]
    by_seq = pending_rows[np.lexsort((orders.drop_sequence[pending_rows], owner))]
    owners, starts, counts = np.unique(
        orders.courier_index[by_seq], return_index=True, return_counts=True
    )
    width = int(counts.max(initial=1))
    rows = np.full((owners.size, width), -1, dtype=np.int64)
    slot = np.arange(by_seq.size) - np.repeat(starts, counts)
    rows[np.repeat(np.arange(owners.size), counts), slot] = by_seq
    return _Pending(owners.astype(np.int64), rows, counts.astype(np.int64))


def _candidate_pairs(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, pending: _Pending
) -> tuple[IntArray, IntArray]:
    """(pending bundle index, open order row) candidate pairs."""
    orders = snapshot.orders
    empty = np.zeros(0, dtype=np.int64)
    if pending.courier.size == 0 or frame.open_rows.size == 0:
        return empty, empty
    pickup_old = frame.pending_pickup_s[pending.courier]
    ok = np.flatnonzero(
        np.isfinite(pickup_old)
        & (pickup_old >= 0)
        & (snapshot.couriers.spare_capacity[pending.courier] >= 1)
        & (pending.count < policy.max_bundle_size)
    )
    if ok.size == 0:
        return empty, empty
    first = pending.rows[ok, 0]
    if policy.nearby_merchant_bundles:
        tree = cKDTree(orders.pickup_xy_m[frame.open_rows])
        near = tree.query_ball_point(orders.pickup_xy_m[first], r=policy.nearby_merchant_m)
        counts = np.array([len(h) for h in near], dtype=np.int64)
        hits = [np.sort(np.asarray(h, dtype=np.int64)) for h in near]
        flat = np.concatenate(hits) if counts.sum() else empty
        return np.repeat(ok, counts), frame.open_rows[flat]
    codes = orders.merchant_code
    open_codes = codes[frame.open_rows]
    by_code = np.argsort(open_codes, kind="stable")
    sorted_codes = open_codes[by_code]
    lo = np.searchsorted(sorted_codes, codes[first], side="left")
    hi = np.searchsorted(sorted_codes, codes[first], side="right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return empty, empty
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(ok, counts), frame.open_rows[by_code[np.repeat(lo, counts) + offset]]


def insertions(snapshot: Snapshot, frame: TickFrame, policy: Policy) -> InsertionTable:
    """Every admissible (open order, pending courier) insertion of this tick."""
    if not policy.bundling or not (snapshot.orders.courier_index >= 0).any():
        return InsertionTable.empty()
    pending = _pending(snapshot)
    cand_b, cand_o = _candidate_pairs(snapshot, frame, policy, pending)
    allowed = ~snapshot.forbids(cand_o, pending.courier[cand_b])
    cand_b, cand_o = cand_b[allowed], cand_o[allowed]
    if cand_b.size == 0:
        return InsertionTable.empty()
    orders = snapshot.orders
    cand_c = pending.courier[cand_b]
    pickup_old = frame.pending_pickup_s[cand_c]
    ready = frame.ready_s[cand_o]
    keep = ready - pickup_old <= policy.max_ready_gap_s
    cand_b, cand_c, cand_o = cand_b[keep], cand_c[keep], cand_o[keep]
    pickup_old, ready = pickup_old[keep], ready[keep]
    half_p = frame.half_pickup_s
    first = pending.rows[cand_b, 0]
    same = orders.merchant_code[first] == orders.merchant_code[cand_o]
    # The extra pickup at a nearby merchant happens after the first handover.
    hop = np.zeros(cand_c.size)
    if (~same).any():
        eta = snapshot.eta.travel_s(
            orders.pickup_xy_m[first[~same]], orders.pickup_xy_m[cand_o[~same]]
        )
        hop[~same] = np.asarray(eta.p50_s) + half_p
    arrival_new = np.where(same, pickup_old - half_p, pickup_old + hop)
    pickup = np.maximum(np.maximum(arrival_new + half_p, ready), 0.0)
    pickup = np.where(same, np.maximum(pickup, pickup_old), pickup)
    keep = pickup <= frame.shift_end_s[cand_c] - policy.shift_end_margin_s
    sizes = pending.count[cand_b] + 1
    weights = term_weights(policy)
    pay = past_guarantee(snapshot, policy)
    found: list[InsertionTable] = []
    for size in np.unique(sizes[keep]):
        idx = np.flatnonzero(keep & (sizes == size))
        rows = np.column_stack([pending.rows[cand_b[idx], : size - 1], cand_o[idx]])
        fresh = (pickup[idx][:, None] - frame.ready_s[rows]).max(axis=1) <= policy.max_food_wait_s
        idx, rows = idx[fresh], rows[fresh]
        if idx.size == 0:
            continue
        found.append(
            _evaluate(snapshot, frame, policy, idx, rows, cand_c, pickup_old, pickup, weights, pay)
        )
    return _concat(found)


def _concat(parts: list[InsertionTable]) -> InsertionTable:
    """One table from per-size tables, padded to the largest size, sorted by courier, order."""
    parts = [p for p in parts if p.n]
    if not parts:
        return InsertionTable.empty()
    width = max(p.sequence.shape[1] for p in parts)

    def pad(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((a.shape[0], width), fill, dtype=a.dtype)
        out[:, : a.shape[1]] = a
        return out

    table = InsertionTable(
        order_row=np.concatenate([p.order_row for p in parts]),
        courier_row=np.concatenate([p.courier_row for p in parts]),
        size=np.concatenate([p.size for p in parts]),
        sequence=np.vstack([pad(p.sequence, -1) for p in parts]),
        pending_pickup_p50_s=np.concatenate([p.pending_pickup_p50_s for p in parts]),
        pickup_p50_s=np.concatenate([p.pickup_p50_s for p in parts]),
        dropoff_p50_s=np.vstack([pad(p.dropoff_p50_s, np.nan) for p in parts]),
        dropoff_p90_s=np.vstack([pad(p.dropoff_p90_s, np.nan) for p in parts]),
        terms=np.vstack([p.terms for p in parts]),
    )
    return take_rows(table, np.lexsort((table.order_row, table.courier_row)))


def _evaluate(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    idx: IntArray,
    rows: IntArray,
    cand_c: IntArray,
    pickup_old: FloatArray,
    pickup: FloatArray,
    weights: FloatArray,
    pay: FloatArray,
) -> InsertionTable:
    """Sequence and price a batch of insertions that all make bundles of one size."""
    orders = snapshot.orders
    half_p, half_d = frame.half_pickup_s, frame.half_dropoff_s
    n, size = rows.shape
    new = rows[:, -1]
    start_xy = orders.pickup_xy_m[new]  # the last pickup: the new order's merchant
    points = np.concatenate([start_xy[:, None, :], orders.dropoff_xy_m[rows]], axis=1)
    eta = snapshot.eta.travel_s(points[:, :, None, :], points[:, None, :, :])
    legs50 = np.asarray(eta.p50_s).reshape(n, size + 1, size + 1)
    legs90 = np.asarray(eta.p90_s).reshape(n, size + 1, size + 1)
    old_start = orders.pickup_xy_m[rows[:, 0]]
    old_points = np.concatenate([old_start[:, None, :], orders.dropoff_xy_m[rows[:, :-1]]], axis=1)
    eta_old = snapshot.eta.travel_s(old_points[:, :, None, :], old_points[:, None, :, :])
    identity = np.arange(size - 1, dtype=np.int64)[None, :]
    old_leave = pickup_old[idx] + half_p
    old50 = _drop_times(
        np.asarray(eta_old.p50_s).reshape(n, size, size), identity, old_leave, half_d
    )[:, 0]
    old90 = _drop_times(
        np.asarray(eta_old.p90_s).reshape(n, size, size), identity, old_leave, half_d
    )[:, 0]

    tries = _orders_to_try(size)
    leave = pickup[idx] + half_p
    drops50 = _drop_times(legs50, tries, leave, half_d)
    best = np.argmin(drops50.sum(axis=2), axis=1)
    seq = tries[best]
    drops50 = drops50[np.arange(n), best]
    drops90 = _per_row_drops(legs90, seq, leave, half_d)
    position = np.argsort(seq, axis=1)  # position[b, k]: where stop k is dropped
    delays = np.take_along_axis(drops50, position[:, :-1], axis=1) - old50
    ok = delays.max(axis=1, initial=0.0) <= policy.max_detour_s
    ordered = np.take_along_axis(rows, seq, axis=1)
    promise = frame.promise_s[ordered]
    where_new = position[:, -1]
    new_drop = drops50[np.arange(n), where_new]
    direct_min = frame.ready_s[new] + half_p + frame.direct_p50_s[new] + half_d
    raw = np.zeros((n, N_TERMS))
    raw[:, 0] = (new_drop - direct_min) / 60.0
    raw[:, 1] = delays.sum(axis=1) / 60.0
    old_late = np.maximum(old90 - frame.promise_s[rows[:, :-1]], 0.0).sum(axis=1)
    new_late = np.maximum(drops90 - promise, 0.0).sum(axis=1)
    raw[:, 2] = np.maximum(new_late - old_late, 0.0) / 60.0
    raw[:, 3] = np.maximum(pickup[idx] - pickup_old[idx], 0.0) / 60.0
    raw[:, 5] = pay[cand_c[idx]]
    raw[:, 7] = shift_minutes(
        old50.max(axis=1), drops50.max(axis=1), frame.shift_end_s[cand_c[idx]]
    )
    raw[:, 8] = redispatch_minutes(snapshot, policy)[cand_c[idx]]
    terms = raw * weights
    return InsertionTable(
        order_row=new[ok],
        courier_row=cand_c[idx[ok]],
        size=np.full(int(ok.sum()), size, dtype=np.int64),
        sequence=ordered[ok],
        pending_pickup_p50_s=pickup_old[idx[ok]],
        pickup_p50_s=pickup[idx[ok]],
        dropoff_p50_s=drops50[ok],
        dropoff_p90_s=drops90[ok],
        terms=terms[ok],
    )


def _per_row_drops(legs: FloatArray, seq: IntArray, leave_s: FloatArray, half: float) -> FloatArray:
    """Drop-off times of one given sequence per bundle, shape `(n, s)`."""
    n, size = seq.shape
    previous = np.concatenate([np.zeros((n, 1), dtype=np.int64), seq[:, :-1] + 1], axis=1)
    travel = legs[np.arange(n)[:, None], previous, seq + 1]
    position = np.arange(size)
    return leave_s[:, None] + np.cumsum(travel, axis=1) + half * (2 * position + 1)
