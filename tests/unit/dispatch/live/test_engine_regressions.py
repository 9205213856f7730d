"""Regression tests of shard-engine defects found in review.

Cool-downs honoured by the optimiser, control flags validated, extensions that release and
commit only what they hold, capacity re-checked at commit, ETA updates at commit and refreshed.
"""

from __future__ import annotations

from pathlib import Path

from dispatch.live.engine_config import EngineConfig
from dispatch.live.invariants import check_invariants
from tests.unit.dispatch.live.shard_driver import SEEDS, driven_run
from tests.unit.dispatch.live.shard_world import (
    SHARD,
    T0,
    S,
    World,
    committed,
    of_type,
    offer,
    offered,
    offset,
    released,
)


# Cool-downs are applied after `decide()` (in `_propose`): the core, unaware of them, keeps
# matching the order to the decliner and the engine drops that pair, so nobody gets the order
# until the cool-down ends. The same holds after a lease expiry.
def test_a_declined_order_goes_to_another_courier_on_the_next_tick(world: World) -> None:
    """After a decline the next tick offers the order to another idle courier, not the decliner."""
    world.online("c2", T0, at=offset(1_500.0, 900.0))
    proposal = offered(world)
    world.respond(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    again = of_type(world.tick(T0 + 4 * S), "assignment_proposed")
    assert [(p["order_ids"], p["courier_id"]) for p in again] == [(["o1"], "c2")]


# `on_control` stores any schema-valid flags; `Policy.replace` only rejects them at the next tick.
def test_a_control_the_policy_cannot_take_is_dead_lettered(world: World) -> None:
    """A schema-valid `dispatch_control` with a negative weight goes to the dead letters."""
    effects = world.control(T0, "bad-1", weights={"w_delay": -1.0})
    assert effects.rejections, "the control was stored without complaint"


# `policy_for` raises `PolicyError` from every later tick (and from `rank`) of the shard.
def test_a_control_the_policy_cannot_take_leaves_the_shard_dispatching(world: World) -> None:
    """After a control with a negative weight, the shard's ticks still run and offer orders."""
    world.online("c1", T0)
    world.create("o1", T0 + S)
    world.control(T0 + S, "bad-1", weights={"w_delay": -1.0})
    proposals = of_type(world.tick(T0 + 2 * S), "assignment_proposed")
    assert [p["order_ids"] for p in proposals] == [["o1"]]


# An extension's `DecisionRecord.order_ids` holds the pending orders it re-plans as well as the
# new ones; a release of the offer names them all, and its commit writes its planned stops for
# all of them into the courier's route, whatever happened to the pending orders meanwhile.
def extension(w: World) -> str:
    """o1 committed to c1 (pickup pending), then o2 offered to c1 as an extension of that pickup."""
    committed(w)
    w.create("o2", T0 + 4 * S, dropoff=offset(900.0, 1_200.0))
    proposal = offer(w, T0 + 5 * S)
    assert proposal["order_ids"] == ["o2"]
    assert w.decision(proposal["decision_id"]).updates_pending
    return str(proposal["decision_id"])


def test_a_declined_extension_releases_only_the_orders_it_offered(world: World) -> None:
    """Declining an offer of o2 releases o2; o1, committed earlier, is not named in the release."""
    decision_id = extension(world)
    effects = world.respond(decision_id, "c1", T0 + 6 * S, "decline")
    assert released(effects) == [(["o2"], "declined")]


def test_an_accepted_extension_does_not_bring_back_a_cancelled_order(world: World) -> None:
    """If o1 is cancelled while the extension is open, accepting it does not route o1 again."""
    decision_id = extension(world)
    world.cancel("o1", T0 + 6 * S)
    world.respond(decision_id, "c1", T0 + 7 * S)
    routed = {o for stop in world.courier("c1").route for o in stop.order_ids}
    assert routed == {"o2"}


def test_an_accepted_extension_does_not_bring_back_a_delivered_order(world: World) -> None:
    """If o1 is picked up and delivered while the extension is open, the accept keeps it gone."""
    decision_id = extension(world)
    world.picked_up("o1", "c1", T0 + 10 * S)
    world.delivered("o1", "c1", T0 + 20 * S)
    world.respond(decision_id, "c1", T0 + 25 * S)
    routed = {o for stop in world.courier("c1").route for o in stop.order_ids}
    assert routed == {"o2"}


# `_commit` checks that the courier is online but not that it still has room for the orders.
def test_a_commit_never_takes_a_courier_over_its_capacity(world: World) -> None:
    """An accept arriving after the courier's capacity dropped does not overfill it."""
    decision_id = extension(world)
    world.courier_event(world.event("courier_capacity", T0 + 6 * S, courier_id="c1", capacity=1))
    world.respond(decision_id, "c1", T0 + 7 * S)
    report = check_invariants(world.log)
    assert report.violations["over_capacity"] == []
    assert world.courier("c1").load <= world.courier("c1").capacity


def test_a_committed_order_gets_an_eta_update_at_commit_and_after_the_refresh_time(
    tmp_path: Path,
) -> None:
    """Tracking hears a committed order's ETA when it is committed, then again once it is stale."""
    config = EngineConfig(
        eta_update_every_ticks=1, eta_refresh_s=60.0, eta_update_min_change_s=3600.0
    )
    with World(root=tmp_path, config=config) as w:
        committed(w)
        placed = w.order("o1").placed_ts_ms
        at_commit = [
            e["order_id"] for e in w.log if e["type"] == "eta_update" and e["ts_ms"] != placed
        ]
        quiet = of_type(w.tick(T0 + 30 * S, SHARD), "eta_update")
        refreshed = of_type(w.tick(T0 + 120 * S, SHARD), "eta_update")
    assert at_commit == ["o1"]
    assert quiet == []
    assert [e["order_id"] for e in refreshed] == ["o1"]


# Releases of declined or expired extensions name committed orders; the app drops them while
# the engine keeps them committed, so they never finish.
def test_every_order_of_the_random_runs_ends_delivered_cancelled_or_expired() -> None:
    """Every order of the seeded runs (whose app trusts each release it is sent) ends finished."""
    unfinished = {
        seed: check_invariants(driven_run(seed).log, require_terminal=True).violations[
            "unfinished_order"
        ]
        for seed in SEEDS
    }
    assert {seed: found for seed, found in unfinished.items() if found} == {}


# Courier records are per shard: a courier that moves keeps its work in the old shard and is
# handed to the new one only when it holds nothing there; the new shard waits for the handover.
def test_a_busy_courier_that_moves_stays_with_its_shard_until_its_route_is_done(
    world: World,
) -> None:
    """A courier carrying an order of this shard keeps it; the handover comes after delivery."""
    proposal = committed(world)
    moved = world.sighting("c1", "dr5x", T0 + 4 * S)
    handovers = [
        o.event
        for o in moved.outputs
        if o.topic == "courier_state_updates" and o.event["kind"] == "handover"
    ]
    assert handovers == []
    assert world.courier("c1").leaving_to == "dr5x"
    assert not world.courier("c1", "dr5x").dispatchable
    world.picked_up("o1", "c1", proposal["route"][0]["planned_ts_ms"])
    done = world.delivered("o1", "c1", proposal["route"][-1]["planned_ts_ms"])
    handovers = [
        o.event
        for o in done.outputs
        if o.topic == "courier_state_updates" and o.event["kind"] == "handover"
    ]
    assert [(h["shard"], h["epoch"]) for h in handovers] == [("dr5x", 1)]
