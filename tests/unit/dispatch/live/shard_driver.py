"""A seeded random driver of one shard: orders, couriers and a courier app that misbehaves.

Each run interleaves, in event time: order creations, ticks every `tick_ms`, answers to offers
(accept, decline, silence, duplicates, answers by the wrong courier, answers to unknown
decisions), pickups and deliveries of committed orders, cancellations, couriers going offline
and online again, and rebalances (`engine.reset` with a new generation). After the busy phase a
drain phase stops new work and plays every commitment to its end, so that every order finishes
delivered, cancelled or expired. Everything the world saw and emitted is in `world.log`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.live.engine_config import EngineConfig
from dispatch.live.records import DecisionStatus
from tests.unit.dispatch.live.shard_world import T0, World, of_type, offset

#: Engine settings of the driven runs: short leases, cool-downs and order lifetimes.
DRIVER_CONFIG = EngineConfig(
    lease_s=10.0,
    cooldown_s=30.0,
    max_order_age_s=300.0,
    eta_update_every_ticks=3,
    surge_every_ticks=3,
)
MERCHANTS = {"m1": offset(0.0, 0.0), "m2": offset(600.0, -400.0), "m3": offset(-500.0, 700.0)}


@dataclass
class DriverState:
    """What the courier app and the customers know, from the engine's outputs."""

    online: dict[str, bool] = field(default_factory=dict)
    offers: dict[str, tuple[str, int]] = field(default_factory=dict)  # decision -> courier, due
    held: dict[str, tuple[str, int]] = field(default_factory=dict)  # order -> courier, since
    onboard: dict[str, tuple[str, int]] = field(default_factory=dict)  # order -> courier, since
    terminal: set[str] = field(default_factory=set)
    orders: list[str] = field(default_factory=list)
    answered: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (response, decision)


Check = Callable[[World], None]


class Driver:
    """Plays one seeded run against a `World`."""

    def __init__(self, world: World, seed: int, couriers: int = 4, tick_ms: int = 2_000) -> None:
        self.world = world
        self.rng = np.random.default_rng(seed)
        self.state = DriverState()
        self.tick_ms = tick_ms
        self.now_ms = T0
        self.generation = 0
        self.capacity = {f"c{i}": int(self.rng.integers(1, 4)) for i in range(couriers)}

    # ------------------------------------------------------------------ outputs
    def _observe(self, effects: Any, drain: bool = False) -> None:
        state = self.state
        for event in of_type(effects, "assignment_proposed"):
            delay = int(self.rng.integers(500, 2_000 if drain else 14_000))
            state.offers[event["decision_id"]] = (event["courier_id"], self.now_ms + delay)
        for event in of_type(effects, "assignment_committed"):
            state.offers.pop(event["decision_id"], None)
            for order_id in event["order_ids"]:
                state.held[order_id] = (event["courier_id"], self.now_ms)
        for event in of_type(effects, "assignment_released"):
            state.offers.pop(event["decision_id"], None)
            for order_id in event["order_ids"]:
                if state.held.get(order_id, ("",))[0] == event["courier_id"]:
                    del state.held[order_id]
        for event in of_type(effects, "order_expired"):
            state.terminal.add(event["order_id"])

    def _ping_all(self) -> None:
        for courier_id, online in self.state.online.items():
            if online:
                jitter = self.rng.normal(0.0, 300.0, size=2)
                self.world.ping(courier_id, self.now_ms, *offset(*jitter))

    # ------------------------------------------------------------------ actions
    def _create(self, n: int) -> None:
        order_id = f"o{len(self.state.orders)}"
        merchant = str(self.rng.choice(sorted(MERCHANTS)))
        drop = offset(*self.rng.uniform(-2_500.0, 2_500.0, size=2))
        prep_s = float(self.rng.choice([0.0, 120.0, 400.0]))
        self.world.create(
            order_id, self.now_ms, MERCHANTS[merchant], drop, merchant_id=merchant, prep_s=prep_s
        )
        self.state.orders.append(order_id)

    def _answer(self, drain: bool) -> None:
        state, world = self.state, self.world
        for decision_id, (courier_id, due_ms) in sorted(state.offers.items()):
            if due_ms > self.now_ms:
                continue
            draw = self.rng.random()
            if drain or draw < 0.6:
                answer = "accept"
            elif draw < 0.85:
                answer = "decline"
            else:  # never answers: the lease expires
                state.offers[decision_id] = (courier_id, self.now_ms + 10**9)
                continue
            event = world.response(decision_id, courier_id, self.now_ms, answer)
            self._observe(world.handle_response(event))
            state.answered.append((event, decision_id))
            state.offers.pop(decision_id, None)

    def _misbehave(self) -> None:
        state, world = self.state, self.world
        draw = self.rng.random()
        if draw < 0.3 and state.answered:
            # the same record again, or the same answer as a new record
            event, _ = state.answered[int(self.rng.integers(len(state.answered)))]
            repeat = dict(event)
            if self.rng.random() < 0.5:
                repeat["event_id"] = f"{event['event_id']}-again-{self.now_ms}"
            repeat["ts_ms"] = max(event["ts_ms"], self.now_ms - 30_000)
            self._observe(world.handle_response(repeat))
        elif draw < 0.4 and state.answered:
            _, decision_id = state.answered[int(self.rng.integers(len(state.answered)))]
            self._observe(world.respond(decision_id, "c-stranger", self.now_ms))
        elif draw < 0.45:
            self._observe(world.respond(f"no-such-{self.now_ms}", "c0", self.now_ms))

    def _progress(self, drain: bool) -> None:
        state, world = self.state, self.world
        # facts come strictly after what they follow (the checker orders equal times by kind)
        for order_id, (courier_id, since_ms) in sorted(state.held.items()):
            if order_id in state.onboard or order_id in state.terminal or since_ms >= self.now_ms:
                continue
            if drain or self.rng.random() < 0.15:
                self._observe(world.picked_up(order_id, courier_id, self.now_ms))
                state.onboard[order_id] = (courier_id, self.now_ms)
        for order_id, (courier_id, since_ms) in sorted(state.onboard.items()):
            if order_id in state.terminal or since_ms >= self.now_ms:
                continue
            if drain or self.rng.random() < 0.15:
                self._observe(world.delivered(order_id, courier_id, self.now_ms))
                state.terminal.add(order_id)
                state.held.pop(order_id, None)

    def _cancel(self) -> None:
        state = self.state
        live = [o for o in state.orders if o not in state.terminal]
        if not live:
            return
        order_id = str(self.rng.choice(live))
        self._observe(self.world.cancel(order_id, self.now_ms))
        if self.world.order(order_id).status.value == "cancelled":
            state.terminal.add(order_id)
            state.held.pop(order_id, None)

    def _toggle_courier(self) -> None:
        courier_id = str(self.rng.choice(sorted(self.capacity)))
        if self.state.online.get(courier_id):
            self._observe(self.world.offline(courier_id, self.now_ms))
            self.state.online[courier_id] = False
        else:
            self._go_online(courier_id)

    def _go_online(self, courier_id: str) -> None:
        at = offset(*self.rng.uniform(-800.0, 800.0, size=2))
        capacity = self.capacity[courier_id]
        self._observe(self.world.online(courier_id, self.now_ms, at, capacity=capacity))
        self.state.online[courier_id] = True

    def _rebalance(self) -> None:
        self.generation += 1
        self.world.engine.reset(self.generation)

    # ------------------------------------------------------------------ runs
    def step(self, drain: bool = False) -> None:
        """Advance one tick interval (two while draining) and play everything due in it."""
        self.now_ms += self.tick_ms * (2 if drain else 1)
        rng = self.rng
        if not drain:
            if rng.random() < 0.35:
                self._create(len(self.state.orders))
            if rng.random() < 0.04:
                self._cancel()
            if rng.random() < 0.03:
                self._toggle_courier()
            if rng.random() < 0.03:
                self._rebalance()
            self._misbehave()
        self._answer(drain)
        self._progress(drain)
        self._ping_all()
        self._observe(self.world.tick(self.now_ms), drain)

    def run(self, steps: int, after_step: Check | None = None) -> None:
        """A busy phase of `steps` ticks, then a drain until every order is finished."""
        for courier_id in sorted(self.capacity):
            self._go_online(courier_id)
        for _ in range(steps):
            self.step()
            if after_step is not None:
                after_step(self.world)
        for courier_id in sorted(self.capacity):
            if not self.state.online.get(courier_id):
                self.now_ms += 1
                self._go_online(courier_id)
        # one order lifetime of drain steps (two ticks each), and a margin, finishes every order
        limit = int(DRIVER_CONFIG.max_order_age_s * 1000 / (2 * self.tick_ms)) + 40
        for _ in range(limit):
            if all(o in self.state.terminal for o in self.state.orders):
                break
            self.step(drain=True)
            if after_step is not None:
                after_step(self.world)


def double_live(world: World) -> list[str]:
    """Orders offered while another decision still held them, from the log in handling order.

    A decision holds its orders from its proposal until it releases them or the order ends
    (delivered, cancelled by an accepted cancellation, expired).
    """
    live: dict[str, set[str]] = {}
    found: list[str] = []
    for event in world.log:
        kind = event["type"]
        if kind == "assignment_proposed":
            decision_id = event["decision_id"]
            for order_id in event["order_ids"]:
                others = live.setdefault(order_id, set()) - {decision_id}
                if others:
                    found.append(f"{order_id} offered by {decision_id} while {sorted(others)} live")
                live[order_id].add(decision_id)
        elif kind == "assignment_released":
            for order_id in event["order_ids"]:
                live.get(order_id, set()).discard(event["decision_id"])
        elif kind in ("delivery_delivered", "order_expired") or (
            kind == "order_cancelled" and event["event_id"] not in world.rejected_ids
        ):
            live.pop(event["order_id"], None)
    return found


def overlapping_offers(world: World) -> list[str]:
    """Orders in two stored open offers, or an open offer the order does not point back to."""
    found: list[str] = []
    owner: dict[str, str] = {}
    for decision_id, decision in world.stores.decisions.items():
        if decision.status is not DecisionStatus.PROPOSED:
            continue
        for order_id in decision.new_order_ids:
            if order_id in owner:
                found.append(f"{order_id} in open offers {owner[order_id]} and {decision_id}")
            owner[order_id] = decision_id
            order = world.stores.orders.get(order_id)
            if order is None or order.dispatch.decision_id != decision_id:
                found.append(f"{order_id} offered by {decision_id} but not leased to it")
    return found


def over_capacity(world: World) -> list[str]:
    """Couriers whose stored load exceeds their capacity."""
    return [
        f"{courier_id} holds {courier.load} > {courier.capacity}"
        for courier_id, courier in world.stores.couriers.items()
        if courier.load > courier.capacity
    ]


@dataclass(frozen=True)
class RunRecord:
    """What one driven run left behind (the world itself is closed)."""

    seed: int
    log: tuple[dict[str, Any], ...]
    outputs: tuple[tuple[str, bytes, Any], ...]  # topic, key, value
    step_problems: tuple[str, ...]  # overlapping offers or over-capacity seen at a check
    double_live: tuple[str, ...]
    orders: tuple[str, ...]
    rejections: tuple[str, ...]  # reasons of the dead-lettered inputs


#: Seeds of the random runs, and busy ticks per run.
SEEDS = tuple(range(6))
STEPS = 150
#: Stored state is checked after every this many steps (each check reads every table).
CHECK_EVERY = 5


def drive(seed: int, steps: int = STEPS) -> RunRecord:
    """Play one seeded run in a fresh world and keep its record."""
    problems: list[str] = []
    steps_done = [0]

    def after_step(world: World) -> None:
        steps_done[0] += 1
        if steps_done[0] % CHECK_EVERY == 0:
            problems.extend(overlapping_offers(world))
            problems.extend(over_capacity(world))

    with World(config=DRIVER_CONFIG) as world:
        driver = Driver(world, seed)
        driver.run(steps, after_step)
        return RunRecord(
            seed=seed,
            log=tuple(world.log),
            outputs=tuple((o.topic, o.key, o.value) for o in world.outputs),
            step_problems=tuple(problems),
            double_live=tuple(double_live(world)),
            orders=tuple(driver.state.orders),
            rejections=tuple(str(error.reason) for _, error in world.rejections),
        )


_RUNS: dict[int, RunRecord] = {}


def driven_run(seed: int) -> RunRecord:
    """`drive(seed)`, played once per test session."""
    if seed not in _RUNS:
        _RUNS[seed] = drive(seed)
    return _RUNS[seed]
