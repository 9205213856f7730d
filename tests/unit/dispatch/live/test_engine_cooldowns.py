"""Cool-downs in live dispatch: a declined or lapsed pair is forbidden in the tick's snapshot."""

from __future__ import annotations

from dispatch.live.shard_snapshot import build_snapshot
from tests.unit.dispatch.live.shard_world import (
    SHARD,
    T0,
    S,
    World,
    of_type,
    offered,
    offset,
)

NEAR = offset(200.0, 0.0)
FAR = offset(1_500.0, 900.0)


def _forbidden_at(world: World, ts_ms: int) -> tuple[tuple[str, str], ...]:
    """The forbidden pairs of the shard's snapshot at `ts_ms` (c1 pinging near the merchant)."""
    world.ping("c1", ts_ms, *NEAR)
    engine = world.engine
    built = build_snapshot(
        engine.state, world.positions, engine.config, engine.predictor, SHARD, ts_ms
    )
    return built.snapshot.forbidden


def test_the_snapshot_forbids_the_decliner_until_its_cool_down_ends(world: World) -> None:
    """After a decline the snapshot forbids (order, decliner) until `cooldown_s` has passed."""
    proposal = offered(world)
    world.respond(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    ends_ms = T0 + 3 * S + int(world.engine.config.cooldown_s * 1000)
    assert _forbidden_at(world, T0 + 4 * S) == (("o1", "c1"),)
    assert _forbidden_at(world, ends_ms - 1) == (("o1", "c1"),)
    assert _forbidden_at(world, ends_ms) == ()


def test_the_snapshot_forbids_the_courier_whose_offer_lapsed(world: World) -> None:
    """An offer released at lease expiry forbids its pair like a decline."""
    proposal = offered(world)
    world.tick(proposal["lease_expires_ts_ms"])
    assert _forbidden_at(world, proposal["lease_expires_ts_ms"] + S) == (("o1", "c1"),)


def test_a_declined_order_goes_to_another_courier_never_back_to_the_decliner(
    world: World,
) -> None:
    """During the decliner's cool-down the order is offered once, to the other idle courier."""
    world.online("c2", T0, at=FAR)
    proposal = offered(world)
    assert proposal["courier_id"] == "c1"
    world.respond(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    cooldown_ms = int(world.engine.config.cooldown_s * 1000)
    offers = []
    for ts_ms in range(T0 + 4 * S, T0 + 3 * S + cooldown_ms, 20 * S):
        world.ping("c1", ts_ms, *NEAR)
        world.ping("c2", ts_ms, *FAR)
        offers += [
            (p["order_ids"], p["courier_id"])
            for p in of_type(world.tick(ts_ms), "assignment_proposed")
        ]
    assert offers == [(["o1"], "c2")]
