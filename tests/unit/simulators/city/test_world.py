from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

import pytest

from contracts.topics import load_topics
from contracts.validation import validate_schema
from simulators.city.config import AppConfig, CustomerConfig
from simulators.city.protocol import SimRecord
from simulators.city.scenario import CourierPlan, OrderPlan
from simulators.city.world import CityWorld, SimulationError
from tests.unit.simulators.city.conftest import Run, small_config

# ---------------------------------------------------------------------- a hand-driven world


class Driver:
    """Drives a world by hand: advances it and plays dispatcher outputs at chosen times."""

    def __init__(self, **fleet: Any) -> None:
        base = small_config()
        config = dataclasses.replace(
            base,
            app=AppConfig(accept_intercept=30.0, late_response_prob=0.0),
            customers=CustomerConfig(early_cancel_prob=0.0, late_cancel_prob=0.0),
            fleet=dataclasses.replace(base.fleet, offline_mid_route_prob=0.0, **fleet),
        )
        self.world = CityWorld(config)
        self.records: list[SimRecord] = []
        self.played: list[SimRecord] = []
        self.n = 0

    def advance(self, ts_ms: int) -> None:
        self.records.extend(self.world.advance(ts_ms))

    def at(self, minutes: float) -> int:
        return self.world.config.start_ts_ms + round(minutes * 60_000)

    def orders_placed(self) -> list[OrderPlan]:
        return [o for o in self.world.scenario.orders if o.placed_ts_ms <= self.world.now_ms]

    def couriers_online(self) -> list[CourierPlan]:
        return [c for c in self.world.scenario.couriers if c.shift_start_ts_ms <= self.world.now_ms]

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            r.event
            for r in self.records
            if r.event["type"] == kind and all(r.event.get(k) == v for k, v in match.items())
        ]

    def _route(self, orders: list[OrderPlan], order: list[tuple[str, int]] | None) -> list[Any]:
        now = self.world.now_ms
        stops = order or [("pickup", i) for i in range(len(orders))] + [
            ("dropoff", i) for i in range(len(orders))
        ]
        return [
            {
                "kind": kind,
                "order_id": orders[i].order_id,
                "lat": (orders[i].pickup if kind == "pickup" else orders[i].dropoff)[0],
                "lon": (orders[i].pickup if kind == "pickup" else orders[i].dropoff)[1],
                "planned_ts_ms": now,
            }
            for kind, i in stops
        ]

    def play(self, body: dict[str, Any]) -> None:
        self.n += 1
        full = {"event_id": f"out-{self.n}", "v": 1, "ts_ms": self.world.now_ms, **body}
        self.played.append(SimRecord("out", full.get("shard", "x").encode(), full))
        self.world.apply(self.played[-1:])

    def propose(self, decision: str, courier: CourierPlan, orders: list[OrderPlan]) -> None:
        self.play(
            {
                "type": "assignment_proposed",
                "decision_id": decision,
                "shard": orders[0].shard,
                "shard_generation": 0,
                "order_ids": [o.order_id for o in orders],
                "courier_id": courier.courier_id,
                "lease_expires_ts_ms": self.world.now_ms + 30_000,
                "route": self._route(orders, None),
                "cost": 1.0,
                "explanation": {"reason": "test", "terms": {}},
                "model_version": "t",
                "policy_version": "t",
            }
        )

    def commit(
        self,
        decision: str,
        courier: CourierPlan,
        orders: list[OrderPlan],
        route: list[tuple[str, int]] | None = None,
    ) -> None:
        self.play(
            {
                "type": "assignment_committed",
                "decision_id": decision,
                "shard": orders[0].shard,
                "shard_generation": 0,
                "order_ids": [o.order_id for o in orders],
                "courier_id": courier.courier_id,
                "route": self._route(orders, route),
            }
        )

    def release(self, decision: str, courier: CourierPlan, orders: list[OrderPlan]) -> None:
        self.play(
            {
                "type": "assignment_released",
                "decision_id": decision,
                "shard": orders[0].shard,
                "order_ids": [o.order_id for o in orders],
                "courier_id": courier.courier_id,
                "reason": "superseded",
            }
        )

    def expire(self, order: OrderPlan) -> None:
        self.play(
            {
                "type": "order_expired",
                "order_id": order.order_id,
                "shard": order.shard,
                "reason": "max_age",
            }
        )

    def ts(self, kind: str, **match: Any) -> int:
        (found,) = self.of(kind, **match)
        return int(found["ts_ms"])


@pytest.fixture
def driver() -> Driver:
    """A hand-driven small city, ten minutes in."""
    d = Driver()
    d.advance(d.at(10))
    return d


def test_an_offer_gets_one_answer_after_a_delay(driver: Driver) -> None:
    """An offer to an online, free courier is answered once, seconds later, keyed by shard."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    proposed_at = driver.world.now_ms
    driver.propose("d1", courier, [order])
    driver.advance(driver.at(12))
    (answer,) = [r for r in driver.records if r.event["type"] == "assignment_response"]
    assert answer.event["response"] == "accept"
    assert answer.key == order.shard.encode()
    assert proposed_at < answer.event["ts_ms"] <= proposed_at + 60_000


def test_an_offline_courier_declines() -> None:
    """A courier whose shift has not started declines offers."""
    driver = Driver(shift_start_s_range=(1_500.0, 1_600.0))
    driver.advance(driver.at(10))
    courier, order = driver.world.scenario.couriers[0], driver.orders_placed()[0]
    driver.propose("d1", courier, [order])
    driver.advance(driver.at(12))
    (answer,) = driver.of("assignment_response")
    assert (answer["response"], answer["reason"]) == ("decline", "offline")


def test_an_offer_over_capacity_is_declined(driver: Driver) -> None:
    """An offer of more orders than the courier can carry is declined."""
    courier = driver.couriers_online()[0]
    orders = driver.orders_placed()[: courier.capacity + 1]
    assert len(orders) == courier.capacity + 1
    driver.propose("d1", courier, orders)
    driver.advance(driver.at(12))
    (answer,) = driver.of("assignment_response")
    assert (answer["response"], answer["reason"]) == ("decline", "at_capacity")


def test_a_repeated_offer_is_answered_once(driver: Driver) -> None:
    """The same decision offered twice (a redelivered record) gets one answer."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    driver.propose("d1", courier, [order])
    driver.propose("d1", courier, [order])
    driver.advance(driver.at(12))
    assert len(driver.of("assignment_response")) == 1


def test_a_committed_order_is_delivered_after_ready_and_pickup(driver: Driver) -> None:
    """Commit → arrive at pickup, pick up once ready, arrive at the customer, deliver."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    committed_at = driver.world.now_ms
    driver.commit("d1", courier, [order])
    driver.advance(driver.at(120))
    oid = order.order_id
    arrived_pickup = driver.ts("delivery_arrived", order_id=oid, stop="pickup")
    picked = driver.ts("delivery_picked_up", order_id=oid, courier_id=courier.courier_id)
    arrived_dropoff = driver.ts("delivery_arrived", order_id=oid, stop="dropoff")
    delivered = driver.ts("delivery_delivered", order_id=oid, courier_id=courier.courier_id)
    ready = driver.ts("order_ready", order_id=oid)
    assert committed_at <= arrived_pickup <= picked < arrived_dropoff <= delivered
    assert picked >= ready


def test_a_bundle_is_picked_up_together_and_dropped_in_route_order(driver: Driver) -> None:
    """Both pickups come before either dropoff, and dropoffs follow the route's order."""
    courier = driver.couriers_online()[0]
    a, b = driver.orders_placed()[:2]
    driver.commit(
        "d1", courier, [a, b], route=[("pickup", 0), ("pickup", 1), ("dropoff", 1), ("dropoff", 0)]
    )
    driver.advance(driver.at(150))
    picked = [driver.ts("delivery_picked_up", order_id=o.order_id) for o in (a, b)]
    delivered_a = driver.ts("delivery_delivered", order_id=a.order_id)
    delivered_b = driver.ts("delivery_delivered", order_id=b.order_id)
    assert max(picked) < delivered_b < delivered_a


def test_a_newer_commit_is_appended_after_the_current_route(driver: Driver) -> None:
    """A second commit for a busy courier is served after everything it already held."""
    courier = driver.couriers_online()[0]
    a, b = driver.orders_placed()[:2]
    driver.commit("d1", courier, [a])
    driver.advance(driver.world.now_ms + 30_000)
    driver.commit("d2", courier, [b])
    driver.advance(driver.at(180))
    assert driver.ts("delivery_delivered", order_id=a.order_id) < driver.ts(
        "delivery_arrived", order_id=b.order_id, stop="pickup"
    )


def test_a_released_order_is_abandoned(driver: Driver) -> None:
    """After a release of its decision, the courier never reaches the order's pickup."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    driver.commit("d1", courier, [order])
    driver.advance(driver.world.now_ms + 1_000)
    driver.release("d1", courier, [order])
    driver.advance(driver.at(120))
    assert not driver.of("delivery_arrived", order_id=order.order_id)
    assert not driver.of("delivery_picked_up", order_id=order.order_id)


def test_a_release_of_another_decision_is_ignored(driver: Driver) -> None:
    """Releasing an older decision does not take the order from its current commit."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    driver.commit("d2", courier, [order])
    driver.release("d1", courier, [order])
    driver.advance(driver.at(120))
    assert driver.of("delivery_delivered", order_id=order.order_id)


def test_a_recommit_to_another_courier_moves_the_order(driver: Driver) -> None:
    """An order committed anew to another courier is delivered by the new one only."""
    first, second = driver.couriers_online()[:2]
    order = driver.orders_placed()[0]
    driver.commit("d1", first, [order])
    driver.commit("d2", second, [order])
    driver.advance(driver.at(120))
    (delivered,) = driver.of("delivery_delivered", order_id=order.order_id)
    assert delivered["courier_id"] == second.courier_id
    assert all(
        e["courier_id"] == second.courier_id
        for e in driver.of("delivery_arrived", order_id=order.order_id)
    )


def test_a_commit_sent_again_after_a_recommit_does_not_move_the_order_back(
    driver: Driver,
) -> None:
    """An output whose event id was seen already (a copy sent again) changes nothing."""
    first, second = driver.couriers_online()[:2]
    order = driver.orders_placed()[0]
    driver.commit("d1", first, [order])
    copy = driver.played[-1]
    driver.release("d1", first, [order])
    driver.commit("d2", second, [order])
    driver.world.apply([copy])
    driver.advance(driver.at(120))
    (delivered,) = driver.of("delivery_delivered", order_id=order.order_id)
    assert delivered["courier_id"] == second.courier_id
    assert driver.world.stats["outputs_repeated"] == 1


def test_an_expired_order_is_not_served(driver: Driver) -> None:
    """After the dispatcher expired an order, a commit of it does not send anyone."""
    courier, order = driver.couriers_online()[0], driver.orders_placed()[0]
    driver.expire(order)
    driver.commit("d1", courier, [order])
    driver.advance(driver.at(120))
    assert not driver.of("delivery_arrived", order_id=order.order_id)


def test_invalid_dispatcher_output_is_a_clear_error(driver: Driver) -> None:
    """An output that breaks its schema raises SimulationError naming the topic."""
    bad = SimRecord("assignment_committed", b"x", {"type": "assignment_committed", "ts_ms": 1})
    with pytest.raises(SimulationError, match="assignment_committed"):
        driver.world.apply([bad])


def test_the_world_cannot_go_back_in_time(driver: Driver) -> None:
    """Advancing to an earlier time than now is refused."""
    with pytest.raises(SimulationError, match="back in time"):
        driver.world.advance(driver.at(5))


# ---------------------------------------------------------------------- properties of a whole run


def test_every_input_is_schema_valid_with_the_right_key(small_run: Run) -> None:
    """Every record passes its schema, on a topic carrying its type, keyed as topics.yaml says."""
    topics = load_topics()
    gateway = small_run.config.fleet.gateway_id.encode()
    for rec in small_run.log.inputs:
        body = validate_schema(rec.event)
        spec = topics[rec.topic]
        assert body["type"] in spec.value_schemas
        if body["type"] == "courier_ping_batch":
            assert rec.key == gateway
        else:
            assert rec.key == str(body[spec.key]).encode()


def test_event_ids_are_unique(small_run: Run) -> None:
    """No two input events share an event_id."""
    ids = Counter(r.event["event_id"] for r in small_run.log.inputs)
    assert ids.most_common(1)[0][1] == 1


def test_each_step_is_in_event_time_with_the_ticks_last(small_run: Run) -> None:
    """A step's inputs are ordered, within (previous step, until], then one tick per shard."""
    previous = small_run.config.start_ts_ms - 1
    shards = list(small_run.log.shards)
    for until, inputs in small_run.dispatch.calls:
        ticks = inputs[-len(shards) :]
        assert [t.event["shard"] for t in ticks] == shards
        assert all(t.event["type"] == "dispatch_tick" and t.ts_ms == until for t in ticks)
        stamps = [r.ts_ms for r in inputs]
        assert stamps == sorted(stamps)
        assert all(previous < s <= until for s in stamps)
        previous = until


def test_a_ping_batch_holds_the_fixes_of_one_second(small_run: Run) -> None:
    """Batches come at whole seconds, at most one per second, each with fixes of (ts - 1 s, ts]."""
    batches = small_run.inputs_of("courier_ping_batch")
    stamps = [b["ts_ms"] for b in batches]
    assert len(set(stamps)) == len(stamps)
    for batch in batches:
        assert batch["ts_ms"] % 1000 == 0
        assert all(batch["ts_ms"] - 1000 < f["ts_ms"] <= batch["ts_ms"] for f in batch["pings"])


def test_online_couriers_ping_every_interval_and_offline_ones_never(small_run: Run) -> None:
    """Between online and offline a courier pings every ping_interval_s; never while offline."""
    interval_ms = small_run.config.fleet.ping_interval_s * 1000
    timeline: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for rec in small_run.log.inputs:
        body = rec.event
        if body["type"] in ("courier_online", "courier_offline"):
            timeline[body["courier_id"]].append((body["ts_ms"], 0, body["type"]))
        elif body["type"] == "courier_ping_batch":
            for fix in body["pings"]:
                timeline[fix["courier_id"]].append((fix["ts_ms"], 1, "fix"))
    assert timeline
    for courier_id, items in timeline.items():
        online_at: int | None = None
        last_fix: int | None = None
        for ts, _, kind in sorted(items):
            if kind == "courier_online":
                online_at, last_fix = ts, None
            elif kind == "courier_offline":
                online_at = None
            else:
                assert online_at is not None, f"{courier_id} pinged while offline"
                if last_fix is None:
                    assert ts - online_at < interval_ms
                else:
                    assert ts - last_fix == interval_ms
                last_fix = ts


def test_every_offer_is_answered_exactly_once(small_run: Run) -> None:
    """Each proposal gets exactly one answer, declined, accepted or late."""
    answers = Counter(e["decision_id"] for e in small_run.inputs_of("assignment_response"))
    offers = {e["decision_id"] for e in small_run.outputs_of("assignment_proposed")}
    assert offers and set(answers) == offers
    assert set(answers.values()) == {1}


def test_the_run_exercises_declines_late_answers_and_offline_releases(small_run: Run) -> None:
    """The small city produces declines, answers after the lease, and couriers lost mid-route."""
    reasons = Counter(e["reason"] for e in small_run.outputs_of("assignment_released"))
    assert reasons["declined"] and reasons["lease_expired"] and reasons["courier_offline"]


def test_cancellations_never_follow_a_pickup(small_run: Run) -> None:
    """No order is cancelled after it was picked up."""
    picked = {e["order_id"]: e["ts_ms"] for e in small_run.inputs_of("delivery_picked_up")}
    cancelled = small_run.inputs_of("order_cancelled")
    assert cancelled
    for e in cancelled:
        assert e["order_id"] not in picked or picked[e["order_id"]] > e["ts_ms"]
        assert e["order_id"] not in picked


def test_a_live_commit_ends_delivered_by_its_courier(small_run: Run) -> None:
    """A commit not released, cancelled or superseded ends with its courier delivering the order.

    (Orders still open when the drain time ran out are left out.)
    """
    ended: dict[str, list[int]] = defaultdict(list)
    for e in small_run.outputs_of("assignment_released"):
        ended[e["decision_id"]].append(e["ts_ms"])
    cancelled = {e["order_id"] for e in small_run.inputs_of("order_cancelled")}
    cancelled |= set(small_run.log.open_order_ids)
    delivered = {e["order_id"]: e["courier_id"] for e in small_run.inputs_of("delivery_delivered")}
    commits = small_run.outputs_of("assignment_committed")
    last_commit = {oid: e["decision_id"] for e in commits for oid in e["order_ids"]}
    checked = 0
    for e in commits:
        for oid in e["order_ids"]:
            if (
                e["decision_id"] in ended
                or oid in cancelled
                or last_commit[oid] != e["decision_id"]
            ):
                continue
            assert delivered.get(oid) == e["courier_id"]
            checked += 1
    assert checked > 10


def test_milestones_of_delivered_orders_are_ordered(small_run: Run) -> None:
    """For delivered orders: created ≤ ready ≤ picked up < delivered."""

    def first(kind: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in small_run.inputs_of(kind):
            out.setdefault(e["order_id"], e["ts_ms"])
        return out

    created, ready = first("order_created"), first("order_ready")
    picked, delivered = first("delivery_picked_up"), first("delivery_delivered")
    assert delivered
    for oid, done in delivered.items():
        assert created[oid] <= ready[oid] <= picked[oid] < done
