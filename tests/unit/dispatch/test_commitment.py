"""Just-in-time commitment, insertion into pending pickups and the greedy fallback."""

from __future__ import annotations

from typing import Any

from dispatch.bundles import insertions
from dispatch.candidates import tick_frame
from dispatch.engine import decide
from dispatch.greedy import greedy_decide
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY
from dispatch.snapshot import Snapshot

from .conftest import grid_snapshot

# Grid travel at 100 m per minute: 500 m is 5 minutes.
POLICY = DEFAULT_POLICY.replace(reposition=False)


def _order(oid: str, ready: int, merchant: str = "m1", **extra: object) -> dict[str, Any]:
    return {
        "id": oid,
        "merchant": merchant,
        "pickup": (0, 0),
        "dropoff": (300, 0),
        "placed": -1,
        "ready": ready,
        **extra,
    }


def test_order_with_slack_is_held() -> None:
    """An order ready in 30 minutes with a courier 5 minutes away is held, not committed."""
    snap = grid_snapshot([_order("o1", 30)], [{"id": "c1", "xy": (500, 0), "free": 0, "end": 600}])
    d = decide(snap, POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_order_is_committed_when_its_courier_must_leave() -> None:
    """With ready at +7 and 5 minutes of travel, waiting one more minute would be late."""
    snap = grid_snapshot([_order("o1", 7)], [{"id": "c1", "xy": (500, 0), "free": 0, "end": 600}])
    d = decide(snap, POLICY)
    assert [a.courier_id for a in d.assignments] == ["c1"]
    assert d.assignments[0].explanation.reason == "just_in_time"
    assert d.assignments[0].pickup_ts_ms == snap.orders.ready_ts_ms[0]


def test_late_order_is_committed_at_once() -> None:
    """An order that is already late goes to the courier with the earliest pickup now."""
    snap = grid_snapshot(
        [_order("o1", 0)],
        [
            {"id": "far", "xy": (900, 0), "free": 0, "end": 600},
            {"id": "near", "xy": (200, 0), "free": 0, "end": 600},
        ],
    )
    d = decide(snap, POLICY)
    assert [a.courier_id for a in d.assignments] == ["near"]
    assert d.assignments[0].explanation.reason == "late"
    assert d.assignments[0].explanation.runner_up_courier_id == "far"


def test_order_waits_for_a_better_busy_courier() -> None:
    """A busy courier freeing up next door beats an idle one far away: the order is held."""
    snap = grid_snapshot(
        [_order("o1", 10)],
        [
            {"id": "idle_far", "xy": (2000, 0), "free": 0, "end": 600},
            {"id": "busy_near", "xy": (100, 0), "free": 3, "end": 600},
        ],
    )
    d = decide(snap, POLICY)
    assert not d.assignments and d.held_order_ids == ("o1",)


def test_courier_past_shift_end_gets_nothing() -> None:
    """A courier whose shift ends before it could pick up is never assigned."""
    snap = grid_snapshot([_order("o1", 0)], [{"id": "c1", "xy": (500, 0), "free": 0, "end": 3}])
    assert not decide(snap, POLICY).assignments


def _pending_snapshot(spare: int) -> Snapshot:
    orders = [
        _order("o1", 4, courier=0, seq=0),
        {
            "id": "o2",
            "merchant": "m1",
            "pickup": (0, 0),
            "dropoff": (300, 100),
            "placed": -2,
            "ready": 3,
        },
    ]
    couriers = [{"id": "c1", "xy": (300, 0), "free": 12, "end": 600, "pending": 5, "spare": spare}]
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
    orders = [
        _order("o1", 4, courier=0, seq=0),
        {
            "id": "o2",
            "merchant": "m1",
            "pickup": (0, 0),
            "dropoff": (300, 100),
            "placed": -2,
            "ready": 9,
        },
    ]
    couriers = [{"id": "c1", "xy": (300, 0), "free": 12, "end": 600, "pending": 5, "spare": 2}]
    snap = grid_snapshot(orders, couriers)
    frame = tick_frame(snap, POLICY)
    assert insertions(snap, frame, POLICY).n == 1
    assert insertions(snap, frame, POLICY.replace(max_detour_s=120.0)).n == 0


def test_greedy_commits_each_order_to_the_earliest_pickup() -> None:
    """Greedy commits at once (even far ahead of ready time) to the earliest pickup."""
    snap = grid_snapshot(
        [_order("o1", 30)],
        [
            {"id": "a", "xy": (900, 0), "free": 0, "end": 600},
            {"id": "b", "xy": (100, 0), "free": 0, "end": 600},
        ],
    )
    d = decide(snap, GREEDY_POLICY)
    assert [a.courier_id for a in d.assignments] == ["b"]


def test_circuit_breaker_falls_back_to_greedy() -> None:
    """Above max_pairs candidate pairs the tick is decided greedily and says so."""
    snap = grid_snapshot([_order("o1", 30)], [{"id": "a", "xy": (100, 0), "free": 0, "end": 600}])
    d = decide(snap, POLICY.replace(max_pairs=0))
    assert d.fallback_used
    expected = greedy_decide(snap, tick_frame(snap, POLICY), POLICY, fallback=True)
    assert d == expected
