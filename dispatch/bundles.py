"""Bundles: adding an open order to a courier's pending pickup at the same merchant.

A courier heading to (or waiting at) a merchant for a committed bundle that has not been
picked up yet may take one more of that merchant's orders: the handover moves to the later of
the planned handover and the new order's ready time, and the drop-offs are re-sequenced to
minimise the sum of drop-off times. Freshness and detour limits of the policy are hard
constraints; capacity and shift end are respected.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from dispatch.candidates import TickFrame
from dispatch.costs import N_TERMS, past_guarantee, term_weights
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
        pickup_p50_s: new handover time at the merchant (seconds from now).
        dropoff_p50_s: drop-off times aligned with `sequence` (p50).
        dropoff_p90_s: drop-off times aligned with `sequence` (p90 legs).
        terms: weighted cost terms (`TERM_NAMES` order).
    """

    order_row: int
    courier_row: int
    sequence: tuple[int, ...]
    pickup_p50_s: float
    dropoff_p50_s: tuple[float, ...]
    dropoff_p90_s: tuple[float, ...]
    terms: tuple[float, ...]


@cache
def _permutations(size: int) -> IntArray:
    return np.array(list(itertools.permutations(range(size))), dtype=np.int64).reshape(-1, size)


def _drop_times(
    legs: FloatArray, order: IntArray, leave_s: float, half_dropoff_s: float
) -> FloatArray:
    """Drop-off times for each candidate sequence (rows of `order`, indices into stops 1..s).

    `legs[i, j]` is the travel time from stop `i` to stop `j`, stop 0 being the merchant.
    """
    previous = np.concatenate([np.zeros((order.shape[0], 1), dtype=np.int64), order[:, :-1] + 1], 1)
    travel = legs[previous, order + 1]
    position = np.arange(order.shape[1])
    return leave_s + np.cumsum(travel, axis=1) + half_dropoff_s * (2 * position + 1)


def _best_sequence(
    legs50: FloatArray, legs90: FloatArray, fixed: IntArray | None, leave_s: float, half: float
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Sequence (indices into stops 1..s) minimising the sum of p50 drop-off times.

    With `fixed` (the old sequence of the first s-1 stops) and a bundle above the exact limit,
    the new stop s-1 is inserted at its best position in the fixed sequence.
    """
    size = legs50.shape[0] - 1
    if size <= EXACT_SEQUENCE_LIMIT or fixed is None:
        candidates = _permutations(size)
    else:
        new = size - 1
        candidates = np.array(
            [np.insert(fixed, k, new) for k in range(size)], dtype=np.int64
        ).reshape(size, size)
    drops50 = _drop_times(legs50, candidates, leave_s, half)
    best = int(np.argmin(drops50.sum(axis=1)))
    drops90 = _drop_times(legs90, candidates[best : best + 1], leave_s, half)[0]
    return candidates[best], drops50[best], drops90


def insertions(snapshot: Snapshot, frame: TickFrame, policy: Policy) -> list[Insertion]:
    """Every admissible (open order, pending courier) insertion of this tick."""
    if not policy.bundling:
        return []
    orders = snapshot.orders
    couriers = snapshot.couriers
    pending_rows = np.flatnonzero(orders.courier_index >= 0)
    if pending_rows.size == 0 or frame.open_rows.size == 0:
        return []
    codes = orders.merchant_code
    open_by_merchant: dict[int, list[int]] = {}
    for row in frame.open_rows:
        open_by_merchant.setdefault(int(codes[row]), []).append(int(row))
    by_courier: dict[int, list[int]] = {}
    for row in pending_rows[np.argsort(orders.drop_sequence[pending_rows], kind="stable")]:
        by_courier.setdefault(int(orders.courier_index[row]), []).append(int(row))
    weights = term_weights(policy)
    pay = past_guarantee(snapshot, policy)
    half_p, half_d = frame.half_pickup_s, frame.half_dropoff_s
    found: list[Insertion] = []
    for c in sorted(by_courier):
        bundle = by_courier[c]
        pickup_old = float(frame.pending_pickup_s[c])
        if (
            not np.isfinite(pickup_old)
            or pickup_old < 0
            or couriers.spare_capacity[c] < 1
            or len(bundle) >= policy.max_bundle_size
        ):
            continue
        if policy.nearby_merchant_bundles:
            merchant_xy = orders.pickup_xy_m[bundle[0]]
            near = np.flatnonzero(
                np.hypot(*(orders.pickup_xy_m[frame.open_rows] - merchant_xy).T)
                <= policy.nearby_merchant_m
            )
            same = [int(frame.open_rows[i]) for i in near]
        else:
            same = open_by_merchant.get(int(codes[bundle[0]]), [])
        if not same:
            continue
        merchant_xy = orders.pickup_xy_m[bundle[0]]
        old_points = np.vstack([merchant_xy, orders.dropoff_xy_m[bundle]])
        eta_old = snapshot.eta.travel_s(old_points[:, None, :], old_points[None, :, :])
        identity = np.arange(len(bundle), dtype=np.int64)[None, :]
        old50 = _drop_times(np.asarray(eta_old.p50_s), identity, pickup_old + half_p, half_d)[0]
        old90 = _drop_times(np.asarray(eta_old.p90_s), identity, pickup_old + half_p, half_d)[0]
        old_late = np.maximum(old90 - frame.promise_s[bundle], 0.0).sum()
        for o in same:
            ready = float(frame.ready_s[o])
            if ready - pickup_old > policy.max_ready_gap_s:
                continue
            pickup = max(pickup_old, ready, 0.0)
            if pickup > frame.shift_end_s[c] - policy.shift_end_margin_s:
                continue
            rows = [*bundle, o]
            if (pickup - frame.ready_s[rows]).max() > policy.max_food_wait_s:
                continue
            points = np.vstack([merchant_xy, orders.dropoff_xy_m[rows]])
            eta = snapshot.eta.travel_s(points[:, None, :], points[None, :, :])
            seq, drops50, drops90 = _best_sequence(
                np.asarray(eta.p50_s),
                np.asarray(eta.p90_s),
                np.arange(len(bundle), dtype=np.int64),
                pickup + half_p,
                half_d,
            )
            where_new = int(np.flatnonzero(seq == len(bundle))[0])
            old_position = np.argsort(seq)[: len(bundle)]
            delays = drops50[old_position] - old50
            if delays.max(initial=0.0) > policy.max_detour_s:
                continue
            ordered = [rows[i] for i in seq]
            direct_min = frame.ready_s[o] + half_p + frame.direct_p50_s[o] + half_d
            raw = np.zeros(N_TERMS, dtype=np.float64)
            raw[0] = (drops50[where_new] - direct_min) / 60.0
            raw[1] = delays.sum() / 60.0
            new_late = np.maximum(drops90 - frame.promise_s[ordered], 0.0).sum()
            raw[2] = max(new_late - old_late, 0.0) / 60.0
            raw[3] = (pickup - pickup_old) / 60.0
            raw[5] = pay[c]
            raw[7] = (drops50.max() - old50.max()) / 60.0
            found.append(
                Insertion(
                    order_row=o,
                    courier_row=c,
                    sequence=tuple(ordered),
                    pickup_p50_s=pickup,
                    dropoff_p50_s=tuple(float(d) for d in drops50),
                    dropoff_p90_s=tuple(float(d) for d in drops90),
                    terms=tuple(float(t) for t in raw * weights),
                )
            )
    return found
