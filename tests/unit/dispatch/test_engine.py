"""Invariants of `decide()` and `rank()` on random shards (property tests)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.decisions import Decisions
from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, Policy
from dispatch.ranking import rank
from dispatch.snapshot import OPEN, OrderTable, Snapshot, SnapshotError

from .conftest import snapshots

POLICIES = [
    DEFAULT_POLICY,
    GREEDY_POLICY,
    DEFAULT_POLICY.replace(name="nearby", nearby_merchant_bundles=True, nearby_merchant_m=1500.0),
    DEFAULT_POLICY.replace(name="eager", jit=False, max_bundle_size=2),
    DEFAULT_POLICY.replace(name="chained", chain_lookahead=True, chain_rounds=2),
    DEFAULT_POLICY.replace(name="unchained", chain_lookahead=False, matching_horizon_s=180.0),
    DEFAULT_POLICY.replace(name="capped", max_matching_orders=3),
]
policies = st.sampled_from(POLICIES)
PROPERTY = settings(max_examples=40, deadline=None)


def _open_ids(snapshot: Snapshot) -> set[str]:
    rows = np.flatnonzero(snapshot.orders.courier_index == OPEN)
    return {snapshot.orders.order_id[r] for r in rows}


def _pending_ids(snapshot: Snapshot, courier_id: str) -> set[str]:
    c = snapshot.couriers.courier_id.index(courier_id)
    rows = np.flatnonzero(snapshot.orders.courier_index == c)
    return {snapshot.orders.order_id[r] for r in rows}


@PROPERTY
@given(snapshots(), policies)
def test_no_order_in_two_live_decisions(snapshot: Snapshot, policy: Policy) -> None:
    """Every committed order is open and committed once; updates keep the courier's orders."""
    d = decide(snapshot, policy)
    new = [o for a in d.assignments for o in a.new_order_ids]
    assert len(new) == len(set(new))
    assert set(new) <= _open_ids(snapshot)
    for a in d.assignments:
        kept = set(a.order_ids) - set(a.new_order_ids)
        if a.updates_pending:
            assert kept == _pending_ids(snapshot, a.courier_id)
        else:
            assert not kept


@PROPERTY
@given(snapshots(), policies)
def test_no_courier_in_two_decisions(snapshot: Snapshot, policy: Policy) -> None:
    """A courier gets at most one decision (assignment or reposition) per tick."""
    d = decide(snapshot, policy)
    couriers = [a.courier_id for a in d.assignments] + [r.courier_id for r in d.repositions]
    assert len(couriers) == len(set(couriers))


@PROPERTY
@given(snapshots(), policies)
def test_capacity_never_exceeded(snapshot: Snapshot, policy: Policy) -> None:
    """New orders fit the courier's spare capacity and bundles stay within the policy size."""
    d = decide(snapshot, policy)
    for a in d.assignments:
        c = snapshot.couriers.courier_id.index(a.courier_id)
        assert len(a.new_order_ids) <= snapshot.couriers.spare_capacity[c]
        assert len(a.order_ids) <= max(policy.max_bundle_size, 1)


@PROPERTY
@given(snapshots(), policies)
def test_shift_end_respected(snapshot: Snapshot, policy: Policy) -> None:
    """Every planned pickup (p90) happens no later than the courier's shift end."""
    d = decide(snapshot, policy)
    for a in d.assignments:
        c = snapshot.couriers.courier_id.index(a.courier_id)
        end = int(snapshot.couriers.shift_end_ts_ms[c])
        for stop in a.stops:
            if stop.kind == "pickup":
                assert stop.handover_p90_ts_ms <= end


@PROPERTY
@given(snapshots(), policies)
def test_same_snapshot_same_decisions(snapshot: Snapshot, policy: Policy) -> None:
    """Deciding twice on the same snapshot gives identical decisions, ids included."""
    assert decide(snapshot, policy) == decide(snapshot, policy)


@PROPERTY
@given(snapshots(), policies)
def test_explanation_terms_sum_to_cost(snapshot: Snapshot, policy: Policy) -> None:
    """Each assignment's weighted cost terms add up to its cost."""
    d = decide(snapshot, policy)
    for a in d.assignments:
        assert a.cost == a.explanation.total_cost
        assert math.isclose(a.explanation.term_sum, a.cost, rel_tol=1e-9, abs_tol=1e-9)


@PROPERTY
@given(snapshots(), policies)
def test_open_orders_are_committed_or_held(snapshot: Snapshot, policy: Policy) -> None:
    """Each open order is either committed in this tick or listed as held, never both."""
    d = decide(snapshot, policy)
    committed = Counter(o for a in d.assignments for o in a.new_order_ids)
    held = Counter(d.held_order_ids)
    assert not set(committed) & set(held)
    assert set(committed) | set(held) == _open_ids(snapshot)


@PROPERTY
@given(snapshots(), policies)
def test_decision_ids_unique(snapshot: Snapshot, policy: Policy) -> None:
    """Decision ids within a tick are unique."""
    d = decide(snapshot, policy)
    ids = [a.decision_id for a in d.assignments] + [r.decision_id for r in d.repositions]
    assert len(ids) == len(set(ids))


@PROPERTY
@given(snapshots(), policies)
def test_runner_up_differs_from_choice(snapshot: Snapshot, policy: Policy) -> None:
    """The runner-up named in an explanation is another courier."""
    d: Decisions = decide(snapshot, policy)
    for a in d.assignments:
        assert a.explanation.runner_up_courier_id != a.courier_id


@PROPERTY
@given(snapshots(), st.integers(1, 6))
def test_rank_is_sorted_and_explained(snapshot: Snapshot, k: int) -> None:
    """rank() returns at most k distinct couriers, cheapest first, terms summing to cost."""
    if snapshot.orders.n == 0:
        return
    o = snapshot.orders
    request = OrderTable(
        order_id=("request",),
        merchant_id=(o.merchant_id[0],),
        pickup_xy_m=o.pickup_xy_m[:1],
        dropoff_xy_m=o.dropoff_xy_m[:1],
        placed_ts_ms=o.placed_ts_ms[:1],
        ready_ts_ms=o.ready_ts_ms[:1],
        promise_ts_ms=o.promise_ts_ms[:1],
        courier_index=np.array([OPEN]),
        drop_sequence=np.array([-1]),
    )
    ranked = rank(request, snapshot, k)
    assert len(ranked) <= k
    assert len({r.courier_id for r in ranked}) == len(ranked)
    costs = [r.cost for r in ranked]
    assert costs == sorted(costs)
    for r in ranked:
        assert math.isclose(sum(v for _, v in r.terms), r.cost, rel_tol=1e-9, abs_tol=1e-9)


def test_rank_rejects_a_non_open_request() -> None:
    """rank() takes exactly one open order and says so otherwise."""
    with pytest.raises(SnapshotError):
        rank(OrderTable.empty(), next(iter([_empty_snapshot()])), 3)


def _empty_snapshot() -> Snapshot:
    from .conftest import grid_snapshot

    return grid_snapshot([], [{"id": "c1", "xy": (0, 0), "free": 0, "end": 60}])
