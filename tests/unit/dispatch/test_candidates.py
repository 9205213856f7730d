"""Candidate generation from the time-aware courier index."""

from __future__ import annotations

import numpy as np

from dispatch.candidates import courier_index, nearest_couriers, plan_pairs, tick_frame
from dispatch.policy import DEFAULT_POLICY
from dispatch.synthetic import ShardShape, synthetic_snapshot

from .conftest import grid_courier, grid_order, grid_snapshot

#: One order at merchant m, point (0, 0), ready in 9 minutes.
ORDER = grid_order("o1", 9, "m", dropoff=(1, 1), placed=0)


def test_candidates_are_the_nearest_couriers() -> None:
    """With k candidates, each order gets the k couriers nearest to its merchant."""
    snap = grid_snapshot(
        [ORDER],
        [grid_courier(f"c{i}", (100 * i, 0)) for i in range(1, 8)],
    )
    policy = DEFAULT_POLICY.replace(max_candidates=3, min_candidates=3)
    frame = tick_frame(snap, policy)
    _, couriers, stride = nearest_couriers(
        snap, courier_index(snap, frame, policy), frame.open_rows, policy
    )
    assert stride == 3
    assert sorted(snap.couriers.courier_id[c] for c in couriers) == ["c1", "c2", "c3"]


def test_pair_budget_shrinks_candidates_for_big_ticks() -> None:
    """Many open orders get fewer candidates each, never below min_candidates."""
    snap = synthetic_snapshot(ShardShape(400, 300), np.random.default_rng(1))
    policy = DEFAULT_POLICY.replace(max_candidates=48, min_candidates=5, pair_budget=4000)
    frame = tick_frame(snap, policy)
    rows, _, stride = nearest_couriers(
        snap, courier_index(snap, frame, policy), frame.open_rows, policy
    )
    assert stride == 10 and rows.size == 10 * frame.open_rows.size
    tight = policy.replace(pair_budget=100)
    assert nearest_couriers(snap, courier_index(snap, frame, tight), frame.open_rows, tight)[2] == 5


def test_pickups_after_shift_end_are_infeasible() -> None:
    """A pair whose pickup would come after the courier's shift end is marked infeasible."""
    snap = grid_snapshot(
        [ORDER],
        [
            grid_courier("late", (0, 0), end=5),
            grid_courier("ok", (0, 0), end=60),
        ],
    )
    frame = tick_frame(snap, DEFAULT_POLICY)
    rows, couriers, stride = nearest_couriers(
        snap, courier_index(snap, frame, DEFAULT_POLICY), frame.open_rows, DEFAULT_POLICY
    )
    pairs = plan_pairs(snap, frame, rows, couriers, DEFAULT_POLICY, stride)
    feasible = {
        snap.couriers.courier_id[c]: f
        for c, f in zip(pairs.courier_row, pairs.feasible, strict=True)
    }
    assert feasible == {"late": False, "ok": True}
