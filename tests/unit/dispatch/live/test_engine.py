"""The live shard engine, one scenario per property, through a real courier directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.rejections import RejectReason
from contracts.validation import validate_schema
from dispatch.live.engine import ShardEngine
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import StraightLinePredictor
from dispatch.live.records import DecisionStatus, Phase
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


# ---------------------------------------------------------------------- proposals
def test_a_created_order_is_open(world: World) -> None:
    """`order_created` stores an open order without any decision; it only announces an ETA."""
    effects = world.create("o1", T0)
    assert [o.topic for o in effects.outputs] == ["eta_updates"] and effects.rejections == []
    dispatch = world.order("o1").dispatch
    assert (dispatch.phase, dispatch.decision_id) == (Phase.OPEN, None)


def test_a_tick_offers_a_ready_order_to_an_idle_courier_nearby(world: World) -> None:
    """A tick with a ready order and an idle courier near it proposes the order to that courier."""
    proposal = offered(world)
    assert (proposal["order_ids"], proposal["courier_id"]) == (["o1"], "c1")
    assert proposal["shard"] == SHARD and proposal["ts_ms"] == T0 + 2 * S


def test_a_proposal_is_leased_until_now_plus_lease_s(world: World) -> None:
    """The lease expires `lease_s` after the tick that proposed."""
    proposal = offered(world)
    lease_ms = int(world.engine.config.lease_s * 1000)
    assert proposal["lease_expires_ts_ms"] == proposal["ts_ms"] + lease_ms


def test_a_proposal_routes_pickup_then_dropoff_at_planned_times(world: World) -> None:
    """The route goes merchant then customer, at the order's points, no earlier than the tick."""
    proposal = offered(world)
    order = world.order("o1")
    route = proposal["route"]
    assert [(s["kind"], s["order_id"]) for s in route] == [("pickup", "o1"), ("dropoff", "o1")]
    assert (route[0]["lat"], route[0]["lon"]) == (order.pickup_lat, order.pickup_lon)
    assert (route[1]["lat"], route[1]["lon"]) == (order.dropoff_lat, order.dropoff_lon)
    times = [s["planned_ts_ms"] for s in route]
    assert proposal["ts_ms"] < times[0] < times[1]


def test_a_proposal_carries_p50_and_p90_dropoff_etas(world: World) -> None:
    """Each offered order has 0 <= p50 <= p90, and p50 is the planned drop-off time from now."""
    proposal = offered(world)
    eta = proposal["etas"]["o1"]
    assert 0 <= eta["p50_s"] <= eta["p90_s"]
    dropoff_ts_ms = proposal["route"][1]["planned_ts_ms"]
    assert abs(proposal["ts_ms"] + eta["p50_s"] * 1000 - dropoff_ts_ms) <= 100


def test_proposal_cost_terms_sum_to_the_cost(world: World) -> None:
    """The explanation's terms add up to the proposal's cost (each is rounded to 4 places)."""
    world.online("c2", T0, at=offset(900.0, 500.0))
    proposal = offered(world)
    terms = proposal["explanation"]["terms"]
    assert terms and sum(terms.values()) == pytest.approx(proposal["cost"], abs=1e-3)


def test_a_proposal_explains_its_reason_and_names_each_term_with_its_unit(world: World) -> None:
    """The published explanation carries the reason; every cost term's name ends in `_min`."""
    proposal = offered(world)
    explanation = validate_schema(proposal)["explanation"]
    assert explanation["reason"]
    assert explanation["terms"] and all(name.endswith("_min") for name in explanation["terms"])


def test_a_proposal_names_the_next_best_courier(world: World) -> None:
    """With two couriers the nearer one is offered the job and the other is the runner-up."""
    world.online("c2", T0, at=offset(1_500.0, 900.0))
    proposal = offered(world)
    explanation = proposal["explanation"]
    assert proposal["courier_id"] == "c1"
    assert explanation["runner_up_courier_id"] == "c2"
    assert explanation["runner_up_cost"] >= proposal["cost"]


def test_a_proposal_is_stamped_with_versions_and_shard_generation(tmp_path: Path) -> None:
    """Policy and model versions and the engine's shard generation are on the proposal."""
    predictor = StraightLinePredictor(version="line-7")
    with World(root=tmp_path, predictor=predictor) as w:
        w.engine.reset(4)
        proposal = offered(w)
    assert proposal["policy_version"] == w.engine.config.policy.name
    assert proposal["model_version"] == "line-7"
    assert proposal["shard_generation"] == 4


def test_the_offered_order_and_courier_are_leased(world: World) -> None:
    """After a proposal the order is proposed under it and the courier holds its lease."""
    proposal = offered(world)
    decision_id = proposal["decision_id"]
    order, courier = world.order("o1"), world.courier("c1")
    assert (order.dispatch.phase, order.dispatch.decision_id) == (Phase.PROPOSED, decision_id)
    assert courier.lease_decision_id == decision_id
    assert world.decision(decision_id).status is DecisionStatus.PROPOSED


def test_a_leased_order_is_not_offered_again(world: World) -> None:
    """A later tick does not offer the leased order, even with another idle courier at hand."""
    offered(world)
    world.online("c2", T0 + 3 * S, at=offset(100.0, 0.0))
    assert of_type(world.tick(T0 + 4 * S), "assignment_proposed") == []


def test_a_leased_courier_is_not_offered_another_order(world: World) -> None:
    """A courier with an open offer gets no second offer, even with a new ready order nearby."""
    offered(world)
    world.create("o2", T0 + 3 * S, pickup=offset(50.0, 50.0), merchant_id="m2")
    assert of_type(world.tick(T0 + 4 * S), "assignment_proposed") == []


def test_a_courier_without_a_fresh_position_is_not_offered_work(world: World) -> None:
    """An idle courier whose last fix is older than `position_max_age_s` gets no offer."""
    world.online("c1", T0)
    stale_ms = int(world.engine.config.position_max_age_s * 1000) + S
    world.create("o1", T0 + stale_ms)
    assert of_type(world.tick(T0 + stale_ms + S), "assignment_proposed") == []


def test_an_offline_courier_is_not_offered_work(world: World) -> None:
    """A courier who went offline gets no offer."""
    world.online("c1", T0)
    world.offline("c1", T0 + S)
    world.create("o1", T0 + 2 * S)
    assert of_type(world.tick(T0 + 3 * S), "assignment_proposed") == []


def test_an_order_whose_food_is_far_from_ready_is_held_until_ready(world: World) -> None:
    """Just in time: an order ready in 50 min is not offered; once `order_ready` arrives it is."""
    world.online("c1", T0)
    world.create("o1", T0 + S, prep_s=3_000.0)
    assert of_type(world.tick(T0 + 2 * S), "assignment_proposed") == []
    ready = world.event("order_ready", T0 + 3 * S, order_id="o1", merchant_id="m1", shard=SHARD)
    world.order_event("merchant_ready", ready)
    assert offer(world, T0 + 4 * S)["order_ids"] == ["o1"]


# ---------------------------------------------------------------------- order events
def test_an_event_before_its_order_is_applied_when_the_order_is_created(world: World) -> None:
    """An `order_ready` consumed before `order_created` is parked, then applied, not rejected."""
    ready = world.event("order_ready", T0, order_id="o1", merchant_id="m1", shard=SHARD)
    parked = world.order_event("merchant_ready", ready)
    assert parked.rejections == [] and world.stores.orders.get("o1") is None
    created = world.create("o1", T0 + S)
    assert created.rejections == []
    assert world.order("o1").status.value == "ready"


def test_the_creating_event_reports_the_parked_events_it_adopted(world: World) -> None:
    """Creating the order reports each parked event accepted with it, for the feature feed."""
    ready = world.event("order_ready", T0, order_id="o1", merchant_id="m1", shard=SHARD)
    assert world.order_event("merchant_ready", ready).adopted == []
    created = world.create("o1", T0 + S)
    assert [event["event_id"] for event in created.adopted] == [ready["event_id"]]


def test_an_event_for_an_order_never_created_is_dead_lettered_after_the_ttl(
    tmp_path: Path,
) -> None:
    """A parked event whose order never appears is rejected as unknown_id once the TTL passed."""
    with World(root=tmp_path, config=EngineConfig(orphan_ttl_s=60.0)) as w:
        ghost = w.event("order_ready", T0, order_id="ghost", merchant_id="m1", shard=SHARD)
        assert w.order_event("merchant_ready", ghost).rejections == []
        w.create("o1", T0 + 100 * S)
        ready = w.event("order_ready", T0 + 100 * S, order_id="o1", merchant_id="m1", shard=SHARD)
        effects = w.order_event("merchant_ready", ready)
        assert [(source.topic, error.reason) for source, error in effects.rejections] == [
            ("merchant_ready", RejectReason.UNKNOWN_ID)
        ]


def test_a_redelivered_creation_record_changes_nothing(world: World) -> None:
    """The very `order_created` record consumed again is skipped without a dead letter."""
    world.create("o1", T0)
    event = world.log[-1]
    source = world.order("o1").created_source
    assert source is not None
    assert world.order_event("order_events", event, source).rejections == []


def test_only_a_first_valid_order_event_counts_as_applied(world: World) -> None:
    """`applied` is set for a new valid event, not for its redelivery nor for a duplicate id."""
    assert world.create("o1", T0).applied
    event = created_event(world)
    source = world.order("o1").created_source
    assert source is not None
    assert not world.order_event("order_events", event, source).applied
    assert not world.order_event("order_events", event).applied


def test_the_same_creation_in_another_record_is_a_duplicate(world: World) -> None:
    """The same `order_created` event id in a new record is dead-lettered as a duplicate."""
    world.create("o1", T0)
    effects = world.order_event("order_events", created_event(world))
    assert [error.reason for _, error in effects.rejections] == [RejectReason.DUPLICATE_EVENT]


def created_event(world: World) -> dict[str, Any]:
    """The last `order_created` the world sent."""
    return next(e for e in reversed(world.log) if e["type"] == "order_created")


# ---------------------------------------------------------------------- accept
def test_accept_commits_the_proposal(world: World) -> None:
    """An accept in time emits `assignment_committed` for the proposal's orders, courier, route."""
    proposal = offered(world)
    effects = world.respond(proposal["decision_id"], "c1", T0 + 3 * S)
    [commit] = of_type(effects, "assignment_committed")
    for name in ("decision_id", "order_ids", "courier_id", "route", "shard_generation"):
        assert commit[name] == proposal[name], name
    assert (commit["policy_version"], commit["model_version"]) == (
        proposal["policy_version"],
        proposal["model_version"],
    )


def test_accept_moves_the_order_to_committed_and_the_route_to_the_courier(world: World) -> None:
    """After the commit the order is committed, the courier's lease is gone and it has the route."""
    proposal = committed(world)
    courier = world.courier("c1")
    assert world.order("o1").dispatch.phase is Phase.COMMITTED
    assert courier.lease_decision_id is None
    assert [(s.kind, s.order_ids) for s in courier.route] == [
        ("pickup", ("o1",)),
        ("dropoff", ("o1",)),
    ]
    assert world.decision(proposal["decision_id"]).status is DecisionStatus.COMMITTED


def test_the_same_response_record_again_announces_the_same_commit_again(world: World) -> None:
    """The very accept record, read again, re-sends its identical `assignment_committed`.

    Same event id, orders, stops, time and trace; nothing is decided again and the answer
    counts as stale.
    """
    proposal = offered(world)
    event = world.response(proposal["decision_id"], "c1", T0 + 3 * S)
    source = world.source("assignment_responses", event)
    first = world.handle_response(event, source)
    stored = world.decision(proposal["decision_id"])
    again = world.handle_response(event, source)
    sent = [o for o in first.outputs if o.topic == "assignment_committed"]
    assert [(o.key, o.value, o.traceparent) for o in again.outputs] == [
        (o.key, o.value, o.traceparent) for o in sent
    ]
    assert again.rejections == [] and not again.applied
    assert world.decision(proposal["decision_id"]) == stored
    assert world.telemetry.counts["stale_responses"] == 1


def test_an_accept_read_again_after_a_release_announces_the_first_commit(world: World) -> None:
    """The copy is the record first sent, even after the decision was released since."""
    proposal = offered(world)
    event = world.response(proposal["decision_id"], "c1", T0 + 3 * S)
    source = world.source("assignment_responses", event)
    first = of_type(world.handle_response(event, source), "assignment_committed")
    world.offline("c1", T0 + 9 * S)  # releases what c1 held, later in event time
    assert of_type(world.handle_response(event, source), "assignment_committed") == first


def test_a_redelivered_decline_sends_nothing(world: World) -> None:
    """Only the answer that committed is announced again; a declining one, read again, is stale."""
    proposal = offered(world)
    event = world.response(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    source = world.source("assignment_responses", event)
    world.handle_response(event, source)
    assert world.handle_response(event, source).outputs == []


def test_only_a_first_recorded_response_counts_as_applied(world: World) -> None:
    """`applied` is set for an answer the proposal records, not for its redelivery."""
    proposal = offered(world)
    event = world.response(proposal["decision_id"], "c1", T0 + 3 * S)
    source = world.source("assignment_responses", event)
    assert world.handle_response(event, source).applied
    assert not world.handle_response(event, source).applied


def test_a_response_for_an_unknown_decision_is_not_applied(world: World) -> None:
    """A dead-lettered answer (no such decision) does not count as applied."""
    effects = world.respond("no-such-decision", "c1", T0 + 3 * S)
    assert effects.rejections and not effects.applied


def test_a_duplicate_accept_event_makes_no_second_commit(world: World) -> None:
    """A second accept (a new event) for a committed proposal changes nothing and is stale."""
    proposal = committed(world)
    again = world.respond(proposal["decision_id"], "c1", T0 + 4 * S)
    assert again.outputs == [] and again.rejections == []
    assert len(world.emitted("assignment_committed")) == 1
    assert world.telemetry.counts["stale_responses"] == 1


def test_a_replayed_accept_after_a_restart_announces_its_commit_again(world: World) -> None:
    """An engine restarted over the same tables re-sends an accept's commit, changing nothing."""
    proposal = offered(world)
    event = world.response(proposal["decision_id"], "c1", T0 + 3 * S)
    world.handle_response(event)
    courier = world.courier("c1")
    world.engine = ShardEngine(world.stores, world.positions, telemetry=world.telemetry)
    again = of_type(world.handle_response(event), "assignment_committed")
    assert again == world.emitted("assignment_committed")[:1]
    assert world.courier("c1") == courier


# ---------------------------------------------------------------------- decline, lease expiry
def test_decline_releases_the_order_with_reason_declined(world: World) -> None:
    """A decline emits `assignment_released` (declined) and the order is open again."""
    proposal = offered(world)
    effects = world.respond(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    assert released(effects) == [(["o1"], "declined")]
    assert world.order("o1").dispatch.phase is Phase.OPEN
    assert world.courier("c1").lease_decision_id is None
    assert world.emitted("assignment_committed") == []


def test_a_declined_pair_waits_for_the_cool_down(world: World) -> None:
    """The decliner is not offered the order during the cool-down, and is offered it after."""
    proposal = offered(world)
    world.respond(proposal["decision_id"], "c1", T0 + 3 * S, "decline")
    cooldown_ms = int(world.engine.config.cooldown_s * 1000)
    at = offset(200.0, 0.0)
    for ts_ms in range(T0 + 4 * S, T0 + 3 * S + cooldown_ms, 60 * S):
        world.ping("c1", ts_ms, *at)
        assert of_type(world.tick(ts_ms), "assignment_proposed") == [], ts_ms
    after_ms = T0 + 4 * S + cooldown_ms
    world.ping("c1", after_ms, *at)
    assert offer(world, after_ms)["courier_id"] == "c1"


def test_a_tick_before_lease_expiry_keeps_the_offer(world: World) -> None:
    """A tick before the lease expires releases nothing."""
    proposal = offered(world)
    effects = world.tick(proposal["lease_expires_ts_ms"] - 1)
    assert released(effects) == []
    assert world.order("o1").dispatch.phase is Phase.PROPOSED


def test_an_unanswered_offer_is_released_at_lease_expiry(world: World) -> None:
    """The first tick at or after the lease's expiry releases it (lease_expired)."""
    proposal = offered(world)
    effects = world.tick(proposal["lease_expires_ts_ms"])
    assert released(effects) == [(["o1"], "lease_expired")]
    assert world.courier("c1").lease_decision_id is None
    assert world.decision(proposal["decision_id"]).status is DecisionStatus.RELEASED


def test_an_expired_lease_cools_the_pair_down(world: World) -> None:
    """After a lease expiry the same courier is not offered the order again at once."""
    proposal = offered(world)
    world.tick(proposal["lease_expires_ts_ms"])
    world.ping("c1", proposal["lease_expires_ts_ms"] + S, *offset(200.0, 0.0))
    assert of_type(world.tick(proposal["lease_expires_ts_ms"] + S), "assignment_proposed") == []


def test_a_late_accept_commits_nothing(world: World) -> None:
    """An accept stamped after the lease expired releases the offer instead of committing it."""
    proposal = offered(world)
    effects = world.respond(proposal["decision_id"], "c1", proposal["lease_expires_ts_ms"] + S)
    assert of_type(effects, "assignment_committed") == []
    assert released(effects) == [(["o1"], "lease_expired")]


def test_an_accept_after_the_lease_was_released_is_stale(world: World) -> None:
    """An accept arriving after a tick released the lease changes nothing and is counted stale."""
    proposal = offered(world)
    world.tick(proposal["lease_expires_ts_ms"])
    effects = world.respond(proposal["decision_id"], "c1", proposal["lease_expires_ts_ms"] - S)
    assert effects.outputs == []
    assert world.emitted("assignment_committed") == []
    assert world.telemetry.counts["stale_responses"] == 1


# ---------------------------------------------------------------------- generations
def test_an_accept_for_an_older_shard_generation_is_released_as_shard_moved(world: World) -> None:
    """After a rebalance (new generation) an accept of an old proposal never commits."""
    proposal = offered(world)
    world.engine.reset(1)
    effects = world.respond(proposal["decision_id"], "c1", T0 + 3 * S)
    assert of_type(effects, "assignment_committed") == []
    assert released(effects) == [(["o1"], "shard_moved")]


def test_after_a_rebalance_new_offers_carry_the_new_generation(world: World) -> None:
    """Once the old offer is released, the next tick re-offers the order under the new one."""
    proposal = offered(world)
    world.engine.reset(1)
    world.respond(proposal["decision_id"], "c1", T0 + 3 * S)
    again = offer(world, T0 + 4 * S)
    assert (again["order_ids"], again["shard_generation"]) == (["o1"], 1)


def test_a_restarted_engine_expires_the_leases_of_its_predecessor(world: World) -> None:
    """A new engine over the same tables rebuilds its indices and expires old leases."""
    proposal = offered(world)
    world.engine = ShardEngine(world.stores, world.positions, telemetry=world.telemetry)
    effects = world.tick(proposal["lease_expires_ts_ms"])
    assert released(effects) == [(["o1"], "lease_expired")]


# ---------------------------------------------------------------------- bad responses
def test_a_response_to_an_unknown_decision_is_dead_lettered(world: World) -> None:
    """A response naming no stored decision is rejected as unknown_id."""
    world.online("c1", T0)
    effects = world.respond("no-such-decision", "c1", T0 + S)
    assert [error.reason for _, error in effects.rejections] == [RejectReason.UNKNOWN_ID]
    assert effects.outputs == []


def test_an_accept_naming_another_shard_is_wrong_shard_and_commits_nothing(world: World) -> None:
    """An accept of a real offer naming another shard (same partition) is refused, uncommitted."""
    proposal = offered(world)
    answer = {**world.response(proposal["decision_id"], "c1", T0 + 3 * S), "shard": "9q8y"}
    effects = world.handle_response(answer)
    assert [error.reason for _, error in effects.rejections] == [RejectReason.WRONG_SHARD]
    assert effects.outputs == []
    assert world.decision(proposal["decision_id"]).status is DecisionStatus.PROPOSED


def test_a_response_by_another_courier_is_dead_lettered_and_changes_nothing(world: World) -> None:
    """An accept by a courier the offer was not made to is rejected; the offer stays open."""
    proposal = offered(world)
    world.online("c2", T0 + 2 * S)
    effects = world.respond(proposal["decision_id"], "c2", T0 + 3 * S)
    assert [error.reason for _, error in effects.rejections] == [RejectReason.INVALID_TRANSITION]
    assert effects.outputs == []
    assert world.decision(proposal["decision_id"]).status is DecisionStatus.PROPOSED
    assert of_type(world.respond(proposal["decision_id"], "c1", T0 + 4 * S), "assignment_committed")


# ---------------------------------------------------------------------- cancellation, offline
def test_cancelling_a_proposed_order_releases_the_offer(world: World) -> None:
    """A cancellation of an offered order releases it (order_cancelled) and frees the courier."""
    proposal = offered(world)
    effects = world.cancel("o1", T0 + 3 * S)
    assert released(effects) == [(["o1"], "order_cancelled")]
    assert world.courier("c1").lease_decision_id is None
    assert world.order("o1").dispatch.phase is Phase.DONE
    assert world.respond(proposal["decision_id"], "c1", T0 + 4 * S).outputs == []


def test_cancelling_a_committed_order_releases_it_and_frees_capacity(world: World) -> None:
    """A committed order not picked up is released on cancellation and leaves the route."""
    committed(world)
    effects = world.cancel("o1", T0 + 4 * S)
    assert released(effects) == [(["o1"], "order_cancelled")]
    courier = world.courier("c1")
    assert courier.route == () and courier.spare_capacity == courier.capacity


def test_a_cancellation_after_pickup_is_rejected_and_releases_nothing(world: World) -> None:
    """Once picked up an order cannot be cancelled: the event is dead-lettered, nothing released."""
    committed(world)
    world.picked_up("o1", "c1", T0 + 60 * S)
    effects = world.cancel("o1", T0 + 61 * S)
    assert [error.reason for _, error in effects.rejections] == [RejectReason.INVALID_TRANSITION]
    assert released(effects) == []
    assert world.courier("c1").onboard == ("o1",)


def test_a_courier_going_offline_releases_its_open_offer(world: World) -> None:
    """`courier_offline` releases the courier's open proposal (courier_offline)."""
    offered(world)
    effects = world.offline("c1", T0 + 3 * S)
    assert released(effects) == [(["o1"], "courier_offline")]
    assert world.order("o1").dispatch.phase is Phase.OPEN


def test_a_courier_going_offline_keeps_orders_on_board_and_releases_the_rest(
    world: World,
) -> None:
    """Offline mid-route: orders not picked up are released, the one on board stays with it."""
    committed(world)  # o1
    world.create("o2", T0 + 4 * S, dropoff=offset(900.0, 1_200.0))
    extension = offer(world, T0 + 5 * S)
    assert extension["order_ids"] == ["o2"]
    world.respond(extension["decision_id"], "c1", T0 + 6 * S)
    world.picked_up("o1", "c1", T0 + 100 * S)
    effects = world.offline("c1", T0 + 101 * S)
    assert released(effects) == [(["o2"], "courier_offline")]
    courier = world.courier("c1")
    assert courier.onboard == ("o1",)
    assert {o for stop in courier.route for o in stop.order_ids} == {"o1"}
    assert world.order("o2").dispatch.phase is Phase.OPEN


# ---------------------------------------------------------------------- pickup, delivery
def test_pickup_moves_the_courier_past_the_merchant(world: World) -> None:
    """After pickup the merchant stop is gone and the order is on board (still counted in load)."""
    committed(world)
    world.picked_up("o1", "c1", T0 + 60 * S)
    courier = world.courier("c1")
    assert [(s.kind, s.order_ids) for s in courier.route] == [("dropoff", ("o1",))]
    assert courier.onboard == ("o1",) and courier.load == 1


def test_a_late_pickup_shifts_the_rest_of_the_plan(world: World) -> None:
    """A pickup later than planned delays the planned drop-off by as much."""
    proposal = committed(world)
    planned_pickup, planned_dropoff = (s["planned_ts_ms"] for s in proposal["route"])
    late_ms = 5 * 60 * S
    world.picked_up("o1", "c1", planned_pickup + late_ms)
    [dropoff] = world.courier("c1").route
    assert dropoff.planned_ts_ms == planned_dropoff + late_ms


def test_delivery_closes_the_order_and_frees_the_courier(world: World) -> None:
    """After delivery the courier has no route, nothing on board and its full capacity."""
    committed(world)
    world.picked_up("o1", "c1", T0 + 100 * S)
    world.delivered("o1", "c1", T0 + 600 * S)
    courier = world.courier("c1")
    assert (courier.route, courier.onboard, courier.orders_done) == ((), (), 1)
    assert courier.spare_capacity == courier.capacity
    assert world.order("o1").dispatch.phase is Phase.DONE


def test_delivery_labels_the_announced_eta(world: World) -> None:
    """A delivery gives the calibrator the score realized − raw p90, and telemetry its p50 error."""
    proposal = committed(world)
    world.picked_up("o1", "c1", T0 + 100 * S)
    delivered_ts_ms = T0 + 700 * S
    world.delivered("o1", "c1", delivered_ts_ms)
    p50_s, raw_p90_s, _ = world.decision(proposal["decision_id"]).etas["o1"]
    realized_s = (delivered_ts_ms - proposal["ts_ms"]) / 1000
    assert list(world.engine.calibrator.scores) == [pytest.approx(realized_s - raw_p90_s)]
    [(error_s, _, fallback)] = world.telemetry.eta_labels
    assert error_s == pytest.approx(realized_s - p50_s) and fallback is False


def test_announced_p90_is_the_raw_p90_plus_the_calibration_margin(world: World) -> None:
    """Once the calibrator has a margin, proposals announce raw p90 + margin as their p90."""
    for _ in range(world.engine.calibrator.min_samples):
        world.engine.calibrator.observe(realized_s=1_000.0, raw_p90_s=880.0)
    proposal = offered(world)
    p50_s, raw_p90_s, _ = world.decision(proposal["decision_id"]).etas["o1"]
    assert proposal["etas"]["o1"]["p90_s"] == pytest.approx(raw_p90_s + 120.0, abs=0.05)
    assert proposal["etas"]["o1"]["p50_s"] == pytest.approx(p50_s, abs=0.05)


def test_a_freed_courier_is_offered_the_next_order(world: World) -> None:
    """A courier of capacity 1 gets a new offer once its order is delivered."""
    committed(world, capacity=1)
    world.picked_up("o1", "c1", T0 + 100 * S)
    world.delivered("o1", "c1", T0 + 600 * S)
    world.ping("c1", T0 + 600 * S, *offset(300.0, 0.0))
    world.create("o2", T0 + 601 * S)
    assert offer(world, T0 + 602 * S)["order_ids"] == ["o2"]


# ---------------------------------------------------------------------- capacity
def test_a_full_courier_is_not_offered_another_order(world: World) -> None:
    """A courier of capacity 1 holding a committed order gets no offer for a second one."""
    committed(world, capacity=1)
    world.create("o2", T0 + 4 * S, dropoff=offset(900.0, 1_200.0))
    for ts_ms in range(T0 + 5 * S, T0 + 95 * S, 2 * S):
        world.ping("c1", ts_ms, *offset(100.0, 0.0))
        assert of_type(world.tick(ts_ms), "assignment_proposed") == [], ts_ms


def test_a_courier_with_room_may_take_a_second_order_at_the_same_merchant(world: World) -> None:
    """The same situation with capacity 2 does offer the second order (the check above bites)."""
    committed(world, capacity=2)
    world.create("o2", T0 + 4 * S, dropoff=offset(900.0, 1_200.0))
    assert offer(world, T0 + 5 * S)["order_ids"] == ["o2"]


# ---------------------------------------------------------------------- expiry
def test_an_open_order_older_than_max_age_expires_exactly_once(tmp_path: Path) -> None:
    """An order left open past `max_order_age_s` gets one `order_expired` (max_age) and is done."""
    with World(root=tmp_path, config=EngineConfig(max_order_age_s=60.0)) as w:
        w.create("o1", T0)
        expired_at = [ts for ts in range(T0 + 20 * S, T0 + 300 * S, 20 * S) if w.tick(ts).outputs]
        assert expired_at == [T0 + 80 * S]  # the first tick more than 60 s after placement
        [event] = w.emitted("order_expired")
        assert (event["order_id"], event["reason"]) == ("o1", "max_age")
        dispatch = w.order("o1").dispatch
        assert (dispatch.phase, dispatch.expired_reason) == (Phase.DONE, "max_age")


def test_an_order_under_offer_or_committed_does_not_expire(tmp_path: Path) -> None:
    """Orders held by a live decision are not expired by age."""
    with World(root=tmp_path, config=EngineConfig(max_order_age_s=60.0, lease_s=600.0)) as w:
        w.online("c1", T0)
        w.online("c2", T0, at=offset(-300.0, 0.0))
        w.create("o1", T0)
        w.create("o2", T0, pickup=offset(-200.0, 0.0), merchant_id="m2")
        proposals = of_type(w.tick(T0 + S), "assignment_proposed")
        assert len(proposals) == 2
        w.respond(proposals[0]["decision_id"], proposals[0]["courier_id"], T0 + 2 * S)
        w.tick(T0 + 200 * S)
        assert w.emitted("order_expired") == []


def test_an_expired_order_is_never_offered(tmp_path: Path) -> None:
    """A courier arriving after an order expired is not offered it."""
    with World(root=tmp_path, config=EngineConfig(max_order_age_s=60.0)) as w:
        w.create("o1", T0)
        w.tick(T0 + 70 * S)
        w.online("c1", T0 + 71 * S)
        assert of_type(w.tick(T0 + 72 * S), "assignment_proposed") == []


# ---------------------------------------------------------------------- control
def test_control_flags_change_the_policy_in_force(world: World) -> None:
    """`dispatch_control` batching, detour cap and known weights replace the base policy's."""
    world.control(T0, "ops-2", batching_enabled=False, max_detour_s=300.0, weights={"w_late": 2.0})
    policy, version = world.engine.policy_for(SHARD)
    assert (policy.bundling, policy.max_detour_s, policy.w_late) == (False, 300.0, 2.0)
    assert version == f"{world.engine.config.policy.name}+ops-2"


def test_a_control_naming_an_unknown_weight_is_refused(world: World) -> None:
    """A weight that is not a policy weight makes the control a dead letter; nothing changes."""
    base, _ = world.engine.policy_for(SHARD)
    effects = world.control(T0, "ops-2", weights={"w_nonexistent": 9.0, "w_late": 2.0})
    policy, _ = world.engine.policy_for(SHARD)
    assert [e.reason for _, e in effects.rejections] == [RejectReason.SCHEMA_INVALID]
    assert policy == base


def test_the_control_version_is_stamped_on_proposals(world: World) -> None:
    """Proposals after a control event carry its version."""
    world.control(T0, "ops-2", max_detour_s=600.0)
    assert offered(world)["policy_version"] == f"{world.engine.config.policy.name}+ops-2"


def test_an_older_control_does_not_override_a_newer_one(world: World) -> None:
    """A control event older (by event time) than the stored one is ignored."""
    world.control(T0 + 10 * S, "new", batching_enabled=False)
    world.control(T0 + 5 * S, "old", batching_enabled=True)
    policy, version = world.engine.policy_for(SHARD)
    assert policy.bundling is False and version.endswith("+new")


def test_a_wildcard_control_applies_to_every_shard_beneath_shard_flags(world: World) -> None:
    """A `*` control applies to any shard; a shard's own control is applied on top of it."""
    world.control(T0, "all-1", shard="*", weights={"w_travel": 0.5, "w_late": 1.0})
    world.control(T0, "own-1", weights={"w_late": 3.0})
    policy, version = world.engine.policy_for(SHARD)
    other, other_version = world.engine.policy_for("dr5x")
    assert (policy.w_travel, policy.w_late) == (0.5, 3.0)
    assert (other.w_travel, other.w_late) == (0.5, 1.0)
    assert version.endswith("+all-1+own-1") and other_version.endswith("+all-1")


# ---------------------------------------------------------------------- shard moves
def test_a_courier_leaving_the_shard_releases_its_offer_as_shard_moved(world: World) -> None:
    """A courier seen elsewhere leaves: offer released, tombstone, handed to the new shard."""
    offered(world)
    effects = world.sighting("c1", "dr5x", T0 + 3 * S)
    assert released(effects) == [(["o1"], "shard_moved")]
    assert any(o.topic == "courier_positions" and o.key == SHARD.encode() for o in effects.outputs)
    handovers = [
        o.event
        for o in effects.outputs
        if o.topic == "courier_state_updates" and o.event["kind"] == "handover"
    ]
    assert [(h["shard"], h["from_shard"]) for h in handovers] == [("dr5x", SHARD)]
    assert world.courier("c1", "dr5x").shard == "dr5x"
