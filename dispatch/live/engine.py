"""The live shard engine: every shard-keyed input, one event at a time, to state and outputs.

Inputs (all keyed by shard, so one worker owns all of a shard's state): order and merchant and
delivery events, courier state updates from the courier directory, courier responses to offers,
policy flags, and ticks. State lives in typed key-value views (`KV`) that the stream layer backs
with changelogged tables and a simulation backs with dicts; positions come from a `PositionView`.
Outputs are returned as `Effects` for the caller to produce.

The decision lifecycle:

1. a tick snapshots the shard and calls `dispatch.engine.decide` (or the greedy policy when the
   tick would overrun its budget: the circuit breaker);
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
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from contracts.geo import decode_center, encode_many, project_m
from contracts.pings import PingColumns
from contracts.positions import encode_position_batch
from contracts.rejections import EventRejected, RejectReason
from contracts.schemas import SCHEMA_VERSION
from contracts.tracing import trace_header_for
from contracts.validation import Event
from dispatch.decisions import Assignment, Decisions
from dispatch.engine import RankedCourier, decide, rank
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
from dispatch.live.effects import Effects
from dispatch.live.eta import LegPredictor, RouteCalibrator, ShardEta, StraightLinePredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import OrphanIndex, Orphans, ParkedRecord
from dispatch.live.records import (
    CourierRecord,
    DecisionRecord,
    DecisionStatus,
    Phase,
    RouteStop,
    ShardControl,
    courier_key,
)
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, Policy, PolicyError
from dispatch.snapshot import (
    NO_PICKUP,
    OPEN,
    CourierTable,
    OrderTable,
    ServiceTimes,
    Snapshot,
)

PROPOSED_TOPIC = "assignment_proposed"
COMMITTED_TOPIC = "assignment_committed"
RELEASED_TOPIC = "assignment_released"
ETA_TOPIC = "eta_updates"
SURGE_TOPIC = "surge_updates"
POSITIONS_TOPIC = "courier_positions"
STATE_UPDATES_TOPIC = "courier_state_updates"
_ORDER_TOPICS = ("order_events", "merchant_ready", "delivery_events")
#: Smallest tick (orders × couriers) whose duration teaches the circuit breaker its cost rate.
_MIN_RATE_SIZE = 2_000


class Position(Protocol):
    """A courier's latest fix."""

    @property
    def courier_id(self) -> str:
        """The courier."""
        ...

    @property
    def lat(self) -> float:
        """Latitude, degrees."""
        ...

    @property
    def lon(self) -> float:
        """Longitude, degrees."""
        ...

    @property
    def ts_ms(self) -> int:
        """Fix time, epoch ms."""
        ...


class PositionView(Protocol):
    """Latest positions of the couriers this worker holds."""

    def get(self, courier_id: str) -> Position | None:
        """The courier's latest position, or None."""
        ...


class Telemetry(Protocol):
    """Where the engine reports what it did (metrics in the stream layer, counters in tests)."""

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:
        """One tick of `shard` decided `assignments` in `duration_s`; `breaker`: greedy used."""

    def released(self, reason: str) -> None:
        """A proposal or commitment was released for `reason`."""

    def committed(self) -> None:
        """A proposal was accepted and committed."""

    def stale_response(self) -> None:
        """A response arrived for a proposal that is no longer open."""

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:
        """A delivered order's realized time against its announced ETA."""


class NullTelemetry:
    """Telemetry that records nothing."""

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:  # noqa: D102
        return

    def released(self, reason: str) -> None:  # noqa: D102
        return

    def committed(self) -> None:  # noqa: D102
        return

    def stale_response(self) -> None:  # noqa: D102
        return

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:  # noqa: D102
        return


@dataclass(frozen=True)
class EngineConfig:
    """Tunables of live dispatch (times in seconds unless named otherwise)."""

    tick_s: float = 2.0
    tick_budget_s: float = 0.5
    lease_s: float = 30.0
    cooldown_s: float = 300.0
    max_order_age_s: float = 3600.0
    default_prep_s: float = 900.0
    default_promise_s: float = 2700.0
    position_max_age_s: float = 120.0
    default_shift_s: float = 8 * 3600.0
    service: ServiceTimes = field(
        default_factory=lambda: ServiceTimes(pickup_s=120.0, dropoff_s=120.0)
    )
    policy: Policy = field(default_factory=lambda: DEFAULT_POLICY.replace(reposition=False))
    orphan_ttl_s: float = 300.0
    eta_update_every_ticks: int = 5
    eta_update_min_change_s: float = 60.0
    eta_refresh_s: float = 120.0
    surge_every_ticks: int = 5
    surge_zone_precision: int = 6
    surge_max: float = 3.0
    surge_smoothing: float = 0.5
    eta_coverage: float = 0.9

    def __post_init__(self) -> None:
        for name in ("tick_s", "lease_s", "max_order_age_s", "default_promise_s"):
            if not getattr(self, name) > 0:
                msg = f"{name} must be positive"
                raise ValueError(msg)
        if self.eta_update_every_ticks < 1 or self.surge_every_ticks < 1:
            msg = "eta_update_every_ticks and surge_every_ticks must be at least 1"
            raise ValueError(msg)


@dataclass
class ShardStores:
    """The engine's state, one typed view per table."""

    orders: KV[OrderState]
    couriers: KV[CourierRecord]
    decisions: KV[DecisionRecord]
    controls: KV[ShardControl]
    orphans: KV[Orphans]


def _event(event_type: str, event_id: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "v": SCHEMA_VERSION,
        "ts_ms": int(ts_ms),
        **fields,
    }


def _decision_event(
    event_type: str,
    event_id: str,
    ts_ms: int,
    decision: DecisionRecord,
    order_ids: Sequence[str],
    **fields: Any,
) -> dict[str, Any]:
    """An event about `order_ids` of `decision`: its id, shard, generation and courier first."""
    return _event(
        event_type,
        event_id,
        ts_ms,
        decision_id=decision.decision_id,
        shard=decision.shard,
        shard_generation=decision.generation,
        order_ids=list(order_ids),
        courier_id=decision.courier_id,
        **fields,
    )


def order_trace(order: OrderState, event: dict[str, Any]) -> str:
    """The `traceparent` of `event`, a record about `order`: it continues the order's trace."""
    source = order.created_source
    parent = source.traceparent if source is not None else None
    return trace_header_for(parent, order.order_id, str(event["event_id"]))


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
    ) -> None:
        self.stores = stores
        self.positions = positions
        self.config = config or EngineConfig()
        self.predictor: LegPredictor = (
            predictor if predictor is not None else StraightLinePredictor()
        )
        self.telemetry: Telemetry = telemetry or NullTelemetry()
        self._clock = clock
        self.generation = 0
        self.calibrator = RouteCalibrator(coverage=self.config.eta_coverage)
        self.orphan_index = OrphanIndex()
        self._indexed = False
        self._live_orders: dict[str, set[str]] = defaultdict(set)
        self._couriers: dict[str, set[str]] = defaultdict(set)
        # Every courier record of this worker's partitions, decoded and written through (this
        # engine is the records' only writer); loaded with the other indices.
        self._records: dict[str, CourierRecord] = {}
        self._proposals: dict[str, set[str]] = defaultdict(set)
        self._ticks: dict[str, int] = defaultdict(int)
        self._cost_rate: dict[str, float] = {}
        self._surge: dict[str, float] = {}
        self._surge_sent: dict[str, float] = {}

    # ------------------------------------------------------------------ indices
    def reset(self, generation: int) -> None:
        """Forget in-memory indices (after a rebalance) and adopt the new shard generation."""
        self.generation = generation
        self._indexed = False
        self._records.clear()
        self.orphan_index.reset()

    def _ensure_indexed(self) -> None:
        if self._indexed:
            return
        self._live_orders.clear()
        self._couriers.clear()
        self._records.clear()
        self._proposals.clear()
        for order_id, order in self.stores.orders.items():
            if order.dispatch.phase is not Phase.DONE:
                self._live_orders[order.shard].add(order_id)
        for key, courier in self.stores.couriers.items():
            self._records[key] = courier
            self._couriers[courier.shard].add(courier.courier_id)
        for decision_id, decision in self.stores.decisions.items():
            if decision.status is DecisionStatus.PROPOSED:
                self._proposals[decision.shard].add(decision_id)
        self.orphan_index.load([o for _, o in self.stores.orphans.items()])
        self._indexed = True

    def _put_order(self, order: OrderState) -> None:
        self.stores.orders.put(order.order_id, order)
        if order.dispatch.phase is Phase.DONE:
            self._live_orders[order.shard].discard(order.order_id)
        else:
            self._live_orders[order.shard].add(order.order_id)

    def _put_courier(self, courier: CourierRecord) -> None:
        key = courier_key(courier.shard, courier.courier_id)
        self.stores.couriers.put(key, courier)
        self._records[key] = courier
        self._couriers[courier.shard].add(courier.courier_id)

    def _courier(self, shard: str, courier_id: str | None) -> CourierRecord | None:
        """The courier's record in `shard`, or None."""
        if not courier_id:
            return None
        self._ensure_indexed()
        return self._records.get(courier_key(shard, courier_id))

    def holds(self, shard: str, courier_id: str) -> bool:
        """True if `shard` holds the courier (a record there, not leaving it)."""
        courier = self._courier(shard, courier_id)
        return courier is not None and courier.leaving_to is None

    def _delete_courier(self, shard: str, courier_id: str) -> None:
        key = courier_key(shard, courier_id)
        self.stores.couriers.delete(key)
        self._records.pop(key, None)
        self._couriers[shard].discard(courier_id)

    def _hand_over_if_free(self, courier: CourierRecord, ts_ms: int, effects: Effects) -> None:
        """A courier that left its shard is handed to the new one once it holds no work here."""
        if courier.leaving_to is None or not courier.idle_here:
            return
        self._delete_courier(courier.shard, courier.courier_id)
        effects.emit(
            STATE_UPDATES_TOPIC,
            courier.leaving_to,
            _handover(courier, courier.leaving_to, courier.leaving_epoch, ts_ms),
        )

    def _put_decision(self, decision: DecisionRecord) -> None:
        self.stores.decisions.put(decision.decision_id, decision)
        if decision.status is DecisionStatus.PROPOSED:
            self._proposals[decision.shard].add(decision.decision_id)
        else:
            self._proposals[decision.shard].discard(decision.decision_id)

    def shards(self) -> list[str]:
        """Shards with live orders or couriers in this worker's partitions."""
        self._ensure_indexed()
        known = {s for s, ids in self._live_orders.items() if ids}
        known |= {s for s, ids in self._couriers.items() if ids}
        return sorted(known)

    # ------------------------------------------------------------------ order events
    def on_order_event(self, event: Event, source: Source) -> Effects:
        """Apply a validated order, merchant or delivery event."""
        self._ensure_indexed()
        effects = Effects()
        order_id = str(event["order_id"])
        partition = source.partition
        self.orphan_index.observe(partition, source.topic, int(event["ts_ms"]))
        before = self.stores.orders.get(order_id)
        try:
            update = apply_order_event(before, event, source)
        except AlreadyApplied:
            return effects
        except EventRejected as exc:
            if exc.reason is not RejectReason.UNKNOWN_ID:
                raise
            self._park(event, source, effects)
            self._expire_orphans(partition, effects)
            return effects
        if update.rejected is not None:
            effects.reject(source, update.rejected)
        effects.applied = update.rejected is None
        self._reject_evicted(update.evicted, effects)
        after = update.state
        if event["type"] == "order_created" and update.rejected is None:
            after = self._adopt(after, effects)
        after = self._dispatch_effects(before, after, int(event["ts_ms"]), effects)
        self._put_order(after)
        self._expire_orphans(partition, effects)
        return effects

    def _reject_evicted(
        self, evicted: Sequence[tuple[OrderEvent, EventRejected]], effects: Effects
    ) -> None:
        for event, error in evicted:
            if event.source is not None:
                effects.reject(event.source, error)

    def _park(self, event: Event, source: Source, effects: Effects) -> None:
        order_id = str(event["order_id"])
        current = self.stores.orphans.get(order_id) or Orphans(
            order_id, source.partition, int(event["ts_ms"]), ()
        )
        if any(source.same_record(r.source) for r in current.records):
            return
        if len(current.records) >= MAX_ORDER_EVENTS:
            message = f"{MAX_ORDER_EVENTS} events already wait for order {order_id!r}"
            effects.reject(source, EventRejected(RejectReason.TOO_MANY_EVENTS, message))
            return
        updated = current.add(ParkedRecord(event, source))
        self.stores.orphans.put(order_id, updated)
        self.orphan_index.add(source.partition, order_id, updated.first_seen_ts_ms)

    def _adopt(self, state: OrderState, effects: Effects) -> OrderState:
        parked = self.stores.orphans.get(state.order_id)
        if parked is None:
            return state
        outcome = apply_parked(state, [(r.event, r.source) for r in parked.records])
        state = outcome.state
        for i, error in outcome.rejected:
            effects.reject(parked.records[i].source, error)
        self._reject_evicted(outcome.evicted, effects)
        effects.adopted.extend(parked.records[i].event for i in outcome.accepted)
        self.stores.orphans.delete(state.order_id)
        self.orphan_index.discard(parked.partition, state.order_id)
        return state

    def _expire_orphans(self, partition: int, effects: Effects) -> None:
        ttl_ms = int(self.config.orphan_ttl_s * 1000)
        for order_id in self.orphan_index.expired(partition, ttl_ms):
            self.orphan_index.discard(partition, order_id)
            parked = self.stores.orphans.get(order_id)
            if parked is None:
                continue
            self.stores.orphans.delete(order_id)
            message = f"order {order_id!r} was not created within {ttl_ms // 1000} s of this event"
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
                decision = self.stores.decisions.get(dispatch.decision_id)
                if decision is not None:
                    self._release_orders(
                        decision, (after.order_id,), "order_cancelled", ts_ms, effects
                    )
            return replace(after, dispatch=replace(after.dispatch, phase=Phase.DONE))
        if new is OrderStatus.PICKED_UP and old is not OrderStatus.PICKED_UP:
            self._picked_up(after, ts_ms)
        if new is OrderStatus.DELIVERED and old is not OrderStatus.DELIVERED:
            self._delivered(after, ts_ms, effects)
            if dispatch.phase is Phase.PROPOSED and dispatch.decision_id is not None:
                decision = self.stores.decisions.get(dispatch.decision_id)
                if decision is not None:
                    self._release_orders(decision, (after.order_id,), "superseded", ts_ms, effects)
            return replace(after, dispatch=replace(after.dispatch, phase=Phase.DONE))
        return after

    def _picked_up(self, order: OrderState, ts_ms: int) -> None:
        courier = self._courier(order.shard, order.dispatch.courier_id or order.courier_id)
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
        self._put_courier(replace(courier, route=tuple(route), onboard=onboard))

    def _delivered(self, order: OrderState, ts_ms: int, effects: Effects) -> None:
        dispatch = order.dispatch
        courier = self._courier(order.shard, dispatch.courier_id or order.courier_id)
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
            self._put_courier(courier)
            self._hand_over_if_free(courier, ts_ms, effects)
        if dispatch.phase is Phase.COMMITTED and dispatch.decision_id is not None:
            decision = self.stores.decisions.get(dispatch.decision_id)
            if decision is not None and order.order_id in decision.etas:
                p50_s, raw_p90_s, p90_s = decision.etas[order.order_id]
                realized_s = (ts_ms - decision.proposed_ts_ms) / 1000
                self.calibrator.observe(realized_s, raw_p90_s)
                self.telemetry.eta_label(
                    realized_s - p50_s, realized_s <= p90_s, decision.fallback_used
                )

    # ------------------------------------------------------------------ releases
    def _release_orders(
        self,
        decision: DecisionRecord,
        order_ids: Sequence[str],
        reason: str,
        ts_ms: int,
        effects: Effects,
        *,
        cooldown: bool = False,
    ) -> None:
        """Release `order_ids` of `decision` (all of a proposal, or some of a commitment)."""
        if decision.status is DecisionStatus.RELEASED:
            return
        proposal = decision.status is DecisionStatus.PROPOSED
        candidates = (
            decision.order_ids if proposal else [o for o in decision.order_ids if o in order_ids]
        )
        held: list[OrderState] = []
        for order_id in candidates:
            order = self.stores.orders.get(order_id)
            if order is not None and order.dispatch.decision_id == decision.decision_id:
                held.append(order)
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
            self._put_order(replace(order, dispatch=dispatch))
        courier = self._courier(decision.shard, decision.courier_id)
        if courier is not None:
            if courier.lease_decision_id == decision.decision_id:
                courier = replace(courier, lease_decision_id=None, lease_expires_ts_ms=None)
            if not proposal:
                route = tuple(
                    replace(s, order_ids=tuple(o for o in s.order_ids if o not in released))
                    for s in courier.route
                )
                courier = replace(courier, route=tuple(s for s in route if s.order_ids))
            self._put_courier(courier)
            self._hand_over_if_free(courier, ts_ms, effects)
        remaining = tuple(o for o in decision.order_ids if o not in released)
        still_held = [
            o
            for o in remaining
            if (order := self.stores.orders.get(o)) is not None
            and order.dispatch.decision_id == decision.decision_id
        ]
        status = DecisionStatus.RELEASED if proposal or not still_held else decision.status
        self._put_decision(
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
        event = _decision_event(
            "assignment_released",
            f"released:{decision.decision_id}:{reason}:{'.'.join(released)}",
            ts_ms,
            decision,
            released,
            reason=reason,
        )
        effects.emit(RELEASED_TOPIC, decision.shard, event, order_trace(held[0], event))
        self.telemetry.released(reason)

    # ------------------------------------------------------------------ courier updates
    def on_courier_update(self, update: Event) -> Effects:
        """Apply a `courier_state_update` (from the directory, or a handover from a shard)."""
        self._ensure_indexed()
        effects = Effects()
        courier_id = str(update["courier_id"])
        shard = str(update["shard"])
        ts_ms = int(update["ts_ms"])
        kind = str(update["kind"])
        epoch = int(update.get("epoch") or 0)
        current = self._courier(shard, courier_id)
        if kind == "left":
            effects.emit(POSITIONS_TOPIC, shard, left_tombstone(shard, courier_id, ts_ms))
            to_shard = update.get("to_shard")
            if current is None:
                if to_shard:
                    effects.emit(
                        STATE_UPDATES_TOPIC,
                        to_shard,
                        _handover_from(update, to_shard, epoch, ts_ms),
                    )
                return effects
            if current.lease_decision_id is not None:
                self._release_courier(current, "shard_moved", ts_ms, effects, committed=False)
                current = self._courier(shard, courier_id) or current
            current = replace(current, leaving_to=to_shard or shard, leaving_epoch=epoch)
            self._put_courier(current)
            self._hand_over_if_free(current, ts_ms, effects)
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
        self._put_courier(current)
        if status != "online" and was_online:
            self._release_courier(current, "courier_offline", ts_ms, effects, committed=True)
        return effects

    def _release_courier(
        self, courier: CourierRecord, reason: str, ts_ms: int, effects: Effects, *, committed: bool
    ) -> None:
        """Release a courier's open proposal and (if `committed`) its orders not picked up."""
        if courier.lease_decision_id is not None:
            decision = self.stores.decisions.get(courier.lease_decision_id)
            if decision is not None:
                self._release_orders(decision, decision.order_ids, reason, ts_ms, effects)
        if not committed:
            return
        courier = self._courier(courier.shard, courier.courier_id) or courier
        waiting = [
            o
            for stop in courier.route
            if stop.kind == "pickup"
            for o in stop.order_ids
            if o not in courier.onboard
        ]
        by_decision: dict[str, list[str]] = defaultdict(list)
        for order_id in waiting:
            order = self.stores.orders.get(order_id)
            if order is not None and order.dispatch.decision_id is not None:
                by_decision[order.dispatch.decision_id].append(order_id)
        for decision_id in sorted(by_decision):
            decision = self.stores.decisions.get(decision_id)
            if decision is not None:
                self._release_orders(decision, by_decision[decision_id], reason, ts_ms, effects)

    # ------------------------------------------------------------------ responses
    def on_response(self, event: Event, source: Source) -> Effects:
        """Apply a courier's answer to a proposal."""
        self._ensure_indexed()
        effects = Effects()
        decision = self.stores.decisions.get(str(event["decision_id"]))
        ts_ms = int(event["ts_ms"])
        if decision is None:
            effects.reject(
                source,
                EventRejected(
                    RejectReason.UNKNOWN_ID, f"unknown decision {event['decision_id']!r}"
                ),
            )
            return effects
        if decision.courier_id != event["courier_id"]:
            message = (
                f"decision {decision.decision_id} was offered to {decision.courier_id}, "
                f"not {event['courier_id']}"
            )
            effects.reject(source, EventRejected(RejectReason.INVALID_TRANSITION, message))
            return effects
        if (
            str(event["event_id"]) in decision.responses
            or decision.status is not DecisionStatus.PROPOSED
        ):
            self.telemetry.stale_response()
            return effects
        decision = replace(decision, responses=(*decision.responses, str(event["event_id"])))
        self._put_decision(decision)
        effects.applied = True
        if event["response"] == "decline":
            self._release_orders(
                decision, decision.order_ids, "declined", ts_ms, effects, cooldown=True
            )
        elif ts_ms > decision.lease_expires_ts_ms:
            self._release_orders(
                decision, decision.order_ids, "lease_expired", ts_ms, effects, cooldown=True
            )
        elif decision.generation != self.generation:
            self._release_orders(decision, decision.order_ids, "shard_moved", ts_ms, effects)
        else:
            self._commit(decision, ts_ms, effects)
        return effects

    def _commit(self, decision: DecisionRecord, ts_ms: int, effects: Effects) -> None:
        courier = self._courier(decision.shard, decision.courier_id)
        if courier is None or not courier.online:
            self._release_orders(decision, decision.order_ids, "courier_offline", ts_ms, effects)
            return
        new_orders = []
        for order_id in decision.new_order_ids:
            order = self.stores.orders.get(order_id)
            if (
                order is not None
                and order.dispatch.decision_id == decision.decision_id
                and order.dispatch.phase is Phase.PROPOSED
            ):
                new_orders.append(order)
        if not new_orders or courier.spare_capacity < len(new_orders) or courier.leaving_to:
            self._release_orders(decision, decision.order_ids, "superseded", ts_ms, effects)
            return
        # Stops are kept only for orders this courier still holds: the new ones, and (for an
        # extension) pending ones not cancelled, delivered or moved meanwhile.
        pending = {o for s in courier.route if s.kind == "pickup" for o in s.order_ids}
        keep = {o.order_id for o in new_orders} | (pending - set(courier.onboard))
        planned = tuple(
            replace(s, order_ids=tuple(o for o in s.order_ids if o in keep)) for s in decision.route
        )
        planned = tuple(s for s in planned if s.order_ids)
        bundle = set(decision.order_ids)
        if decision.updates_pending:
            # The decision re-plans the pending pickup and its drop-offs: swap those stops.
            replaced = [i for i, stop in enumerate(courier.route) if set(stop.order_ids) <= bundle]
            at = replaced[0] if replaced else 0
            kept = [stop for i, stop in enumerate(courier.route) if i not in replaced]
            route = (*kept[:at], *planned, *kept[at:])
        else:
            route = (*courier.route, *planned)
        self._put_courier(
            replace(courier, route=route, lease_decision_id=None, lease_expires_ts_ms=None)
        )
        margin_ms = int(self.calibrator.margin_s * 1000)
        committed_ids = tuple(o.order_id for o in new_orders)
        for order in new_orders:
            dispatch = replace(order.dispatch, phase=Phase.COMMITTED)
            stop = next(
                (s for s in planned if s.kind == "dropoff" and order.order_id in s.order_ids), None
            )
            if stop is not None:
                p50 = max(ts_ms, stop.planned_ts_ms)
                p90 = max(p50, stop.p90_ts_ms + margin_ms)
                dispatch = replace(
                    dispatch, eta_p50_ts_ms=p50, eta_p90_ts_ms=p90, eta_sent_ts_ms=ts_ms
                )
                eta = self._eta_event(order.order_id, decision.shard, ts_ms, p50, p90)
                effects.emit(ETA_TOPIC, decision.shard, eta, order_trace(order, eta))
            self._put_order(replace(order, dispatch=dispatch))
        self._put_decision(replace(decision, status=DecisionStatus.COMMITTED, resolved_ts_ms=ts_ms))
        event = _decision_event(
            "assignment_committed",
            f"committed:{decision.decision_id}",
            ts_ms,
            decision,
            committed_ids,
            route=_route_json(planned),
            policy_version=decision.policy_version,
            model_version=decision.model_version,
        )
        effects.emit(COMMITTED_TOPIC, decision.shard, event, order_trace(new_orders[0], event))
        self.telemetry.committed()

    def _eta_event(
        self, order_id: str, shard: str, now_ms: int, p50: int, p90: int
    ) -> dict[str, Any]:
        return _event(
            "eta_update",
            f"eta:{order_id}:{now_ms}",
            now_ms,
            order_id=order_id,
            shard=shard,
            dropoff_p50_ts_ms=p50,
            dropoff_p90_ts_ms=p90,
            fallback_used=False,
            fallback_reason=None,
            model_version=self.predictor.version,
        )

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
        current = self.stores.controls.get(control.shard)
        if current is None or (control.ts_ms, control.event_id) > (current.ts_ms, current.event_id):
            self.stores.controls.put(control.shard, control)
        return effects

    def policy_for(self, shard: str) -> tuple[Policy, str]:
        """The policy in force for `shard`, and its version (base name plus control versions).

        Controls for `*` apply first, then the shard's own; a stored control the policy cannot
        take (only possible for controls stored by older versions) is ignored.
        """
        policy = self.config.policy
        version = policy.name
        for key in ("*", shard):
            control = self.stores.controls.get(key)
            if control is None:
                continue
            try:
                policy = _apply_control(policy, control)
            except PolicyError:
                continue
            version = f"{version}+{control.policy_version}"
        return policy, version

    # ------------------------------------------------------------------ ticks
    def on_tick(self, event: Event) -> Effects:
        """One shard's tick: expiries, then a decision, ETA updates and surge."""
        self._ensure_indexed()
        effects = Effects()
        shard = str(event["shard"])
        now_ms = int(event["ts_ms"])
        self._ticks[shard] += 1
        self._expire_leases(shard, now_ms, effects)
        self._expire_orders(shard, now_ms, effects)
        policy, version = self.policy_for(shard)
        built = self._snapshot(shard, now_ms)
        decisions, breaker, duration_s = self._decide(shard, built.snapshot, policy)
        decisions = self._respect_cooldowns(now_ms, built, decisions, policy)
        proposed = self._propose(shard, now_ms, built, decisions, version, effects)
        if self._ticks[shard] % self.config.eta_update_every_ticks == 0:
            self._eta_updates(shard, now_ms, effects)
        if self._ticks[shard] % self.config.surge_every_ticks == 0:
            self._surge_updates(shard, now_ms, built, effects)
        self.telemetry.tick(shard, duration_s, proposed, breaker)
        return effects

    def _expire_leases(self, shard: str, now_ms: int, effects: Effects) -> None:
        for decision_id in sorted(self._proposals[shard]):
            decision = self.stores.decisions.get(decision_id)
            if decision is None or decision.status is not DecisionStatus.PROPOSED:
                self._proposals[shard].discard(decision_id)
                continue
            if decision.lease_expires_ts_ms <= now_ms:
                self._release_orders(
                    decision, decision.order_ids, "lease_expired", now_ms, effects, cooldown=True
                )

    def _expire_orders(self, shard: str, now_ms: int, effects: Effects) -> None:
        max_age_ms = int(self.config.max_order_age_s * 1000)
        for order_id in sorted(self._live_orders[shard]):
            order = self.stores.orders.get(order_id)
            if order is None:
                continue
            if order.status.terminal:
                self._put_order(replace(order, dispatch=replace(order.dispatch, phase=Phase.DONE)))
                continue
            if order.dispatch.phase is Phase.OPEN and now_ms - order.placed_ts_ms > max_age_ms:
                reason = "max_age"
                self._put_order(
                    replace(
                        order,
                        dispatch=replace(order.dispatch, phase=Phase.DONE, expired_reason=reason),
                    )
                )
                event = _event(
                    "order_expired",
                    f"expired:{order_id}",
                    now_ms,
                    order_id=order_id,
                    shard=shard,
                    reason=reason,
                    detail=f"no courier committed within {max_age_ms // 1000} s of placement",
                )
                effects.emit(RELEASED_TOPIC, shard, event, order_trace(order, event))

    # ------------------------------------------------------------------ snapshot
    def _snapshot(self, shard: str, now_ms: int) -> _Built:
        origin = decode_center(shard)
        config = self.config
        couriers: list[CourierRecord] = []
        for courier_id in sorted(self._couriers[shard]):
            courier = self._courier(shard, courier_id)
            if courier is None or not courier.dispatchable:
                continue
            couriers.append(courier)
        rows_c: list[tuple[CourierRecord, float, float, int, int, list[str]]] = []
        max_age_ms = int(config.position_max_age_s * 1000)
        for courier in couriers:
            pending: list[str] = []
            pending_ts = NO_PICKUP
            if courier.route:
                pickups = [s for s in courier.route if s.kind == "pickup"]
                if len(pickups) == 1 and courier.route[0].kind == "pickup":
                    pending = list(pickups[0].order_ids)
                    pending_ts = pickups[0].planned_ts_ms
                last = courier.route[-1]
                lat, lon = last.lat, last.lon
                free_ts = max(now_ms, last.planned_ts_ms + int(config.service.dropoff_s * 500))
            else:
                position = self.positions.get(courier.courier_id)
                if position is None or now_ms - position.ts_ms > max_age_ms:
                    continue
                lat, lon, free_ts = position.lat, position.lon, now_ms
            rows_c.append((courier, lat, lon, free_ts, pending_ts, pending))
        courier_row = {c.courier_id: i for i, (c, *_rest) in enumerate(rows_c)}
        orders: list[OrderState] = []
        order_courier: list[int] = []
        order_sequence: list[int] = []
        for order_id in sorted(self._live_orders[shard]):
            order = self.stores.orders.get(order_id)
            if order is None or order.status.terminal or order.status is OrderStatus.PICKED_UP:
                continue
            if order.dispatch.phase is Phase.OPEN:
                orders.append(order)
                order_courier.append(OPEN)
                order_sequence.append(-1)
        for row, (courier, *_rest, pending) in enumerate(rows_c):
            dropoffs = [o for s in courier.route if s.kind == "dropoff" for o in s.order_ids]
            for order_id in pending:
                order = self.stores.orders.get(order_id)
                if order is None:
                    continue
                orders.append(order)
                order_courier.append(row)
                order_sequence.append(dropoffs.index(order_id) if order_id in dropoffs else 0)
        n = len(orders)
        pickup_xy = np.array(
            project_m([o.pickup_lat for o in orders], [o.pickup_lon for o in orders], *origin)
        ).T.reshape(n, 2)
        dropoff_xy = np.array(
            project_m([o.dropoff_lat for o in orders], [o.dropoff_lon for o in orders], *origin)
        ).T.reshape(n, 2)
        order_table = OrderTable(
            order_id=tuple(o.order_id for o in orders),
            merchant_id=tuple(o.merchant_id for o in orders),
            pickup_xy_m=pickup_xy,
            dropoff_xy_m=dropoff_xy,
            placed_ts_ms=np.array([o.placed_ts_ms for o in orders], dtype=np.int64),
            ready_ts_ms=np.array([self._ready_ts_ms(o) for o in orders], dtype=np.int64),
            promise_ts_ms=np.array(
                [
                    o.promise_ts_ms or o.placed_ts_ms + int(config.default_promise_s * 1000)
                    for o in orders
                ],
                dtype=np.int64,
            ),
            courier_index=np.array(order_courier, dtype=np.int64),
            drop_sequence=np.array(order_sequence, dtype=np.int64),
        )
        m = len(rows_c)
        free_xy = np.array(
            project_m([r[1] for r in rows_c], [r[2] for r in rows_c], *origin)
        ).T.reshape(m, 2)
        courier_table = CourierTable(
            courier_id=tuple(r[0].courier_id for r in rows_c),
            free_xy_m=free_xy,
            free_ts_ms=np.array([r[3] for r in rows_c], dtype=np.int64),
            shift_end_ts_ms=np.array(
                [
                    r[0].shift_end_ts_ms
                    or r[0].shift_start_ts_ms + int(config.default_shift_s * 1000)
                    for r in rows_c
                ],
                dtype=np.int64,
            ),
            spare_capacity=np.array([r[0].spare_capacity for r in rows_c], dtype=np.int64),
            pending_pickup_ts_ms=np.array([r[4] for r in rows_c], dtype=np.int64),
            orders_done=np.array([r[0].orders_done for r in rows_c], dtype=np.int64),
            shift_start_ts_ms=np.array(
                [min(r[0].shift_start_ts_ms, now_ms) for r in rows_c], dtype=np.int64
            ),
        )
        eta = ShardEta(self.predictor, origin[0], origin[1], now_ms)
        snapshot = Snapshot(
            now_ts_ms=now_ms,
            tick_s=config.tick_s,
            orders=order_table,
            couriers=courier_table,
            eta=eta,
            service=config.service,
            shard_id=shard,
        )
        return _Built(snapshot, eta, {o.order_id: o for o in orders}, courier_row)

    def _ready_ts_ms(self, order: OrderState) -> int:
        ready = order.ts("order_ready")
        if ready is None:
            ready = order.estimated_ready_ts_ms
        if ready is None and order.prep_estimate_s is not None:
            ready = order.placed_ts_ms + int(order.prep_estimate_s * 1000)
        if ready is None:
            ready = order.placed_ts_ms + int(self.config.default_prep_s * 1000)
        return max(int(ready), order.placed_ts_ms)

    def _decide(
        self, shard: str, snapshot: Snapshot, policy: Policy
    ) -> tuple[Decisions, bool, float]:
        """Decide with `policy`, or greedily when this tick is predicted to overrun its budget.

        The prediction is the tick's size (orders × couriers) times the seconds per unit of
        size, learned (exponentially averaged) from earlier optimised ticks of at least
        `_MIN_RATE_SIZE`; until such a tick was seen, nothing is predicted. Without a clock the
        breaker is off (simulations stay deterministic).
        """
        size = snapshot.orders.n * snapshot.couriers.m
        rate = self._cost_rate.get(shard)
        breaker = (
            self._clock is not None and rate is not None and rate * size > self.config.tick_budget_s
        )
        started = self._clock() if self._clock is not None else 0.0
        decisions = decide(snapshot, GREEDY_POLICY if breaker else policy)
        duration_s = (self._clock() - started) if self._clock is not None else 0.0
        if not breaker and size >= _MIN_RATE_SIZE:
            observed = duration_s / size
            self._cost_rate[shard] = observed if rate is None else 0.8 * rate + 0.2 * observed
        return decisions, breaker or decisions.fallback_used, duration_s

    def _respect_cooldowns(
        self, now_ms: int, built: _Built, decisions: Decisions, policy: Policy
    ) -> Decisions:
        """Re-decide orders the optimiser gave to a courier they are cooling down from.

        The core does not know cool-downs, so an order declined by a courier may be matched to
        them again; such assignments are dropped and their orders decided once more, without
        the couriers already assigned this tick and without the couriers they cool down from.
        """
        keep: list[Assignment] = []
        blocked: list[Assignment] = []
        for assignment in decisions.assignments:
            orders = [built.orders[o] for o in assignment.new_order_ids if o in built.orders]
            if any(o.dispatch.cooling(assignment.courier_id, now_ms) for o in orders):
                blocked.append(assignment)
            else:
                keep.append(assignment)
        if not blocked:
            return decisions
        snapshot = built.snapshot
        affected = {o for a in blocked for o in a.new_order_ids}
        excluded = {a.courier_id for a in keep}
        for order_id in affected:
            excluded |= {
                c for c, until in built.orders[order_id].dispatch.cooldowns if until > now_ms
            }
        order_rows = [
            i
            for i, order_id in enumerate(snapshot.orders.order_id)
            if order_id in affected and int(snapshot.orders.courier_index[i]) == OPEN
        ]
        courier_rows = [
            j
            for j, courier_id in enumerate(snapshot.couriers.courier_id)
            if courier_id not in excluded
        ]
        second = decide(_subset(snapshot, order_rows, courier_rows), policy)
        return replace(decisions, assignments=(*keep, *second.assignments))

    def _propose(
        self,
        shard: str,
        now_ms: int,
        built: _Built,
        decisions: Decisions,
        version: str,
        effects: Effects,
    ) -> int:
        lease_ms = int(self.config.lease_s * 1000)
        margin_s = self.calibrator.margin_s
        fallback = built.eta.fallbacks > 0
        proposed = 0
        for assignment in decisions.assignments:
            new_orders = [built.orders[o] for o in assignment.new_order_ids if o in built.orders]
            if not new_orders or any(
                o.dispatch.cooling(assignment.courier_id, now_ms) for o in new_orders
            ):
                continue
            courier = self._courier(shard, assignment.courier_id)
            if courier is None or not courier.dispatchable:
                continue
            route = self._route(assignment, built)
            etas: dict[str, tuple[float, float, float]] = {}
            for stop in assignment.stops:
                if stop.kind != "dropoff":
                    continue
                for order_id in stop.order_ids:
                    p50_s = (stop.handover_ts_ms - now_ms) / 1000
                    raw_p90_s = (stop.handover_p90_ts_ms - now_ms) / 1000
                    etas[order_id] = (p50_s, raw_p90_s, max(p50_s, raw_p90_s + margin_s))
            record = DecisionRecord(
                decision_id=assignment.decision_id,
                shard=shard,
                generation=self.generation,
                courier_id=assignment.courier_id,
                order_ids=assignment.order_ids,
                new_order_ids=tuple(o.order_id for o in new_orders),
                updates_pending=assignment.updates_pending,
                status=DecisionStatus.PROPOSED,
                proposed_ts_ms=now_ms,
                lease_expires_ts_ms=now_ms + lease_ms,
                route=route,
                etas=etas,
                cost=assignment.cost,
                terms=dict(assignment.explanation.terms),
                runner_up_courier_id=assignment.explanation.runner_up_courier_id,
                runner_up_cost=assignment.explanation.runner_up_cost,
                reason=assignment.explanation.reason,
                policy_version=version,
                model_version=self.predictor.version,
                fallback_used=fallback,
            )
            self._put_decision(record)
            self._put_courier(
                replace(
                    courier,
                    lease_decision_id=record.decision_id,
                    lease_expires_ts_ms=record.lease_expires_ts_ms,
                )
            )
            for order in new_orders:
                p50_s, _, p90_s = etas.get(order.order_id, (math.nan, math.nan, math.nan))
                dispatch = replace(
                    order.dispatch,
                    phase=Phase.PROPOSED,
                    decision_id=record.decision_id,
                    courier_id=record.courier_id,
                    eta_p50_ts_ms=now_ms + int(p50_s * 1000) if math.isfinite(p50_s) else None,
                    eta_p90_ts_ms=now_ms + int(p90_s * 1000) if math.isfinite(p90_s) else None,
                )
                self._put_order(replace(order, dispatch=dispatch))
            event = self._proposal_event(record, etas, fallback)
            effects.emit(PROPOSED_TOPIC, shard, event, order_trace(new_orders[0], event))
            proposed += 1
        return proposed

    def _route(self, assignment: Assignment, built: _Built) -> tuple[RouteStop, ...]:
        stops = []
        for stop in assignment.stops:
            ids = tuple(stop.order_ids)
            first = self.stores.orders.get(ids[0]) if ids else None
            if first is None:
                continue
            lat, lon = (
                (first.pickup_lat, first.pickup_lon)
                if stop.kind == "pickup"
                else (first.dropoff_lat, first.dropoff_lon)
            )
            stops.append(
                RouteStop(stop.kind, ids, lat, lon, stop.handover_ts_ms, stop.handover_p90_ts_ms)
            )
        return tuple(stops)

    def _proposal_event(
        self, record: DecisionRecord, etas: dict[str, tuple[float, float, float]], fallback: bool
    ) -> dict[str, Any]:
        return _event(
            "assignment_proposed",
            f"proposed:{record.decision_id}",
            record.proposed_ts_ms,
            decision_id=record.decision_id,
            shard=record.shard,
            shard_generation=record.generation,
            order_ids=list(record.new_order_ids),
            courier_id=record.courier_id,
            lease_expires_ts_ms=record.lease_expires_ts_ms,
            route=_route_json(record.route),
            etas={
                o: {
                    "p50_s": round(v[0], 1),
                    "p90_s": round(v[2], 1),
                    "fallback_used": fallback,
                    "fallback_reason": "model" if fallback else None,
                }
                for o, v in sorted(etas.items())
            },
            cost=round(record.cost, 4),
            explanation={
                "terms": {k: round(v, 4) for k, v in record.terms.items()},
                "runner_up_courier_id": record.runner_up_courier_id,
                "runner_up_cost": None
                if record.runner_up_cost is None
                else round(record.runner_up_cost, 4),
            },
            model_version=record.model_version,
            policy_version=record.policy_version,
        )

    # ------------------------------------------------------------------ ETA and surge updates
    def _eta_updates(self, shard: str, now_ms: int, effects: Effects) -> None:
        """An `eta_update` for each committed order whose ETA moved, or that was silent too long."""
        min_change_ms = int(self.config.eta_update_min_change_s * 1000)
        refresh_ms = int(self.config.eta_refresh_s * 1000)
        margin_ms = int(self.calibrator.margin_s * 1000)
        for order_id in sorted(self._live_orders[shard]):
            order = self.stores.orders.get(order_id)
            if (
                order is None
                or order.dispatch.phase is not Phase.COMMITTED
                or order.status.terminal
            ):
                continue
            courier = self._courier(shard, order.dispatch.courier_id)
            stop = next(
                (
                    s
                    for s in (courier.route if courier else ())
                    if s.kind == "dropoff" and order_id in s.order_ids
                ),
                None,
            )
            if stop is None:
                continue
            p50 = max(now_ms, stop.planned_ts_ms)
            p90 = max(p50, stop.p90_ts_ms + margin_ms)
            last = order.dispatch.eta_p50_ts_ms
            sent = order.dispatch.eta_sent_ts_ms
            moved = last is None or abs(last - p50) >= min_change_ms
            stale = sent is None or now_ms - sent >= refresh_ms
            if not (moved or stale):
                continue
            dispatch = replace(
                order.dispatch, eta_p50_ts_ms=p50, eta_p90_ts_ms=p90, eta_sent_ts_ms=now_ms
            )
            self._put_order(replace(order, dispatch=dispatch))
            eta = self._eta_event(order_id, shard, now_ms, p50, p90)
            effects.emit(ETA_TOPIC, shard, eta, order_trace(order, eta))

    def _surge_updates(self, shard: str, now_ms: int, built: _Built, effects: Effects) -> None:
        precision = self.config.surge_zone_precision
        open_rows = built.snapshot.orders.courier_index == OPEN
        orders = [
            o
            for o, is_open in zip(built.orders.values(), open_rows.tolist(), strict=True)
            if is_open
        ]
        demand: dict[str, int] = defaultdict(int)
        if orders:
            zones = encode_many(
                np.array([o.pickup_lat for o in orders]),
                np.array([o.pickup_lon for o in orders]),
                precision,
            )
            for zone in zones.tolist():
                demand[zone] += 1
        supply: dict[str, int] = defaultdict(int)
        idle = [
            self.positions.get(c.courier_id)
            for c in (self._courier(shard, cid) for cid in sorted(self._couriers[shard]))
            if c is not None and c.dispatchable and not c.route
        ]
        idle_positions = [p for p in idle if p is not None]
        if idle_positions:
            zones = encode_many(
                np.array([p.lat for p in idle_positions]),
                np.array([p.lon for p in idle_positions]),
                precision,
            )
            for zone in zones.tolist():
                supply[zone] += 1
        alpha = self.config.surge_smoothing
        for zone in sorted(set(demand) | set(self._surge) | set(supply)):
            if not zone.startswith(shard):
                continue
            ratio = demand.get(zone, 0) / (supply.get(zone, 0) + 1)
            raw = min(self.config.surge_max, 1.0 + max(0.0, ratio - 1.0) * 0.5)
            smooth = alpha * raw + (1 - alpha) * self._surge.get(zone, 1.0)
            self._surge[zone] = smooth
            sent = self._surge_sent.get(zone)
            if sent is not None and abs(sent - smooth) < 0.05:
                continue
            if sent is None and smooth < 1.05 and not demand.get(zone):
                continue
            self._surge_sent[zone] = round(smooth, 3)
            effects.emit(
                SURGE_TOPIC,
                shard,
                _event(
                    "surge_update",
                    f"surge:{zone}:{now_ms}",
                    now_ms,
                    zone=zone,
                    shard=shard,
                    supply=supply.get(zone, 0),
                    demand=demand.get(zone, 0),
                    multiplier=round(smooth, 3),
                ),
            )

    # ------------------------------------------------------------------ request-time ranking
    def rank(
        self,
        shard: str,
        pickup: tuple[float, float],
        dropoff: tuple[float, float],
        now_ms: int,
        k: int,
        ready_ts_ms: int | None = None,
        promise_ts_ms: int | None = None,
    ) -> tuple[RankedCourier, ...]:
        """Top-`k` couriers of `shard` for one job, with the cost terms `decide` would use."""
        self._ensure_indexed()
        built = self._snapshot(shard, now_ms)
        origin = decode_center(shard)
        pickup_xy = np.array(project_m([pickup[0]], [pickup[1]], *origin)).T.reshape(1, 2)
        dropoff_xy = np.array(project_m([dropoff[0]], [dropoff[1]], *origin)).T.reshape(1, 2)
        request = OrderTable(
            order_id=("request",),
            merchant_id=("request",),
            pickup_xy_m=pickup_xy,
            dropoff_xy_m=dropoff_xy,
            placed_ts_ms=np.array([now_ms]),
            ready_ts_ms=np.array([max(now_ms, ready_ts_ms or now_ms)]),
            promise_ts_ms=np.array(
                [promise_ts_ms or now_ms + int(self.config.default_promise_s * 1000)]
            ),
            courier_index=np.array([OPEN]),
            drop_sequence=np.array([-1]),
        )
        policy, _ = self.policy_for(shard)
        return rank(request, built.snapshot, k, policy)


@dataclass
class _Built:
    snapshot: Snapshot
    eta: ShardEta
    orders: dict[str, OrderState]
    courier_row: dict[str, int]


def _subset(snapshot: Snapshot, order_rows: Sequence[int], courier_rows: Sequence[int]) -> Snapshot:
    """`snapshot` restricted to some open orders and some couriers (with their pending pickups)."""
    orders, couriers = snapshot.orders, snapshot.couriers
    new_index = {old: new for new, old in enumerate(courier_rows)}
    pending = [i for i in range(orders.n) if int(orders.courier_index[i]) in new_index]
    rows = np.array([*order_rows, *pending], dtype=np.int64)
    c_rows = np.array(courier_rows, dtype=np.int64)
    index = np.array(
        [
            OPEN
            if int(orders.courier_index[i]) == OPEN
            else new_index[int(orders.courier_index[i])]
            for i in rows
        ],
        dtype=np.int64,
    )
    sub_orders = OrderTable(
        order_id=tuple(orders.order_id[i] for i in rows),
        merchant_id=tuple(orders.merchant_id[i] for i in rows),
        pickup_xy_m=orders.pickup_xy_m[rows].reshape(len(rows), 2),
        dropoff_xy_m=orders.dropoff_xy_m[rows].reshape(len(rows), 2),
        placed_ts_ms=orders.placed_ts_ms[rows],
        ready_ts_ms=orders.ready_ts_ms[rows],
        promise_ts_ms=orders.promise_ts_ms[rows],
        courier_index=index,
        drop_sequence=orders.drop_sequence[rows],
    )
    sub_couriers = CourierTable(
        courier_id=tuple(couriers.courier_id[j] for j in c_rows),
        free_xy_m=couriers.free_xy_m[c_rows].reshape(len(c_rows), 2),
        free_ts_ms=couriers.free_ts_ms[c_rows],
        shift_end_ts_ms=couriers.shift_end_ts_ms[c_rows],
        spare_capacity=couriers.spare_capacity[c_rows],
        pending_pickup_ts_ms=couriers.pending_pickup_ts_ms[c_rows],
        orders_done=couriers.orders_done[c_rows],
        shift_start_ts_ms=couriers.shift_start_ts_ms[c_rows],
    )
    return replace(snapshot, orders=sub_orders, couriers=sub_couriers)


def _handover(courier: CourierRecord, to_shard: str, epoch: int, ts_ms: int) -> dict[str, Any]:
    """The `handover` update a shard sends when a courier that left holds no more work there."""
    return _event(
        "courier_state_update",
        f"handover:{courier.courier_id}:{to_shard}:{epoch}",
        ts_ms,
        courier_id=courier.courier_id,
        shard=to_shard,
        kind="handover",
        status=courier.status,
        capacity=courier.capacity,
        vehicle=courier.vehicle,
        shift_end_ts_ms=courier.shift_end_ts_ms,
        status_ts_ms=courier.status_ts_ms,
        epoch=epoch,
        from_shard=courier.shard,
        to_shard=to_shard,
    )


def _handover_from(update: Event, to_shard: str, epoch: int, ts_ms: int) -> dict[str, Any]:
    """A handover for a courier this shard never held (only its move is released)."""
    return _event(
        "courier_state_update",
        f"handover:{update['courier_id']}:{to_shard}:{epoch}",
        ts_ms,
        courier_id=update["courier_id"],
        shard=to_shard,
        kind="handover",
        status=update["status"],
        capacity=update["capacity"],
        vehicle=update["vehicle"],
        shift_end_ts_ms=update.get("shift_end_ts_ms"),
        status_ts_ms=update["status_ts_ms"],
        epoch=epoch,
        from_shard=update["shard"],
        to_shard=to_shard,
    )


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


def left_tombstone(shard: str, courier_id: str, ts_ms: int) -> bytes:
    """A `courier_positions` tombstone: `courier_id` left `shard` at `ts_ms`."""
    nan = np.array([np.nan])
    columns = PingColumns(
        np.array([courier_id], dtype=object), nan, nan, np.array([ts_ms]), nan, nan, nan
    )
    return encode_position_batch(
        shard, f"left:{courier_id}:{shard}:{ts_ms}", ts_ms, columns, left=True
    )


def _route_json(route: Sequence[RouteStop]) -> list[dict[str, Any]]:
    """Route stops as the contracts carry them: one entry per order per stop."""
    return [
        {
            "kind": s.kind,
            "order_id": o,
            "lat": s.lat,
            "lon": s.lon,
            "planned_ts_ms": int(s.planned_ts_ms),
        }
        for s in route
        for o in s.order_ids
    ]


def order_topic(topic: str) -> bool:
    """True for the topics whose events `on_order_event` takes."""
    return topic in _ORDER_TOPICS


def stores_view(stores: ShardStores) -> dict[str, Any]:
    """Every record of every store, JSON-able (for state dumps and tests)."""
    return {
        "orders": {k: v.public_view() for k, v in stores.orders.items()},
        "couriers": {k: orjson_ready(v) for k, v in stores.couriers.items()},
        "decisions": {k: orjson_ready(v) for k, v in stores.decisions.items()},
    }


def orjson_ready(value: Any) -> Any:
    """A dataclass record as plain JSON-able data."""
    import orjson

    return orjson.loads(orjson.dumps(value))
