"""State records of live dispatch: cool-downs, courier load, and their JSON round trips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatch.live.records import (
    CourierRecord,
    DecisionRecord,
    DecisionStatus,
    OrderDispatch,
    Phase,
    RouteStop,
    ShardControl,
)

ids = st.text("abcxyz0123456789-", min_size=1, max_size=8)
ts = st.integers(0, 4_102_444_800_000)


def stop(kind: str, *order_ids: str, at_ms: int = 1_000) -> RouteStop:
    """A route stop at a fixed place."""
    return RouteStop(kind, order_ids, 40.75, -73.99, at_ms, at_ms + 500)


def courier(**changes: object) -> CourierRecord:
    """An online courier of capacity 3 with `changes`."""
    base = CourierRecord("c1", "dr5r", "online", 3, "bike", 0, 0)
    return CourierRecord(**{**base.__dict__, **changes})


def test_a_pair_is_cooling_only_for_its_courier_and_until_its_end() -> None:
    """`cooling` is true for the courier named, strictly before the cool-down ends."""
    dispatch = OrderDispatch().with_cooldown("c1", until_ts_ms=5_000, now_ts_ms=1_000)
    assert dispatch.cooling("c1", 4_999)
    assert not dispatch.cooling("c1", 5_000)
    assert not dispatch.cooling("c2", 1_000)


def test_a_new_cool_down_replaces_the_courier_s_old_one_and_drops_ended_ones() -> None:
    """Adding a cool-down keeps one entry per courier and forgets those already over."""
    dispatch = (
        OrderDispatch()
        .with_cooldown("c1", 2_000, 0)
        .with_cooldown("c2", 9_000, 0)
        .with_cooldown("c1", 8_000, 3_000)
    )
    assert sorted(dispatch.cooldowns) == [("c1", 8_000), ("c2", 9_000)]
    assert dispatch.with_cooldown("c3", 20_000, 10_000).cooldowns == (("c3", 20_000),)


@given(
    phase=st.sampled_from(list(Phase)),
    decision=st.none() | ids,
    courier_id=st.none() | ids,
    cooldowns=st.lists(st.tuples(ids, ts), max_size=4),
    eta=st.none() | ts,
    reason=st.none() | st.sampled_from(["max_age", "no_courier"]),
)
def test_order_dispatch_survives_its_json_form(
    phase: Phase,
    decision: str | None,
    courier_id: str | None,
    cooldowns: list[tuple[str, int]],
    eta: int | None,
    reason: str | None,
) -> None:
    """`from_dict(to_dict(x)) == x` for any dispatch state."""
    dispatch = OrderDispatch(phase, decision, courier_id, tuple(cooldowns), eta, eta, eta, reason)
    assert OrderDispatch.from_dict(dispatch.to_dict()) == dispatch


def test_load_counts_each_held_order_once() -> None:
    """Load is the orders to drop off plus those on board, an order in both counting once."""
    record = courier(
        route=(stop("pickup", "o2"), stop("dropoff", "o1", "o2"), stop("dropoff", "o3")),
        onboard=("o1", "o4"),
    )
    assert record.load == 4
    assert record.spare_capacity == 0


def test_spare_capacity_is_never_negative() -> None:
    """A courier holding more than its capacity has no spare capacity (not a negative one)."""
    record = courier(capacity=1, onboard=("o1", "o2"))
    assert record.spare_capacity == 0


def test_only_online_couriers_can_take_work() -> None:
    """`online` is true for status online only."""
    assert courier().online and not courier(status="offline").online


def test_a_courier_record_survives_its_json_form() -> None:
    """`from_json(to_json(x)) == x` for a courier with a route, load and a lease."""
    record = courier(
        route=(stop("pickup", "o1", "o2"), stop("dropoff", "o1", at_ms=9_000)),
        onboard=("o3",),
        lease_decision_id="d1",
        lease_expires_ts_ms=12_345,
        orders_done=7,
        shift_end_ts_ms=99_000,
    )
    assert CourierRecord.from_json(record.to_json()) == record


def test_a_decision_record_survives_its_json_form() -> None:
    """`from_json(to_json(x)) == x` for a decision with ETAs, terms and responses."""
    record = DecisionRecord(
        decision_id="d1",
        shard="dr5r",
        generation=3,
        courier_id="c1",
        order_ids=("o1", "o2"),
        new_order_ids=("o2",),
        updates_pending=True,
        status=DecisionStatus.COMMITTED,
        proposed_ts_ms=1_000,
        lease_expires_ts_ms=31_000,
        route=(stop("pickup", "o1", "o2"), stop("dropoff", "o2", at_ms=5_000)),
        etas={"o2": (600.5, 700.25, 710.0)},
        cost=3.25,
        terms={"delay": 3.0, "travel": 0.25},
        runner_up_courier_id="c2",
        runner_up_cost=4.5,
        reason="just_in_time",
        policy_version="default+v2",
        model_version="straight-line",
        fallback_used=True,
        resolved_ts_ms=2_000,
        release_reason=None,
        responses=("r1",),
    )
    assert DecisionRecord.from_json(record.to_json()) == record


def test_a_shard_control_survives_its_json_form() -> None:
    """`from_json(to_json(x)) == x` for flags set and unset."""
    for control in (
        ShardControl("dr5r", "v1", 10, "e1", True, 300.0, {"w_late": 2.0}),
        ShardControl("*", "v2", 20, "e2"),
    ):
        assert ShardControl.from_json(control.to_json()) == control
