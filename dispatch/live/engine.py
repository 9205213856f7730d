"""The live shard engine: every shard-keyed input, one event at a time, to state and outputs.

Inputs (all keyed by shard, so one worker owns all of a shard's state): order and merchant and
delivery events, courier state updates from the courier directory, courier responses to offers,
policy flags, and ticks. This module holds the input handlers and the tick's orchestration; the
state and its indices are in `state` (`ShardState`, the tables' only writer), the tick's
snapshot in `shard_snapshot`, the decision lifecycle in `proposals` (offer, commit) and
`releases` (release, lease and order expiry), ETA updates in `tracking`, surge in `surge`, the
circuit breaker in `breaker`, every output record in `outputs` and every topic name in
`topic_names`. Positions come from a `PositionView`; outputs are returned as `Effects` for the
caller to produce.

The decision lifecycle:

1. a tick expires leases and old orders, snapshots the shard and calls `dispatch.engine.decide`
   (or the greedy policy when the tick would overrun its budget: the circuit breaker);
2. each assignment becomes a proposal (`assignment_proposed`) with a lease: its orders and
   courier are reserved until the courier answers or the lease expires;
3. accept → `assignment_committed` (only if the proposal was made under the current shard
   generation; a worker that lost the shard cannot commit for it); decline or lease expiry →
   `assignment_released`, a cool-down for that courier and order, and the order is open again;
4. a cancelled order or a courier going offline releases what it held (`assignment_released`);
   pickup and delivery move the courier along its route; delivery closes the order and labels
   the announced ETA (calibration);
5. an open order older than `max_order_age_s` expires (`order_expired`).

Every output carries a deterministic event id, so a redelivered input never makes a second
decision; a response to a proposal that is no longer open changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from contracts.rejections import EventRejected, RejectReason
from contracts.validation import Event
from dispatch.lifecycle import (
    MAX_ORDER_EVENTS,
    AlreadyApplied,
    OrderEvent,
    OrderState,
    OrderStatus,
    Source,
    apply_order_event,
    apply_parked,
)
from dispatch.live.breaker import CircuitBreaker
from dispatch.live.effects import Effects
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import (
    COURIER_SPEED,
    ZONE_SPEED,
    LegPredictor,
    RouteCalibrator,
    StraightLinePredictor,
)
from dispatch.live.orphans import Orphans, ParkedRecord
from dispatch.live.outputs import eta_event, handover_from, left_tombstone, order_trace
from dispatch.live.proposals import Proposals
from dispatch.live.rank_view import RankView, build_rank_view
from dispatch.live.records import CourierRecord, DecisionStatus, Phase, RouteStop, ShardControl
from dispatch.live.releases import Releases
from dispatch.live.shard_snapshot import PositionView, build_snapshot
from dispatch.live.staged import (
    ModelSets,
    TickInputs,
    VersionedPredictor,
    label,
    placement_eta,
    prep_model_of,
)
from dispatch.live.state import ShardState, ShardStores
from dispatch.live.surge import SurgeTracker
from dispatch.live.telemetry import NullTelemetry, Telemetry
from dispatch.live.topic_names import (
    COURIER_POSITIONS,
    COURIER_STATE_UPDATES,
    ETA_UPDATES,
    SURGE_UPDATES,
)
from dispatch.live.tracking import eta_updates
from dispatch.policy import Policy, PolicyError


class ShardEngine:
    """Live dispatch of the shards whose partitions this worker owns."""

    def __init__(
        self,
        stores: ShardStores,
        positions: PositionView,
        config: EngineConfig | None = None,
        predictor: LegPredictor | None = None,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] | None = None,
        models: ModelSets | None = None,
        inputs: Callable[[int | None, int], TickInputs] | None = None,
    ) -> None:
        self.stores = stores
        self.positions = positions
        self.config = config or EngineConfig()
        self.predictor: LegPredictor = (
            predictor if predictor is not None else StraightLinePredictor()
        )
        self.models = models
        self.inputs = inputs
        self.versioned = VersionedPredictor(self.predictor, models, self.config)
        self.telemetry: Telemetry = telemetry or NullTelemetry()
        self.generation = 0
        self.calibrator = RouteCalibrator(coverage=self.config.eta_coverage)
        self.state = ShardState(stores)
        self.releases = Releases(self.state, self.config, self.telemetry)
        self.proposals = Proposals(
            self.state, self.config, self.releases, self.calibrator, self.versioned, self.telemetry
        )
        self.breaker = CircuitBreaker(self.config.tick_budget_s, clock)
        self.surge = SurgeTracker(self.config)
        self._ticks: dict[str, int] = {}

    def reset(self, generation: int) -> None:
        """Forget in-memory indices (after a rebalance) and adopt the new shard generation."""
        self.generation = generation
        self.state.reset()

    def holds(self, shard: str, courier_id: str) -> bool:
        """True if `shard` holds the courier (a record there, not leaving it)."""
        return self.state.holds(shard, courier_id)

    def shards(self) -> list[str]:
        """Shards with live orders or couriers in this worker's partitions."""
        return self.state.shards()

    # ------------------------------------------------------------------ order events
    def tick_inputs(self, partition: int | None, now_ms: int) -> TickInputs:
        """What a tick of `partition` at `now_ms` reads beside its state (models, features)."""
        if self.inputs is not None:
            return self.inputs(partition, now_ms)
        return TickInputs(prep_model_of(self.models, self.config), telemetry=self.telemetry)

    def on_order_event(
        self,
        event: Event,
        source: Source,
        placement: dict[str, float | None] | None = None,
    ) -> Effects:
        """Apply a validated order, merchant or delivery event.

        `placement` is a new order's features at placement (read before its `order_created`
        fed the features); the order keeps them and its drop-off ETA is announced at once.
        """
        self.state.ensure_indexed()
        effects = Effects()
        order_id = str(event["order_id"])
        partition = source.partition
        self.state.orphan_index.observe(partition, source.topic, int(event["ts_ms"]))
        before = self.state.order(order_id)
        try:
            update = apply_order_event(before, event, source)
        except AlreadyApplied:
            self._resend_expired(source, effects)
            return effects
        except EventRejected as exc:
            if exc.reason is not RejectReason.UNKNOWN_ID:
                raise
            self._park(event, source, effects)
            self._expire_orphans(source, effects)
            return effects
        if update.rejected is not None:
            effects.reject(source, update.rejected)
        effects.applied = update.rejected is None
        self._reject_evicted(update.evicted, effects)
        after = update.state
        if event["type"] == "order_created" and update.rejected is None:
            after = self._place(after, placement or {}, effects)
            after = self._adopt(after, effects)
        after = self._dispatch_effects(before, after, int(event["ts_ms"]), effects)
        self.state.put_order(after)
        self._expire_orphans(source, effects)
        return effects

    def _place(
        self, order: OrderState, placement: dict[str, float | None], effects: Effects
    ) -> OrderState:
        """Keep a new order's features at placement; announce its drop-off ETA."""
        order = replace(
            order, dispatch=replace(order.dispatch, placement=tuple(sorted(placement.items())))
        )
        served = prep_model_of(self.models, self.config)
        context = None
        if self.config.variant == "learned":
            speed = placement.get("zone_speed_1h.observed_speed_mps")
            context = {ZONE_SPEED: math.nan if speed is None else speed, COURIER_SPEED: math.nan}
        eta = placement_eta(order, self.config, self.predictor, served, self.telemetry, context)
        version = eta.model_version if served is not None else self.versioned.version
        event = eta_event(
            order.order_id,
            order.shard,
            order.placed_ts_ms,
            eta.p50_ts_ms,
            eta.p90_ts_ms,
            version,
            fallback_reason=eta.fallback_reason,
        )
        effects.emit(ETA_UPDATES, order.shard, event, order_trace(order, event))
        return order

    def _reject_evicted(
        self, evicted: Sequence[tuple[OrderEvent, EventRejected]], effects: Effects
    ) -> None:
        for event, error in evicted:
            if event.source is not None:
                effects.reject(event.source, error)

    def _park(self, event: Event, source: Source, effects: Effects) -> None:
        order_id = str(event["order_id"])
        current = self.state.orphans(order_id)
        if current is not None and current.expired:
            if any(source.same_record(r.source) for r in current.records):
                return  # handled again after a crash: its letter is sent with the tombstone's
            current = None  # a new event for an id whose earlier events were dead-lettered
        current = current or Orphans(
            order_id,
            source.partition,
            int(event["ts_ms"]),
            (),
            self.state.orphan_index.newest_tick(source.partition),
        )
        if any(source.same_record(r.source) for r in current.records):
            return
        if len(current.records) >= MAX_ORDER_EVENTS:
            message = f"{MAX_ORDER_EVENTS} events already wait for order {order_id!r}"
            effects.reject(source, EventRejected(RejectReason.TOO_MANY_EVENTS, message))
            return
        self.state.put_orphans(source.partition, current.add(ParkedRecord(event, source)))

    def _adopt(self, state: OrderState, effects: Effects) -> OrderState:
        parked = self.state.orphans(state.order_id)
        if parked is None:
            return state
        if parked.expired:
            self.state.delete_orphans(parked.partition, state.order_id)
            return state
        outcome = apply_parked(state, [(r.event, r.source) for r in parked.records])
        state = outcome.state
        for i, error in outcome.rejected:
            effects.reject(parked.records[i].source, error)
        self._reject_evicted(outcome.evicted, effects)
        effects.adopted.extend(parked.records[i].event for i in outcome.accepted)
        self.state.delete_orphans(parked.partition, state.order_id)
        return state

    def _expire_orphans(self, source: Source, effects: Effects, *, by_ticks: bool = False) -> None:
        """Dead-letter orphans of `source`'s partition whose wait is over; keep them as tombstones.

        The tombstones name `source`: when this very record is handled again (after a crash that
        may have lost the letters but kept the tombstones), the letters are sent again. A
        tombstone is deleted one ttl after it was made.
        """
        partition = source.partition
        ttl_ms = int(self.config.orphan_ttl_s * 1000)
        index = self.state.orphan_index
        self._resend_expired(source, effects)
        due = (
            index.expired_by_ticks(partition, ttl_ms)
            if by_ticks
            else index.expired(partition, ttl_ms)
        )
        now_ms = index.now(partition) or 0
        for order_id in due:
            parked = self.state.orphans(order_id)
            if parked is None or parked.expired:
                index.discard(partition, order_id)
                continue
            tombstone = replace(parked, expired_by=source.identity, expired_at_ms=now_ms)
            self.state.put_orphans(partition, tombstone)
            self._reject_orphans(tombstone, effects)
        for order_id in index.tombstones_past(partition, ttl_ms):
            self.state.delete_orphans(partition, order_id)

    def _resend_expired(self, source: Source, effects: Effects) -> None:
        """The dead letters of the orphans `source` expired before (it is handled again)."""
        for order_id in self.state.orphan_index.expired_by(source):
            parked = self.state.orphans(order_id)
            if parked is not None and source.same_record(parked.expired_by):
                self._reject_orphans(parked, effects)

    def _reject_orphans(self, parked: Orphans, effects: Effects) -> None:
        ttl_s = int(self.config.orphan_ttl_s)
        message = f"order {parked.order_id!r} was not created within {ttl_s} s of this event"
        for record in parked.records:
            effects.reject(record.source, EventRejected(RejectReason.UNKNOWN_ID, message))

    def _dispatch_effects(
        self, before: OrderState | None, after: OrderState, ts_ms: int, effects: Effects
    ) -> OrderState:
        """Consequences of an order's status change for its assignment and courier."""
        old = before.status if before is not None else None
        new = after.status
        dispatch = after.dispatch
        if new is OrderStatus.CANCELLED and old is not OrderStatus.CANCELLED:
            if dispatch.decision_id is not None and dispatch.phase in (
                Phase.PROPOSED,
                Phase.COMMITTED,
            ):
                decision = self.state.decision(dispatch.decision_id)
                if decision is not None:
                    self.releases.release_orders(
                        decision, (after.order_id,), "order_cancelled", ts_ms, effects
                    )
            return replace(after, dispatch=replace(after.dispatch, phase=Phase.DONE))
        ready = after.ts("order_ready")
        if ready is not None and (before is None or before.ts("order_ready") is None):
            label("prep", after, (ready - after.placed_ts_ms) / 1000, self.models, self.telemetry)
        if new is OrderStatus.PICKED_UP and old is not OrderStatus.PICKED_UP:
            self._picked_up(after, ts_ms)
        if new is OrderStatus.DELIVERED and old is not OrderStatus.DELIVERED:
            delivered = after.ts("delivery_delivered") or ts_ms
            total_s = (delivered - after.placed_ts_ms) / 1000
            label("total", after, total_s, self.models, self.telemetry)
            self._delivered(after, ts_ms, effects)
            if dispatch.phase is Phase.PROPOSED and dispatch.decision_id is not None:
                decision = self.state.decision(dispatch.decision_id)
                if decision is not None:
                    self.releases.release_orders(
                        decision, (after.order_id,), "superseded", ts_ms, effects
                    )
            return replace(after, dispatch=replace(after.dispatch, phase=Phase.DONE))
        return after

    def _picked_up(self, order: OrderState, ts_ms: int) -> None:
        courier = self.state.courier(order.shard, order.dispatch.courier_id or order.courier_id)
        if courier is None:
            return
        route: list[RouteStop] = []
        shift = 0
        for stop in courier.route:
            if stop.kind == "pickup" and order.order_id in stop.order_ids:
                shift = ts_ms - stop.planned_ts_ms
                rest = tuple(o for o in stop.order_ids if o != order.order_id)
                if rest:
                    route.append(replace(stop, order_ids=rest))
                continue
            route.append(stop)
        if shift:
            route = [
                replace(s, planned_ts_ms=s.planned_ts_ms + shift, p90_ts_ms=s.p90_ts_ms + shift)
                for s in route
            ]
        onboard = (
            (*courier.onboard, order.order_id)
            if order.order_id not in courier.onboard
            else courier.onboard
        )
        self.state.put_courier(replace(courier, route=tuple(route), onboard=onboard))

    def _delivered(self, order: OrderState, ts_ms: int, effects: Effects) -> None:
        dispatch = order.dispatch
        courier = self.state.courier(order.shard, dispatch.courier_id or order.courier_id)
        if courier is not None:
            route = tuple(
                replace(stop, order_ids=tuple(o for o in stop.order_ids if o != order.order_id))
                for stop in courier.route
            )
            route = tuple(stop for stop in route if stop.order_ids)
            onboard = tuple(o for o in courier.onboard if o != order.order_id)
            courier = replace(
                courier, route=route, onboard=onboard, orders_done=courier.orders_done + 1
            )
            self.state.put_courier(courier)
            self.releases.hand_over_if_free(courier, ts_ms, effects)
        if dispatch.phase is Phase.COMMITTED and dispatch.decision_id is not None:
            decision = self.state.decision(dispatch.decision_id)
            if decision is not None and order.order_id in decision.etas:
                p50_s, raw_p90_s, p90_s = decision.etas[order.order_id]
                realized_s = (ts_ms - decision.proposed_ts_ms) / 1000
                self.calibrator.observe(realized_s, raw_p90_s)
                self.telemetry.eta_label(
                    realized_s - p50_s, realized_s <= p90_s, decision.fallback_used
                )

    # ------------------------------------------------------------------ courier updates
    def on_courier_update(self, update: Event) -> Effects:
        """Apply a `courier_state_update` (from the directory, or a handover from a shard)."""
        self.state.ensure_indexed()
        effects = Effects()
        courier_id = str(update["courier_id"])
        shard = str(update["shard"])
        ts_ms = int(update["ts_ms"])
        kind = str(update["kind"])
        epoch = int(update.get("epoch") or 0)
        current = self.state.courier(shard, courier_id)
        if kind == "left":
            effects.emit(COURIER_POSITIONS, shard, left_tombstone(shard, courier_id, ts_ms))
            to_shard = update.get("to_shard")
            if current is None:
                if to_shard:
                    effects.emit(
                        COURIER_STATE_UPDATES,
                        to_shard,
                        handover_from(update, to_shard, epoch, ts_ms),
                    )
                return effects
            if current.lease_decision_id is not None:
                self.releases.release_courier(
                    current, "shard_moved", ts_ms, effects, committed=False
                )
                current = self.state.courier(shard, courier_id) or current
            current = replace(current, leaving_to=to_shard or shard, leaving_epoch=epoch)
            self.state.put_courier(current)
            self.releases.hand_over_if_free(current, ts_ms, effects)
            return effects
        status = str(update["status"])
        was_online = current is not None and current.online
        if current is None:
            current = CourierRecord(
                courier_id=courier_id,
                shard=shard,
                status=status,
                capacity=int(update["capacity"]),
                vehicle=str(update["vehicle"]),
                status_ts_ms=int(update["status_ts_ms"]),
                shift_start_ts_ms=int(update["status_ts_ms"]),
                shift_end_ts_ms=update.get("shift_end_ts_ms"),
            )
        else:
            current = replace(
                current,
                status=status,
                capacity=int(update["capacity"]),
                vehicle=str(update["vehicle"]),
                status_ts_ms=int(update["status_ts_ms"]),
                shift_end_ts_ms=update.get("shift_end_ts_ms"),
                shift_start_ts_ms=(
                    int(update["status_ts_ms"])
                    if status == "online" and not was_online
                    else current.shift_start_ts_ms
                ),
            )
        if kind == "arrived":
            # Back in a shard it was leaving: it stays. From another shard: wait for its handover.
            current = replace(current, leaving_to=None)
            if update.get("from_shard"):
                current = replace(current, awaiting_epoch=max(current.awaiting_epoch, epoch))
        elif kind == "handover":
            current = replace(current, released_epoch=max(current.released_epoch, epoch))
        self.state.put_courier(current)
        if status != "online" and was_online:
            self.releases.release_courier(
                current, "courier_offline", ts_ms, effects, committed=True
            )
        return effects

    # ------------------------------------------------------------------ responses
    def on_response(self, event: Event, source: Source) -> Effects:
        """Apply a courier's answer to a proposal."""
        self.state.ensure_indexed()
        effects = Effects()
        decision = self.state.decision(str(event["decision_id"]))
        ts_ms = int(event["ts_ms"])
        if decision is None:
            effects.reject(
                source,
                EventRejected(
                    RejectReason.UNKNOWN_ID, f"unknown decision {event['decision_id']!r}"
                ),
            )
            return effects
        if decision.shard != event["shard"]:
            message = (
                f"decision {decision.decision_id} was made in shard {decision.shard}, "
                f"not {event['shard']}"
            )
            effects.reject(source, EventRejected(RejectReason.WRONG_SHARD, message))
            return effects
        if decision.courier_id != event["courier_id"]:
            message = (
                f"decision {decision.decision_id} was offered to {decision.courier_id}, "
                f"not {event['courier_id']}"
            )
            effects.reject(source, EventRejected(RejectReason.INVALID_TRANSITION, message))
            return effects
        response_id = str(event["event_id"])
        if response_id in decision.responses or decision.status is not DecisionStatus.PROPOSED:
            # Read again (a restart after its state was stored): what it committed is sent
            # again, in case the first announcement was lost; nothing is decided again.
            self.proposals.announce_again(decision, response_id, effects)
            self.telemetry.stale_response()
            return effects
        decision = replace(decision, responses=(*decision.responses, response_id))
        self.state.put_decision(decision)
        effects.applied = True
        accepted = event["response"] != "decline"
        self.proposals.answer(decision, accepted, ts_ms, self.generation, effects, response_id)
        return effects

    # ------------------------------------------------------------------ control
    def on_control(self, event: Event, source: Source) -> Effects:
        """Store policy flags for a shard (or `*`, every shard)."""
        control = ShardControl(
            shard=str(event["shard"]),
            policy_version=str(event["policy_version"]),
            ts_ms=int(event["ts_ms"]),
            event_id=str(event["event_id"]),
            batching_enabled=event.get("batching_enabled"),
            max_detour_s=event.get("max_detour_s"),
            weights={str(k): float(v) for k, v in (event.get("weights") or {}).items()},
        )
        effects = Effects()
        try:
            _apply_control(self.config.policy, control)
        except PolicyError as exc:
            message = f"policy flags out of range: {exc}"
            effects.reject(source, EventRejected(RejectReason.SCHEMA_INVALID, message))
            return effects
        current = self.state.control(control.shard)
        if current is None or (control.ts_ms, control.event_id) > (current.ts_ms, current.event_id):
            self.state.put_control(control)
        return effects

    def policy_for(self, shard: str) -> tuple[Policy, str]:
        """The policy in force for `shard`, and its version (base name plus control versions).

        Controls for `*` apply first, then the shard's own; a stored control the policy cannot
        take (only possible for controls stored by older versions) is ignored.
        """
        policy = self.config.policy
        version = policy.name
        for key in ("*", shard):
            control = self.state.control(key)
            if control is None:
                continue
            try:
                policy = _apply_control(policy, control)
            except PolicyError:
                continue
            version = f"{version}+{control.policy_version}"
        return policy, version

    # ------------------------------------------------------------------ ticks
    def on_tick(self, event: Event, source: Source | None = None) -> Effects:
        """One shard's tick: expiries, then a decision, ETA updates and surge.

        With the tick record's `source`, events parked in its partition for an order that did
        not appear within `orphan_ttl_s` of ticks are dead-lettered (`unknown_id`), however
        quiet the partition's order topics are.
        """
        self.state.ensure_indexed()
        effects = Effects()
        shard = str(event["shard"])
        now_ms = int(event["ts_ms"])
        if source is not None:
            for order_id in self.state.orphan_index.tick(source.partition, now_ms):
                self.state.note_orphans_tick(order_id, now_ms)
            self._expire_orphans(source, effects, by_ticks=True)
        ticks = self._ticks[shard] = self._ticks.get(shard, 0) + 1
        self.releases.expire_leases(shard, now_ms, effects)
        self.releases.expire_orders(shard, now_ms, effects, str(event["event_id"]))
        policy, version = self.policy_for(shard)
        inputs = self.tick_inputs(source.partition if source is not None else None, now_ms)
        built = build_snapshot(
            self.state, self.positions, self.config, self.predictor, shard, now_ms, inputs
        )
        decisions, breaker, duration_s = self.breaker.decide(shard, built.snapshot, policy)
        proposed = self.proposals.propose(built, decisions, version, self.generation, effects)
        if ticks % self.config.eta_update_every_ticks == 0:
            margin_ms = int(self.calibrator.margin_s * 1000)
            model = self.versioned.version
            eta_updates(self.state, self.config, shard, now_ms, margin_ms, model, effects)
        if ticks % self.config.surge_every_ticks == 0:
            idle = [
                self.positions.get(c.courier_id)
                for c in self.state.couriers(shard)
                if c.dispatchable and not c.route
            ]
            found = [p for p in idle if p is not None]
            for update in self.surge.updates(built, found, inputs.zone_supply_demand):
                effects.emit(SURGE_UPDATES, shard, update)
        self.telemetry.tick(shard, duration_s, proposed, breaker)
        return effects

    # ------------------------------------------------------------------ request-time ranking
    def ticks(self, shard: str) -> int:
        """How many ticks of `shard` this engine has handled."""
        return self._ticks.get(shard, 0)

    def rank_view(self, shard: str) -> RankView:
        """The ranking view of `shard` as its state is now (see `dispatch.live.rank_view`).

        Its policy is the shard's (`policy_for`) pricing `config.rank_candidates` candidates.
        """
        self.state.ensure_indexed()
        policy, _ = self.policy_for(shard)
        candidates = self.config.rank_candidates
        policy = policy.replace(
            max_candidates=candidates, min_candidates=min(policy.min_candidates, candidates)
        )
        return build_rank_view(self.state, self.positions, self.config, policy, shard)


def _apply_control(policy: Policy, control: ShardControl) -> Policy:
    """`policy` with `control`'s flags; raises `PolicyError` for values it cannot take."""
    changes: dict[str, object] = {}
    if control.batching_enabled is not None:
        changes["bundling"] = control.batching_enabled
    if control.max_detour_s is not None:
        changes["max_detour_s"] = control.max_detour_s
    known = {f for f in policy.__dataclass_fields__ if f.startswith("w_")}
    unknown = sorted(set(control.weights) - known)
    if unknown:
        names = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise PolicyError(f"unknown weights {names} (known: {', '.join(sorted(known))})")
    changes.update(control.weights)
    return policy.replace(**changes)
