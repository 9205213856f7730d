"""Candidate (order, courier) pairs for new jobs and their planned times.

Candidates come from a k-d tree over where couriers become free, with a third coordinate that
turns a courier's remaining busy time into distance (`index_speed_mps`), so a courier freeing
up soon next door ranks near and one free now but far away ranks far. Each order keeps its
`max_candidates` nearest couriers; pairs past the policy's travel cap or whose pickup would be
after the courier's shift end are dropped.

All times inside the engine are float seconds relative to the tick (`now` = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from contracts.columns import take_rows
from dispatch.policy import Policy
from dispatch.snapshot import NO_PICKUP, OPEN, Snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class TickFrame:
    """Per-tick arrays derived once from a snapshot (relative seconds, masks).

    Attributes:
        now_ts_ms: tick time.
        half_pickup_s: half the merchant service time.
        half_dropoff_s: half the customer service time.
        ready_s: ready time of each order, seconds from now.
        ready_p90_s: pessimistic (p90) ready time of each order, seconds from now.
        placed_s: placement time of each order, seconds from now.
        promise_s: promise of each order, seconds from now.
        direct_p50_s: merchant-to-customer travel p50 of each order.
        direct_p90_s: merchant-to-customer travel p90 of each order.
        open_rows: rows of open orders.
        free_s: when each courier becomes free, seconds from now.
        shift_end_s: each courier's shift end, seconds from now.
        pending_pickup_s: planned pending handover, seconds from now (NaN if none).
        idle: couriers free now with no pending pickup (any other plan on them waits).
        eligible: couriers that may take a new job (shift not over, spare capacity).
    """

    now_ts_ms: int
    half_pickup_s: float
    half_dropoff_s: float
    ready_s: FloatArray
    ready_p90_s: FloatArray
    placed_s: FloatArray
    promise_s: FloatArray
    direct_p50_s: FloatArray
    direct_p90_s: FloatArray
    open_rows: IntArray
    free_s: FloatArray
    shift_end_s: FloatArray
    pending_pickup_s: FloatArray
    idle: BoolArray
    eligible: BoolArray


def tick_frame(snapshot: Snapshot, policy: Policy) -> TickFrame:
    """Derive the per-tick arrays of `snapshot`."""
    now = snapshot.now_ts_ms
    orders = snapshot.orders
    couriers = snapshot.couriers
    direct = snapshot.eta.travel_s(orders.pickup_xy_m, orders.dropoff_xy_m)
    pending = couriers.pending_pickup_ts_ms
    shift_end_s = (couriers.shift_end_ts_ms - now) / 1000.0
    free_s = (couriers.free_ts_ms - now) / 1000.0
    return TickFrame(
        now_ts_ms=now,
        half_pickup_s=snapshot.service.pickup_s / 2.0,
        half_dropoff_s=snapshot.service.dropoff_s / 2.0,
        ready_s=(orders.ready_ts_ms - now) / 1000.0,
        ready_p90_s=(orders.ready_late_ts_ms - now) / 1000.0,
        placed_s=(orders.placed_ts_ms - now) / 1000.0,
        promise_s=(orders.promise_ts_ms - now) / 1000.0,
        direct_p50_s=np.asarray(direct.p50_s, dtype=np.float64),
        direct_p90_s=np.asarray(direct.p90_s, dtype=np.float64),
        open_rows=np.flatnonzero(orders.courier_index == OPEN),
        free_s=free_s,
        shift_end_s=shift_end_s,
        pending_pickup_s=np.where(pending == NO_PICKUP, np.nan, (pending - now) / 1000.0),
        idle=(free_s <= 0) & (pending == NO_PICKUP),
        eligible=may_take_new_job(shift_end_s, couriers.spare_capacity, policy),
    )


def may_take_new_job(
    shift_end_s: FloatArray, spare_capacity: IntArray, policy: Policy
) -> BoolArray:
    """Couriers that may take a new job: shift not over (less the margin) and spare capacity."""
    return (shift_end_s >= policy.shift_end_margin_s) & (spare_capacity >= 1)


@dataclass(frozen=True)
class PairTable:
    """Candidate new-job pairs with their planned times (seconds from now).

    Pairs are grouped by order: order `i` of the table owns pairs `i * stride` to
    `(i + 1) * stride - 1`. Infeasible pairs stay in place with `feasible` False.

    Attributes:
        order_row: order row of each pair.
        courier_row: courier row of each pair.
        feasible: within the travel cap, pickup no later than the shift end, and not a
            forbidden pair of the snapshot.
        stride: pairs per order.
        travel_p50_s: courier travel to the merchant, p50.
        travel_p90_s: courier travel to the merchant, p90.
        arrival_p50_s: arrival at the merchant, p50.
        pickup_p50_s: handover at the merchant, p50.
        pickup_p90_s: handover if travel and preparation take their p90 times.
        dropoff_p50_s: customer handover, p50.
        dropoff_p90_s: customer handover with p90 legs.
        ride_p50_s: the ride from merchant to customer with this pair's courier, p50 (the
            order's direct ride when the ETA provider does not tell couriers apart).
    """

    order_row: IntArray
    courier_row: IntArray
    feasible: BoolArray
    stride: int
    travel_p50_s: FloatArray
    travel_p90_s: FloatArray
    arrival_p50_s: FloatArray
    pickup_p50_s: FloatArray
    pickup_p90_s: FloatArray
    dropoff_p50_s: FloatArray
    dropoff_p90_s: FloatArray
    ride_p50_s: FloatArray

    @property
    def size(self) -> int:
        """Number of pairs."""
        return int(self.order_row.size)

    def take(self, keep: BoolArray | IntArray) -> PairTable:
        """The pairs where `keep` is True, or at the indices `keep` (in that order).

        The stride is kept: it stays meaningful when whole orders are kept.
        """
        return take_rows(self, keep)


@dataclass(frozen=True)
class CourierIndex:
    """Time-aware k-d tree over the couriers that may take a new job.

    Points are `(x, y, index_speed_mps * seconds until free)`, so a courier freeing up soon
    next door ranks near and one free now but far away ranks far.

    Attributes:
        rows: courier rows in the tree (all eligible couriers).
        tree: the k-d tree (None when there are no eligible couriers).
    """

    rows: IntArray
    tree: cKDTree | None

    def nearest(self, xy_m: FloatArray, k: int, same_point: IntArray | None = None) -> IntArray:
        """Courier rows of the `k` nearest couriers to each point, shape `(n, min(k, size))`.

        `same_point` optionally labels points (equal labels, equal points, e.g. merchant
        codes) so each distinct point is looked up once.
        """
        k = min(k, self.rows.size)
        if self.tree is None or k == 0 or len(xy_m) == 0:
            return np.zeros((len(xy_m), 0), dtype=np.int64)
        if same_point is None:
            first = np.arange(len(xy_m))
            inverse = first
        else:
            _, first, inverse = np.unique(same_point, return_index=True, return_inverse=True)
        queries = np.column_stack([np.take(xy_m, first, axis=0), np.zeros(first.size)])
        _, near = self.tree.query(queries, k=k)
        near = np.asarray(near, dtype=np.int64).reshape(first.size, k)
        return self.rows[near[inverse.reshape(-1)]]


def courier_index(snapshot: Snapshot, frame: TickFrame, policy: Policy) -> CourierIndex:
    """The tick's courier index over eligible couriers."""
    rows = np.flatnonzero(frame.eligible)
    if rows.size == 0:
        return CourierIndex(rows, None)
    busy_m = np.maximum(frame.free_s[rows], 0.0) * policy.index_speed_mps
    return CourierIndex(rows, cKDTree(np.column_stack([snapshot.couriers.free_xy_m[rows], busy_m])))


def nearest_couriers(
    snapshot: Snapshot, index: CourierIndex, rows: IntArray, policy: Policy
) -> tuple[IntArray, IntArray, int]:
    """Candidate pairs `(order_row, courier_row)` for the orders in `rows`, and the stride.

    Each order gets its nearest eligible couriers in the time-aware index: `max_candidates`,
    fewer when that would exceed `pair_budget` pairs (but at least `min_candidates`), or every
    eligible courier when there are no more than that; pairs are grouped by order, `stride`
    per order.
    """
    couriers = index.rows
    if rows.size == 0 or couriers.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, 0
    per_order = policy.pair_budget // rows.size
    k = min(max(per_order, policy.min_candidates), policy.max_candidates, couriers.size)
    if k == couriers.size:
        return np.repeat(rows, k), np.tile(couriers, rows.size), k
    orders = snapshot.orders
    chosen = index.nearest(np.take(orders.pickup_xy_m, rows, axis=0), k, orders.merchant_code[rows])
    return np.repeat(rows, k), chosen.reshape(-1), k


def plan_pairs(
    snapshot: Snapshot,
    frame: TickFrame,
    order_row: IntArray,
    courier_row: IntArray,
    policy: Policy,
    stride: int,
) -> PairTable:
    """Planned times of new jobs (courier goes from where it is free to the merchant).

    Pairs whose travel exceeds `max_pickup_s`, whose p90 pickup is after the shift end (less
    the margin) or that the snapshot forbids are marked infeasible.
    """
    return plan_from(
        snapshot,
        frame,
        order_row,
        courier_row,
        np.take(snapshot.couriers.free_xy_m, courier_row, axis=0),
        frame.free_s[courier_row],
        policy,
        stride,
    )


def plan_from(
    snapshot: Snapshot,
    frame: TickFrame,
    order_row: IntArray,
    courier_row: IntArray,
    start_xy_m: FloatArray,
    start_s: FloatArray,
    policy: Policy,
    stride: int,
) -> PairTable:
    """Planned times of new jobs whose courier is free at `start_xy_m` at `start_s` (per pair).

    Feasibility as for `plan_pairs` (travel cap; p90 pickup no later than the courier's
    shift end less the margin; not a pair the snapshot forbids). Every new-job option of a
    tick (`decide`, chains, greedy, `rank`) is planned here, so none pairs an order with a
    courier it is forbidden with. The p90 handover waits for the p90 ready time; the ride to the
    customer is the pair's courier's.
    """
    pickup_xy = np.take(snapshot.orders.pickup_xy_m, order_row, axis=0)
    eta = snapshot.eta.travel_s(start_xy_m, pickup_xy, courier_row)
    ride = snapshot.eta.travel_s(
        pickup_xy, np.take(snapshot.orders.dropoff_xy_m, order_row, axis=0), courier_row
    )
    ride50 = np.asarray(ride.p50_s, dtype=np.float64)
    ride90 = np.asarray(ride.p90_s, dtype=np.float64)
    travel50 = np.asarray(eta.p50_s, dtype=np.float64)
    travel90 = np.asarray(eta.p90_s, dtype=np.float64)
    free = start_s
    start = np.maximum(free, 0.0)
    # A courier already at the merchant arrived when it became free there.
    arrival50 = np.where(travel50 == 0, free, start + travel50)
    arrival90 = np.where(travel90 == 0, free, start + travel90)
    ready = frame.ready_s[order_row]
    half = frame.half_pickup_s
    pickup50 = np.maximum(np.maximum(ready, arrival50 + half), 0.0)
    pickup90 = np.maximum(np.maximum(frame.ready_p90_s[order_row], arrival90 + half), 0.0)
    tail = half + frame.half_dropoff_s
    dropoff50 = pickup50 + tail + ride50
    dropoff90 = pickup90 + tail + ride90
    feasible = (
        (travel50 <= policy.max_pickup_s)
        & (pickup90 <= frame.shift_end_s[courier_row] - policy.shift_end_margin_s)
        & ~snapshot.forbids(order_row, courier_row)
    )
    return PairTable(
        order_row=order_row,
        courier_row=courier_row,
        feasible=feasible,
        stride=stride,
        travel_p50_s=travel50,
        travel_p90_s=travel90,
        arrival_p50_s=arrival50,
        pickup_p50_s=pickup50,
        pickup_p90_s=pickup90,
        dropoff_p50_s=dropoff50,
        dropoff_p90_s=dropoff90,
        ride_p50_s=ride50,
    )
