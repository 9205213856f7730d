"""Just-in-time commitment, insertion into pending pickups and the greedy fallback."""

from __future__ import annotations

import dataclasses

import pytest

from dispatch.bundles import insertions
from dispatch.candidates import tick_frame
from dispatch.engine import decide
from dispatch.eta import StraightLineEta
from dispatch.greedy import greedy_decide
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY
from dispatch.snapshot import Snapshot

from .conftest import grid_courier, grid_order, grid_snapshot

# Grid travel at 100 m per minute: 500 m is 5 minutes.
POLICY = DEFAULT_POLICY.replace(reposition=False)


def test_order_with_slack_is_held() -> None:
    """An order ready in 30 minutes with a courier 5 minutes away is held, not committed."""
    snap = grid_snapshot([grid_order("o1", 30)], [grid_courier("c1", (500, 0))])
    d = decide(snap, POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_order_is_committed_when_its_courier_must_leave() -> None:
    """With ready at +7 and 5 minutes of travel, waiting one more minute would be late."""
    snap = grid_snapshot([grid_order("o1", 7)], [grid_courier("c1", (500, 0))])
    d = decide(snap, POLICY)
    assert [a.courier_id for a in d.assignments] == ["c1"]
    assert d.assignments[0].explanation.reason == "just_in_time"
    assert d.assignments[0].pickup_ts_ms == snap.orders.ready_ts_ms[0]


def test_late_order_is_committed_at_once() -> None:
    """An order that is already late goes to the courier with the earliest pickup now."""
    snap = grid_snapshot(
        [grid_order("o1", 0)],
        [
            grid_courier("far", (900, 0)),
            grid_courier("near", (200, 0)),
        ],
    )
    d = decide(snap, POLICY)
    assert [a.courier_id for a in d.assignments] == ["near"]
    assert d.assignments[0].explanation.reason == "late"
    assert d.assignments[0].explanation.runner_up_courier_id == "far"


def test_order_waits_for_a_better_busy_courier() -> None:
    """A busy courier freeing up next door beats an idle one far away: the order is held."""
    snap = grid_snapshot(
        [grid_order("o1", 10)],
        [
            grid_courier("idle_far", (2000, 0)),
            grid_courier("busy_near", (100, 0), free=3),
        ],
    )
    d = decide(snap, POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def _late_order_with_idle_and_busy(busy_free_min: int) -> Snapshot:
    """A late order; an idle courier hands it over at +7, a busy one next door later frees."""
    return grid_snapshot(
        [grid_order("o1", 0)],
        [
            grid_courier("idle", (500, 0)),
            grid_courier("busy", (100, 0), free=busy_free_min),
        ],
    )


def test_free_courier_beats_a_busy_plan_better_by_less_than_the_penalty() -> None:
    """The busy courier would hand over at +6, one minute before the idle one: the idle one goes."""
    d = decide(_late_order_with_idle_and_busy(3), POLICY)
    assert [a.courier_id for a in d.assignments] == ["idle"]
    assert d.assignments[0].explanation.runner_up_courier_id == "busy"


def test_busy_plan_better_by_more_than_the_penalty_is_kept() -> None:
    """The busy courier would hand over at +4, three minutes earlier: the order waits for it."""
    d = decide(_late_order_with_idle_and_busy(1), POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_without_the_penalty_the_slightly_better_busy_plan_wins() -> None:
    """With `w_busy_plan` 0 the order waits for the busy courier one minute better."""
    d = decide(_late_order_with_idle_and_busy(3), POLICY.replace(w_busy_plan=0.0))
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_busy_plan_penalty_is_not_part_of_the_cost() -> None:
    """The chosen idle courier costs more than the busy runner-up: the penalty is a priority."""
    chosen = decide(_late_order_with_idle_and_busy(3), POLICY).assignments[0]
    runner_up = chosen.explanation.runner_up_cost
    assert runner_up is not None and runner_up < chosen.cost


def test_courier_past_shift_end_gets_nothing() -> None:
    """A courier whose shift ends before it could pick up is never assigned."""
    snap = grid_snapshot([grid_order("o1", 0)], [grid_courier("c1", (500, 0), end=3)])
    assert not decide(snap, POLICY).assignments


def _pending_snapshot(spare: int, joining_ready: int = 3) -> Snapshot:
    """c1 holds o1 with a pickup pending at m1 at +5; o2 at m1 is ready at `joining_ready`."""
    orders = [
        grid_order("o1", 4, courier=0, seq=0),
        grid_order("o2", joining_ready, dropoff=(300, 100), placed=-2),
    ]
    couriers = [grid_courier("c1", (300, 0), free=12, pending=5, spare=spare)]
    return grid_snapshot(orders, couriers)


def test_order_joins_a_pending_pickup_at_its_merchant() -> None:
    """An order ready before a pending pickup at its merchant joins that bundle."""
    d = decide(_pending_snapshot(spare=2), POLICY)
    assert len(d.assignments) == 1
    a = d.assignments[0]
    assert a.updates_pending and a.new_order_ids == ("o2",)
    assert set(a.order_ids) == {"o1", "o2"}
    assert [s.kind for s in a.stops] == ["pickup", "dropoff", "dropoff"]


def test_full_courier_takes_no_insertion() -> None:
    """Without spare capacity the pending pickup gains no order."""
    d = decide(_pending_snapshot(spare=0), POLICY)
    assert all(not a.updates_pending for a in d.assignments)


def test_detour_cap_blocks_insertion() -> None:
    """An insertion that delays the pending order beyond max_detour_s is not a candidate."""
    snap = _pending_snapshot(spare=2, joining_ready=9)
    frame = tick_frame(snap, POLICY)
    assert insertions(snap, frame, POLICY).n == 1
    assert insertions(snap, frame, POLICY.replace(max_detour_s=120.0)).n == 0


def test_greedy_commits_each_order_to_the_earliest_pickup() -> None:
    """Greedy commits at once (even far ahead of ready time) to the earliest pickup."""
    snap = grid_snapshot(
        [grid_order("o1", 30)],
        [
            grid_courier("a", (900, 0)),
            grid_courier("b", (100, 0)),
        ],
    )
    d = decide(snap, GREEDY_POLICY)
    assert [a.courier_id for a in d.assignments] == ["b"]


def test_circuit_breaker_falls_back_to_greedy() -> None:
    """Above max_pairs candidate pairs the tick is decided greedily and says so."""
    snap = grid_snapshot([grid_order("o1", 30)], [grid_courier("a", (100, 0))])
    d = decide(snap, POLICY.replace(max_pairs=0))
    assert d.fallback_used
    expected = greedy_decide(snap, tick_frame(snap, POLICY), POLICY, fallback=True)
    assert d == expected


def test_courier_time_is_priced_only_until_the_shift_ends() -> None:
    """A courier whose shift ends at its pickup is charged courier time up to then, not after."""
    order = [grid_order("o1", 0)]
    ending = grid_snapshot(order, [grid_courier("c1", (500, 0), end=7)])
    staying = grid_snapshot(order, [grid_courier("c1", (500, 0))])
    # 5 minutes to the merchant, handover at +7, 3 minutes on, service at the door done at +16.
    charged = [
        dict(decide(snap, POLICY).assignments[0].explanation.terms)["courier_time"]
        for snap in (ending, staying)
    ]
    assert charged == pytest.approx([7 * POLICY.w_courier_time, 16 * POLICY.w_courier_time])


def test_only_the_most_urgent_orders_enter_a_capped_matching() -> None:
    """With room for one order in the matching, the one that must leave first is committed."""
    orders = [grid_order("later", 7), grid_order("urgent", 6)]
    couriers = [
        grid_courier("c1", (500, 0)),
        grid_courier("c2", (0, 500)),
    ]
    snap = grid_snapshot(orders, couriers)
    uncapped = decide(snap, POLICY)
    capped = decide(snap, POLICY.replace(max_matching_orders=1))
    assert sorted(a.new_order_ids[0] for a in uncapped.assignments) == ["later", "urgent"]
    assert [a.new_order_ids[0] for a in capped.assignments] == ["urgent"]
    assert capped.held_order_ids == ("later",)


@pytest.mark.parametrize("dropoff_x_m", [300.0, 1500.0, 4000.0])
def test_late_term_prices_the_p90_handover_past_the_promise(dropoff_x_m: float) -> None:
    """The late term is how far the p90 handover at the door is past the promise, weighted."""
    order = {**grid_order("o1", 0), "dropoff": (dropoff_x_m, 0)}
    snap = grid_snapshot([order], [grid_courier("c1", (900, 0))])
    snap = dataclasses.replace(
        snap, eta=StraightLineEta(speed_mps=100 / 60, detour_factor=1.0, p90_factor=1.5)
    )
    (assignment,) = decide(snap, POLICY).assignments
    door = assignment.stops[-1]
    promise_ms = int(snap.orders.promise_ts_ms[0])
    p90_late_min = max(door.handover_p90_ts_ms - promise_ms, 0) / 60_000
    late = dict(assignment.explanation.terms)["late"]
    assert late == pytest.approx(POLICY.w_late * p90_late_min, abs=1e-3)
