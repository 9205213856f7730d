"""Forbidden (order, courier) pairs: no option of `decide()`, greedy or `rank()` joins one.

New jobs, insertions into pending pickups, chained jobs, the greedy policy and request-time
ranking all leave the pair out, and the order still goes to another courier when one is free.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.bundles import insertions
from dispatch.candidates import courier_index, nearest_couriers, plan_pairs, tick_frame
from dispatch.chains import chain_pairs
from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, Policy
from dispatch.ranking import rank
from dispatch.snapshot import OPEN, Snapshot, SnapshotError

from .conftest import contested_snapshot, grid_order, grid_snapshot, snapshots

# Grid travel at 100 m per minute: 500 m is 5 minutes; pickup and drop-off take 2 + 2 minutes.
POLICY = DEFAULT_POLICY.replace(reposition=False)
CHAINED = POLICY.replace(chain_lookahead=True, matching_horizon_s=1200.0)


def _pairs(snapshot: Snapshot, policy: Policy) -> set[tuple[str, str]]:
    """(order, courier) of every assignment's new orders."""
    return {
        (o, a.courier_id) for a in decide(snapshot, policy).assignments for o in a.new_order_ids
    }


def _two_couriers(forbidden: tuple[tuple[str, str], ...] = ()) -> Snapshot:
    """A late order with a courier next door and another farther away, both free now."""
    return grid_snapshot(
        [grid_order("o1", 0)],
        [
            {"id": "near", "xy": (100, 0), "free": 0, "end": 600},
            {"id": "far", "xy": (900, 0), "free": 0, "end": 600},
        ],
        forbidden=forbidden,
    )


# ---------------------------------------------------------------------- the snapshot field
def test_a_snapshot_forbids_nothing_by_default() -> None:
    """Without `forbidden` no pair of rows is forbidden."""
    snap = _two_couriers()
    assert snap.forbidden == ()
    assert not snap.forbids(np.array([0, 0]), np.array([0, 1])).any()


def test_forbidden_pairs_are_stored_sorted_once() -> None:
    """Repeated pairs collapse and the pairs are kept sorted."""
    snap = _two_couriers((("o1", "near"), ("o1", "far"), ("o1", "near")))
    assert snap.forbidden == (("o1", "far"), ("o1", "near"))


def test_forbids_marks_exactly_the_forbidden_rows() -> None:
    """`forbids` is true for the rows of a forbidden pair and false for the others."""
    snap = _two_couriers((("o1", "far"),))
    assert snap.forbids(np.array([0, 0]), np.array([0, 1])).tolist() == [False, True]


@pytest.mark.parametrize(
    "forbidden",
    [(("o9", "near"),), (("o1", "nobody"),), (("o1",),), (("o1", "near", "far"),)],
)
def test_a_forbidden_pair_outside_the_tables_is_rejected(forbidden: Any) -> None:
    """A pair naming an unknown order or courier, or not a pair, raises `SnapshotError`."""
    with pytest.raises(SnapshotError):
        _two_couriers(forbidden)


# ---------------------------------------------------------------------- new jobs
def test_a_new_job_never_goes_to_a_forbidden_courier() -> None:
    """The nearer courier is forbidden: the order goes to the other one."""
    assert _pairs(_two_couriers(), POLICY) == {("o1", "near")}
    assert _pairs(_two_couriers((("o1", "near"),)), POLICY) == {("o1", "far")}


def test_an_order_whose_only_courier_is_forbidden_is_held() -> None:
    """With its one courier forbidden, the order is held, not assigned."""
    snap = grid_snapshot(
        [grid_order("o1", 0)],
        [{"id": "c1", "xy": (100, 0), "free": 0, "end": 600}],
        forbidden=(("o1", "c1"),),
    )
    d = decide(snap, POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_a_forbidden_courier_is_no_candidate_pair() -> None:
    """`plan_pairs` marks the forbidden pair infeasible and leaves the others as they were."""
    allowed, forbidden = _two_couriers(), _two_couriers((("o1", "near"),))
    for snap, expected in ((allowed, [True, True]), (forbidden, [False, True])):
        frame = tick_frame(snap, POLICY)
        o_rows, c_rows, stride = nearest_couriers(
            snap, courier_index(snap, frame, POLICY), frame.open_rows, POLICY
        )
        pairs = plan_pairs(snap, frame, o_rows, c_rows, POLICY, stride)
        by_courier = dict(zip(pairs.courier_row.tolist(), pairs.feasible.tolist(), strict=True))
        assert [by_courier[0], by_courier[1]] == expected


# ---------------------------------------------------------------------- insertions
def _pending(forbidden: tuple[tuple[str, str], ...] = ()) -> Snapshot:
    """c1 heads to m1 for o1; o2 at m1 could join it; c2, free 10 minutes away, could take o2."""
    orders = [
        grid_order("o1", 4, courier=0, seq=0),
        grid_order("o2", 3, dropoff=(300, 100)),
    ]
    couriers = [
        {"id": "c1", "xy": (300, 0), "free": 12, "end": 600, "pending": 5, "spare": 2},
        {"id": "c2", "xy": (1000, 0), "free": 0, "end": 600},
    ]
    return grid_snapshot(orders, couriers, forbidden=forbidden)


def test_an_order_never_joins_the_pending_pickup_of_a_forbidden_courier() -> None:
    """Forbidding (o2, c1) removes o2's insertion into c1's pending pickup."""
    frame = tick_frame(_pending(), POLICY)
    assert insertions(_pending(), frame, POLICY).n == 1
    assert insertions(_pending((("o2", "c1"),)), frame, POLICY).n == 0


def test_an_order_kept_from_a_pending_pickup_goes_to_a_free_courier() -> None:
    """o2 would join c1's pickup; forbidden with c1, it goes to the free courier c2."""
    assert ("o2", "c1") in _pairs(_pending(), POLICY)
    assert _pairs(_pending((("o2", "c1"),)), POLICY) == {("o2", "c2")}


# ---------------------------------------------------------------------- chains
def test_no_chained_pair_joins_a_forbidden_courier() -> None:
    """`chain_pairs` plans a after y's job unless (a, y) is forbidden."""

    def chained(snap: Snapshot) -> set[tuple[str, str]]:
        frame = tick_frame(snap, CHAINED)
        index = courier_index(snap, frame, CHAINED)
        o_rows, c_rows, stride = nearest_couriers(snap, index, frame.open_rows, CHAINED)
        planned = plan_pairs(snap, frame, o_rows, c_rows, CHAINED, stride)
        planned = planned.take(planned.feasible & (planned.order_row == 1))  # y and x take b
        chain = chain_pairs(snap, frame, CHAINED, planned, frame.open_rows)
        return {
            (snap.orders.order_id[o], snap.couriers.courier_id[c])
            for o, c in zip(chain.pairs.order_row, chain.pairs.courier_row, strict=True)
        }

    assert ("a", "y") in chained(contested_snapshot())
    assert ("a", "y") not in chained(contested_snapshot((("a", "y"),)))


def test_an_order_is_not_held_for_a_forbidden_chained_courier() -> None:
    """Order a waits for y's chain; with (a, y) forbidden it is not held: the free x takes it."""
    assert decide(contested_snapshot(), CHAINED).held_order_ids == ("a",)
    blocked = _pairs(contested_snapshot((("a", "y"),)), CHAINED)
    assert ("a", "y") not in blocked
    assert ("a", "x") in blocked


# ---------------------------------------------------------------------- greedy and rank
def test_greedy_never_assigns_a_forbidden_courier() -> None:
    """The greedy policy skips the forbidden courier with the earliest pickup for the next."""
    assert _pairs(_two_couriers(), GREEDY_POLICY) == {("o1", "near")}
    assert _pairs(_two_couriers((("o1", "near"),)), GREEDY_POLICY) == {("o1", "far")}


def test_the_circuit_breaker_never_assigns_a_forbidden_courier() -> None:
    """Past `max_pairs` the greedy fallback respects forbidden pairs too."""
    d = decide(_two_couriers((("o1", "near"),)), POLICY.replace(max_pairs=0))
    assert d.fallback_used
    assert [(a.new_order_ids, a.courier_id) for a in d.assignments] == [(("o1",), "far")]


def test_rank_leaves_out_a_courier_forbidden_with_the_request() -> None:
    """Ranking an order of the snapshot again never lists a courier it is forbidden with."""
    snap = _two_couriers((("o1", "near"),))
    request = dataclasses.replace(snap.orders)
    assert [r.courier_id for r in rank(request, snap, 5)] == ["far"]
    assert [r.courier_id for r in rank(request, _two_couriers(), 5)] == ["near", "far"]


# ---------------------------------------------------------------------- any shard
@st.composite
def _with_forbidden(draw: st.DrawFn) -> Snapshot:
    """A random shard with random forbidden pairs of its open orders and its couriers."""
    snap = draw(snapshots())
    open_ids = [snap.orders.order_id[i] for i in np.flatnonzero(snap.orders.courier_index == OPEN)]
    if not open_ids:
        return snap
    pairs = st.tuples(st.sampled_from(open_ids), st.sampled_from(snap.couriers.courier_id))
    chosen = draw(st.lists(pairs, max_size=3 * len(open_ids)))
    return dataclasses.replace(snap, forbidden=tuple(chosen))


@settings(max_examples=60, deadline=None)
@given(
    _with_forbidden(),
    st.sampled_from(
        [
            POLICY,
            GREEDY_POLICY,
            CHAINED.replace(chain_rounds=2),
            POLICY.replace(name="eager", jit=False),
            POLICY.replace(name="nearby", nearby_merchant_bundles=True, nearby_merchant_m=1500.0),
        ]
    ),
)
def test_no_decision_joins_a_forbidden_pair(snapshot: Snapshot, policy: Policy) -> None:
    """On any shard and policy, no assigned order goes to a courier it is forbidden with."""
    forbidden = set(snapshot.forbidden)
    assert not _pairs(snapshot, policy) & forbidden
