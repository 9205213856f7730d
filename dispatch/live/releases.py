"""Ending decisions without a delivery: releases, lease and order expiry, courier handovers.

What releasing guarantees:

* only what a decision holds is released: an order whose dispatch names another decision (it
  was released, re-offered or ended meanwhile) is left alone, and a release of nothing emits
  nothing. A released order is open again (or done, if it ended), so the next tick may offer
  it; with a cool-down, not to the same courier before `cooldown_s` has passed (a decline or a
  lease expiry).
* a proposal is released whole (it is one offer); a commitment may lose some of its orders
  (cancelled, or its courier went offline before picking them up) and ends when it holds none.
* the courier's lease on a released proposal is lifted and released orders leave its route, so
  its capacity is free again; a courier leaving the shard is handed over once it holds nothing.
* an `assignment_released` names the orders released and the reason; its id is made from the
  decision, the reason and those orders, so the same release is never two different records.
* a lease ends at `lease_expires_ts_ms`: the first tick at or after it releases the proposal
  (`lease_expired`, with a cool-down). An open order older than `max_order_age_s` is given up
  once (`order_expired`, reason `max_age`). The order's state names the tick that gave it up;
  the state and the announcement reach the broker separately, so that tick, read again after a
  stop between the two, announces the same `order_expired` again (same event id, time and
  trace; consumers keep each event id once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from dispatch.lifecycle import OrderState
from dispatch.live.effects import Effects
from dispatch.live.engine_config import EngineConfig
from dispatch.live.outputs import expired_event, handover, order_trace, released_event
from dispatch.live.records import CourierRecord, DecisionRecord, DecisionStatus, Phase
from dispatch.live.state import ShardState
from dispatch.live.telemetry import Telemetry
from dispatch.live.topic_names import ASSIGNMENT_RELEASED, COURIER_STATE_UPDATES


class Releases:
    """Releases decisions and expires leases and orders in a worker's shards."""

    def __init__(self, state: ShardState, config: EngineConfig, telemetry: Telemetry) -> None:
        self.state = state
        self.config = config
        self.telemetry = telemetry

    def release_orders(
        self,
        decision: DecisionRecord,
        order_ids: Sequence[str],
        reason: str,
        ts_ms: int,
        effects: Effects,
        *,
        cooldown: bool = False,
    ) -> None:
        """Release `order_ids` of `decision` (all of a proposal, or some of a commitment).

        With `cooldown`, the released orders are not offered to the decision's courier again
        for `cooldown_s`.
        """
        if decision.status is DecisionStatus.RELEASED:
            return
        state = self.state
        proposal = decision.status is DecisionStatus.PROPOSED
        candidates = (
            decision.order_ids if proposal else [o for o in decision.order_ids if o in order_ids]
        )
        held = _held(state, candidates, decision)
        released = tuple(o.order_id for o in held)
        if not released and not proposal:
            return
        for order in held:
            dispatch = replace(order.dispatch, phase=Phase.OPEN, decision_id=None, courier_id=None)
            if order.status.terminal:
                dispatch = replace(dispatch, phase=Phase.DONE)
            if cooldown:
                until = ts_ms + int(self.config.cooldown_s * 1000)
                dispatch = dispatch.with_cooldown(decision.courier_id, until, ts_ms)
            state.put_order(replace(order, dispatch=dispatch))
        courier = state.courier(decision.shard, decision.courier_id)
        if courier is not None:
            if courier.lease_decision_id == decision.decision_id:
                courier = replace(courier, lease_decision_id=None, lease_expires_ts_ms=None)
            if not proposal:
                route = tuple(
                    replace(s, order_ids=tuple(o for o in s.order_ids if o not in released))
                    for s in courier.route
                )
                courier = replace(courier, route=tuple(s for s in route if s.order_ids))
            state.put_courier(courier)
            self.hand_over_if_free(courier, ts_ms, effects)
        remaining = tuple(o for o in decision.order_ids if o not in released)
        still_held = _held(state, remaining, decision)
        status = DecisionStatus.RELEASED if proposal or not still_held else decision.status
        state.put_decision(
            replace(
                decision,
                status=status,
                order_ids=remaining if not proposal else decision.order_ids,
                resolved_ts_ms=ts_ms,
                release_reason=reason,
            )
        )
        if not released:
            return
        event = released_event(decision, released, reason, ts_ms)
        effects.emit(ASSIGNMENT_RELEASED, decision.shard, event, order_trace(held[0], event))
        self.telemetry.released(reason)

    def release_courier(
        self, courier: CourierRecord, reason: str, ts_ms: int, effects: Effects, *, committed: bool
    ) -> None:
        """Release a courier's open proposal and (if `committed`) its orders not picked up."""
        state = self.state
        if courier.lease_decision_id is not None:
            decision = state.decision(courier.lease_decision_id)
            if decision is not None:
                self.release_orders(decision, decision.order_ids, reason, ts_ms, effects)
        if not committed:
            return
        courier = state.courier(courier.shard, courier.courier_id) or courier
        waiting = [
            o
            for stop in courier.route
            if stop.kind == "pickup"
            for o in stop.order_ids
            if o not in courier.onboard
        ]
        by_decision: dict[str, list[str]] = defaultdict(list)
        for order_id in waiting:
            order = state.order(order_id)
            if order is not None and order.dispatch.decision_id is not None:
                by_decision[order.dispatch.decision_id].append(order_id)
        for decision_id in sorted(by_decision):
            decision = state.decision(decision_id)
            if decision is not None:
                self.release_orders(decision, by_decision[decision_id], reason, ts_ms, effects)

    def hand_over_if_free(self, courier: CourierRecord, ts_ms: int, effects: Effects) -> None:
        """A courier that left its shard is handed to the new one once it holds no work here."""
        if courier.leaving_to is None or not courier.idle_here:
            return
        self.state.delete_courier(courier.shard, courier.courier_id)
        effects.emit(
            COURIER_STATE_UPDATES,
            courier.leaving_to,
            handover(courier, courier.leaving_to, courier.leaving_epoch, ts_ms),
        )

    def expire_leases(self, shard: str, now_ms: int, effects: Effects) -> None:
        """Release every proposal of `shard` whose lease ended by `now_ms` (with a cool-down)."""
        for decision in self.state.open_proposals(shard):
            if decision.lease_expires_ts_ms <= now_ms:
                self.release_orders(
                    decision, decision.order_ids, "lease_expired", now_ms, effects, cooldown=True
                )

    def expire_orders(
        self, shard: str, now_ms: int, effects: Effects, tick_id: str | None = None
    ) -> None:
        """Close ended orders of `shard`; give up open ones older than `max_order_age_s`.

        `tick_id` is the event id of the tick doing it (None: a tick without one); the tick,
        handled again, first announces again what it gave up before (`expired_by`).
        """
        if tick_id is not None:
            for order in self.state.expired_by(tick_id):
                self._announce_expiry(order, now_ms, effects)
        max_age_ms = int(self.config.max_order_age_s * 1000)
        for order in self.state.live_orders(shard):
            if order.status.terminal:
                done = replace(order.dispatch, phase=Phase.DONE)
                self.state.put_order(replace(order, dispatch=done))
                continue
            if order.dispatch.phase is Phase.OPEN and now_ms - order.placed_ts_ms > max_age_ms:
                expired = replace(
                    order.dispatch, phase=Phase.DONE, expired_reason="max_age", expired_by=tick_id
                )
                order = replace(order, dispatch=expired)
                self.state.put_order(order)
                self._announce_expiry(order, now_ms, effects)

    def _announce_expiry(self, order: OrderState, now_ms: int, effects: Effects) -> None:
        """The `order_expired` of `order`, given up at `now_ms` (its tick's event time)."""
        max_age_ms = int(self.config.max_order_age_s * 1000)
        reason = order.dispatch.expired_reason or "max_age"
        detail = f"no courier committed within {max_age_ms // 1000} s of placement"
        event = expired_event(order.order_id, order.shard, reason, detail, now_ms)
        effects.emit(ASSIGNMENT_RELEASED, order.shard, event, order_trace(order, event))


def _held(
    state: ShardState, order_ids: Sequence[str], decision: DecisionRecord
) -> list[OrderState]:
    """The orders of `order_ids` that are under `decision`, in that order."""
    orders = [state.order(o) for o in order_ids]
    return [o for o in orders if o is not None and o.dispatch.decision_id == decision.decision_id]
