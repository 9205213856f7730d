"""The event-time simulator around `decide()` on the small instance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.decisions import Assignment, Decisions, Explanation, Reposition, Stop
from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, Policy
from dispatch.snapshot import Snapshot
from simulators.mdrp.checker import check_solution
from simulators.mdrp.instance import MdrpInstance, load_instance
from simulators.mdrp.simulator import MdrpSimulator, SimulationResult

from .tiny import FILES as TINY_FILES


def _job(courier_id: str, restaurant_id: str, order_id: str) -> Assignment:
    """A scripted new job: `courier_id` takes `order_id` at `restaurant_id`."""
    explain = Explanation((), 0.0, None, None, "test")
    stop = Stop("pickup", (order_id,), (0.0, 0.0), 0, 0, 0)
    return Assignment(
        "x", courier_id, restaurant_id, (order_id,), (order_id,), False, 0, (stop,), 0.0, explain
    )


@pytest.fixture(scope="module")
def default_run(small: MdrpInstance) -> SimulationResult:
    """One full run of the default policy on the small instance."""
    return MdrpSimulator(small, DEFAULT_POLICY).run()


def test_default_policy_solution_is_valid(
    small: MdrpInstance, default_run: SimulationResult
) -> None:
    """Our policy's solution passes the checker and no decision was rejected."""
    assert check_solution(small, default_run.solution).violations == ()
    assert sum(default_run.rejected.values()) == 0


def test_greedy_solution_is_valid(small: MdrpInstance) -> None:
    """The greedy baseline's solution passes the checker too."""
    result = MdrpSimulator(small, GREEDY_POLICY).run(stop_min=400)
    assert check_solution(small, result.solution).violations == ()


def test_no_order_beats_its_direct_minimum(
    small: MdrpInstance, default_run: SimulationResult
) -> None:
    """Every delivery takes at least prep + 2 + travel + 2 minutes after placement."""
    for o in default_run.solution.orders:
        i = small.order_index[o.order]
        r = small.order_restaurant[i]
        travel = int(small.travel_min(small.restaurant_xy[r], small.order_xy[i]))
        assert (
            o.dropoff_min - o.placement_min
            >= small.ready_min[i] - small.placement_min[i] + travel + 4
        )
        assert o.pickup_min >= o.ready_min


def test_same_instance_same_solution(small: MdrpInstance) -> None:
    """Replaying is deterministic."""
    first = MdrpSimulator(small, DEFAULT_POLICY).run(stop_min=400).solution
    assert MdrpSimulator(small, DEFAULT_POLICY).run(stop_min=400).solution == first


def test_decisions_breaking_the_rules_are_rejected(small: MdrpInstance) -> None:
    """An assignment whose pickup would be after the courier's off time is rejected and counted."""
    off = {c: int(t) for c, t in zip(small.courier_id, small.off_min, strict=True)}

    def bad(snapshot: Snapshot, policy: Policy) -> Decisions:
        d = decide(snapshot, policy)
        now_min = snapshot.now_ts_ms // 60_000
        open_ids = [
            o
            for o, c in zip(snapshot.orders.order_id, snapshot.orders.courier_index, strict=True)
            if c < 0
        ]
        ending = [c for c in snapshot.couriers.courier_id if off[c] == now_min]
        if not open_ids or not ending:
            return d
        late = _job(ending[0], "r", open_ids[0])
        taken = {a.courier_id for a in d.assignments}
        if ending[0] in taken or any(open_ids[0] in a.order_ids for a in d.assignments):
            return d
        return Decisions(
            d.now_ts_ms, d.policy_name, (late, *d.assignments), d.repositions, d.held_order_ids
        )

    result = MdrpSimulator(small, DEFAULT_POLICY, decide_fn=bad).run(stop_min=400)
    assert result.rejected["pickup after off time"] > 0
    assert check_solution(small, result.solution).violations == ()


def test_stopping_early_leaves_later_orders_undelivered(small: MdrpInstance) -> None:
    """Orders placed after the stop time are not delivered; the partial solution is valid."""
    result = MdrpSimulator(small, DEFAULT_POLICY).run(stop_min=200)
    delivered = {o.order for o in result.solution.orders}
    late = {o for o, t in zip(small.order_id, small.placement_min, strict=True) if t > 200}
    assert late and not (late & delivered)
    assert check_solution(small, result.solution).violations == ()


def test_bad_simulator_settings_fail_fast(small: MdrpInstance) -> None:
    """A non-positive tick is a ValueError."""
    with pytest.raises(ValueError):
        MdrpSimulator(small, DEFAULT_POLICY, tick_min=0)


def test_snapshot_times_are_minutes_in_milliseconds(small: MdrpInstance) -> None:
    """The simulator hands decide() epoch-ms times that are whole minutes."""
    seen: list[Snapshot] = []

    def spy(snapshot: Snapshot, policy: Policy) -> Decisions:
        if len(seen) < 50:
            seen.append(snapshot)
        return decide(snapshot, policy)

    MdrpSimulator(small, DEFAULT_POLICY, decide_fn=spy).run(stop_min=120)
    for s in seen:
        assert s.now_ts_ms % 60_000 == 0
        assert (np.asarray(s.orders.ready_ts_ms) % 60_000 == 0).all()


def _placed_minutes(snapshots: list[Snapshot]) -> list[tuple[int, int]]:
    """(now, placement) minute pairs of every open order in `snapshots`."""
    return [
        (s.now_ts_ms // 60_000, int(t) // 60_000)
        for s in snapshots
        for t, c in zip(s.orders.placed_ts_ms, s.orders.courier_index, strict=True)
        if c < 0
    ]


def _spied_snapshots(small: MdrpInstance, foresight_min: int) -> list[Snapshot]:
    seen: list[Snapshot] = []

    def spy(snapshot: Snapshot, policy: Policy) -> Decisions:
        seen.append(snapshot)
        return decide(snapshot, policy)

    MdrpSimulator(small, DEFAULT_POLICY, decide_fn=spy, foresight_min=foresight_min).run(
        stop_min=300
    )
    return seen


def test_snapshots_show_only_placed_orders_by_default(small: MdrpInstance) -> None:
    """Under the benchmark's rules decide() never sees an order before it is placed."""
    pairs = _placed_minutes(_spied_snapshots(small, 0))
    assert pairs and all(placed <= now for now, placed in pairs)


def test_foresight_shows_orders_up_to_its_window_early(small: MdrpInstance) -> None:
    """With foresight N, decide() also sees orders placed within the next N minutes, no later."""
    pairs = _placed_minutes(_spied_snapshots(small, 10))
    assert any(placed > now for now, placed in pairs)
    assert all(placed <= now + 10 for now, placed in pairs)


def test_foresight_assigns_nothing_before_placement(small: MdrpInstance) -> None:
    """Jobs decide() plans for unplaced orders never become assignments; the solution is valid."""
    unplaced_jobs = 0

    def counting(snapshot: Snapshot, policy: Policy) -> Decisions:
        nonlocal unplaced_jobs
        d = decide(snapshot, policy)
        now_min = snapshot.now_ts_ms // 60_000
        unplaced_jobs += sum(
            any(small.placement_min[small.order_index[o]] > now_min for o in a.order_ids)
            for a in d.assignments
        )
        return d

    result = MdrpSimulator(small, DEFAULT_POLICY, decide_fn=counting, foresight_min=10).run()
    assert unplaced_jobs > 0
    for record in result.solution.assignments:
        placed = max(int(small.placement_min[small.order_index[o]]) for o in record.orders)
        assert record.assignment_min >= placed
    assert check_solution(small, result.solution).violations == ()
    assert sum(result.rejected.values()) == 0


def test_foresight_job_for_an_unplaced_order_moves_its_idle_courier(small: MdrpInstance) -> None:
    """A job for an order not placed yet sends its idle courier to the order's restaurant."""
    sent: list[tuple[str, int, str]] = []

    def early(snapshot: Snapshot, policy: Policy) -> Decisions:
        now_min = snapshot.now_ts_ms // 60_000
        couriers = snapshot.couriers
        idle = [
            cid
            for cid, free, start in zip(
                couriers.courier_id, couriers.free_ts_ms, couriers.shift_start_ts_ms, strict=True
            )
            if free <= snapshot.now_ts_ms and start <= snapshot.now_ts_ms
        ]
        future = [
            o
            for o, t in zip(snapshot.orders.order_id, snapshot.orders.placed_ts_ms, strict=True)
            if t > snapshot.now_ts_ms
        ]
        if sent or not idle or not future:
            return Decisions(snapshot.now_ts_ms, policy.name, (), (), ())
        restaurant = small.restaurant_id[small.order_restaurant[small.order_index[future[0]]]]
        sent.append((idle[0], now_min, restaurant))
        job = _job(idle[0], restaurant, future[0])
        return Decisions(snapshot.now_ts_ms, policy.name, (job,), (), ())

    result = MdrpSimulator(small, DEFAULT_POLICY, decide_fn=early, foresight_min=10).run(
        stop_min=120
    )
    assert len(sent) == 1
    courier, now_min, restaurant = sent[0]
    moves = [m for m in result.solution.moves if m.courier == courier]
    assert moves[0].departure_min == now_min and moves[0].destination == restaurant
    assert result.solution.assignments == ()


def test_negative_foresight_fails_fast(small: MdrpInstance) -> None:
    """A negative foresight is a ValueError."""
    with pytest.raises(ValueError):
        MdrpSimulator(small, DEFAULT_POLICY, foresight_min=-1)


#: One restaurant r1 at (0, 0) and r2 at (0, 800); courier c1 at (1000, 0), 10 min from r1.
#: o1 (r1, ready 2) is placed at 0; o2 (r1, ready 5) and o3 (r2, ready 4) at 3.
FAR_COURIER = {
    "orders.txt": "order\tx\ty\tplacement_time\trestaurant\tready_time\n"
    "o1\t0\t500\t0\tr1\t2\no2\t0\t-500\t3\tr1\t5\no3\t500\t800\t3\tr2\t4\n",
    "restaurants.txt": "restaurant\tx\ty\nr1\t0\t0\nr2\t0\t800\n",
    "couriers.txt": "courier\tx\ty\ton_time\toff_time\nc1\t1000\t0\t0\t120\n",
    "instance_parameters.txt": TINY_FILES["instance_parameters.txt"],
}


def _o1_to_c1_at_once(snapshot: Snapshot, policy: Policy) -> Decisions:
    """Assign o1 to c1 at minute 0, and nothing else ever."""
    if snapshot.now_ts_ms != 0:
        return Decisions(snapshot.now_ts_ms, policy.name, (), (), ())
    return Decisions(0, policy.name, (_job("c1", "r1", "o1"),), (), ())


def test_earliest_pickup_counts_from_where_routes_end_or_joins_a_pending_pickup(
    tmp_path: Path,
) -> None:
    """Each courier counts from the end of its route, or joins its pending pickup.

    Worked by hand: o1 12 (c1 drives 10 min, then half the service); o2 12 (joins c1's
    pending pickup at r1); o3 28 (after o1's drop-off: leave r1 14, drop at 21, leave 23,
    3 min to r2, arrive 26, pick up 28).
    """
    for name, text in FAR_COURIER.items():
        (tmp_path / name).write_text(text)
    instance = load_instance(tmp_path)
    result = MdrpSimulator(instance, DEFAULT_POLICY, decide_fn=_o1_to_c1_at_once).run()
    assert result.earliest_pickup_min.tolist() == [12, 12, 28]


def test_no_order_is_picked_up_before_its_earliest_pickup_at_placement(
    small: MdrpInstance, default_run: SimulationResult
) -> None:
    """The earliest pickup at placement is a lower bound: ready <= earliest <= actual pickup."""
    earliest = default_run.earliest_pickup_min
    for o in default_run.solution.orders:
        assert o.ready_min <= earliest[small.order_index[o.order]] <= o.pickup_min


def test_orders_not_placed_in_the_run_have_no_earliest_pickup(small: MdrpInstance) -> None:
    """Stopping early leaves -1 for orders placed after the stop, and a value for the rest."""
    result = MdrpSimulator(small, DEFAULT_POLICY).run(stop_min=200)
    placed = small.placement_min <= 200
    assert (result.earliest_pickup_min[~placed] == -1).all()
    assert (result.earliest_pickup_min[placed] >= small.ready_min[placed]).all()


def test_a_courier_waiting_at_the_restaurant_can_hand_over_at_ready_time(tmp_path: Path) -> None:
    """A courier already at the restaurant has served half the pickup while it waited.

    c1 is moved to r1 at minute 0 (arrives at 10); o1 at r1, placed and ready at 20, has its
    earliest pickup at 20, and the assignment made at 20 picks it up then.
    """
    files = dict(FAR_COURIER)
    files["orders.txt"] = (
        "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t500\t20\tr1\t20\n"
    )
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    instance = load_instance(tmp_path)

    def move_then_assign(snapshot: Snapshot, policy: Policy) -> Decisions:
        now = snapshot.now_ts_ms
        if now == 0:
            move = Reposition("m", "c1", "r1", (0.0, 0.0), 0, 600_000, "test")
            return Decisions(now, policy.name, (), (move,), ())
        if now == 20 * 60_000:
            return Decisions(now, policy.name, (_job("c1", "r1", "o1"),), (), ())
        return Decisions(now, policy.name, (), (), ())

    result = MdrpSimulator(instance, DEFAULT_POLICY, decide_fn=move_then_assign).run()
    assert result.earliest_pickup_min.tolist() == [20]
    assert [o.pickup_min for o in result.solution.orders] == [20]
