"""Offering decisions to couriers and committing the accepted ones.

What proposing guarantees (`Proposals.propose`, for the assignments `decide()` made on a
`ShardSnapshot`):

* one live assignment per order: only the snapshot's orders are offered (open ones, or an
  insertion's new order), and an offered order is under its proposal until it is accepted,
  declined or its lease expires, so no later tick offers it again meanwhile. An order is never
  offered to a courier it cools down from: the snapshot forbids the pair, and `decide()`
  respects forbidden pairs.
* one offer per courier: a courier is offered work only while dispatchable, and holds the
  proposal's lease (`lease_s`) until it is resolved.
* each proposal carries the shard generation it was made under, the policy and model versions,
  its route with planned and p90 times, its ETAs (the p90 widened by the calibrator's margin)
  and its cost terms; its id is `decide()`'s deterministic decision id, and the event's id
  (`proposed:<decision>`) follows from it, so a replayed tick writes the same records.

What committing guarantees (`Proposals.answer`, for a courier's first answer to an open
proposal):

* a decline, or an accept after the lease, releases the offer with a cool-down of the pair; an
  accept of a proposal made under another shard generation (the shard moved to this worker, or
  away and back, since) releases it (`shard_moved`): a worker that lost the shard never commits
  for it.
* an accept commits only orders still under this proposal, and only if the courier is online,
  not leaving the shard and has spare capacity for them all; otherwise the offer is released
  (`courier_offline` or `superseded`). A committed courier's route gains the proposal's stops
  for the orders it holds (an insertion re-plans its pending pickup), so its load counts them.
* each committed order gets its first `eta_update`; the `assignment_committed` id is
  `committed:<decision>`, so a duplicate or replayed accept never commits twice (a proposal is
  answered once: the caller ignores answers to proposals no longer open).
"""

from __future__ import annotations

import math
from dataclasses import replace

from dispatch.decisions import Assignment, Decisions
from dispatch.lifecycle import OrderState
from dispatch.live.effects import Effects
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import LegPredictor, RouteCalibrator
from dispatch.live.outputs import committed_event, eta_event, order_trace, proposal_event
from dispatch.live.records import DecisionRecord, DecisionStatus, Phase, RouteStop
from dispatch.live.releases import Releases
from dispatch.live.shard_snapshot import ShardSnapshot
from dispatch.live.state import ShardState
from dispatch.live.telemetry import Telemetry
from dispatch.live.topic_names import ASSIGNMENT_COMMITTED, ASSIGNMENT_PROPOSED, ETA_UPDATES
from dispatch.live.tracking import dropoff_eta


class Proposals:
    """Proposes decisions and resolves the couriers' answers (see the module docstring)."""

    def __init__(
        self,
        state: ShardState,
        config: EngineConfig,
        releases: Releases,
        calibrator: RouteCalibrator,
        predictor: LegPredictor,
        telemetry: Telemetry,
    ) -> None:
        self.state = state
        self.config = config
        self.releases = releases
        self.calibrator = calibrator
        self.predictor = predictor
        self.telemetry = telemetry

    # ------------------------------------------------------------------ proposing
    def propose(
        self,
        built: ShardSnapshot,
        decisions: Decisions,
        policy_version: str,
        generation: int,
        effects: Effects,
    ) -> int:
        """Offer each of `decisions`' assignments to its courier; return how many were offered."""
        shard = built.snapshot.shard_id
        now_ms = built.snapshot.now_ts_ms
        lease_ms = int(self.config.lease_s * 1000)
        margin_s = self.calibrator.margin_s
        fallback = built.eta.fallbacks > 0
        proposed = 0
        for assignment in decisions.assignments:
            new_orders = [built.orders[o] for o in assignment.new_order_ids if o in built.orders]
            courier = self.state.courier(shard, assignment.courier_id)
            if not new_orders or courier is None or not courier.dispatchable:
                continue
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
                generation=generation,
                courier_id=assignment.courier_id,
                order_ids=assignment.order_ids,
                new_order_ids=tuple(o.order_id for o in new_orders),
                updates_pending=assignment.updates_pending,
                status=DecisionStatus.PROPOSED,
                proposed_ts_ms=now_ms,
                lease_expires_ts_ms=now_ms + lease_ms,
                route=self._route(assignment),
                etas=etas,
                cost=assignment.cost,
                terms=dict(assignment.explanation.terms),
                runner_up_courier_id=assignment.explanation.runner_up_courier_id,
                runner_up_cost=assignment.explanation.runner_up_cost,
                reason=assignment.explanation.reason,
                policy_version=policy_version,
                model_version=self.predictor.version,
                fallback_used=fallback,
            )
            self.state.put_decision(record)
            self.state.put_courier(
                replace(
                    courier,
                    lease_decision_id=record.decision_id,
                    lease_expires_ts_ms=record.lease_expires_ts_ms,
                )
            )
            for order in new_orders:
                self._lease_order(order, record, etas, now_ms)
            event = proposal_event(record, etas, fallback)
            effects.emit(ASSIGNMENT_PROPOSED, shard, event, order_trace(new_orders[0], event))
            proposed += 1
        return proposed

    def _lease_order(
        self,
        order: OrderState,
        record: DecisionRecord,
        etas: dict[str, tuple[float, float, float]],
        now_ms: int,
    ) -> None:
        """Put `order` under the proposal `record`, with the drop-off ETAs it offers."""
        p50_s, _, p90_s = etas.get(order.order_id, (math.nan, math.nan, math.nan))
        dispatch = replace(
            order.dispatch,
            phase=Phase.PROPOSED,
            decision_id=record.decision_id,
            courier_id=record.courier_id,
            eta_p50_ts_ms=now_ms + int(p50_s * 1000) if math.isfinite(p50_s) else None,
            eta_p90_ts_ms=now_ms + int(p90_s * 1000) if math.isfinite(p90_s) else None,
        )
        self.state.put_order(replace(order, dispatch=dispatch))

    def _route(self, assignment: Assignment) -> tuple[RouteStop, ...]:
        """The assignment's stops at their orders' points, with planned and p90 times."""
        stops = []
        for stop in assignment.stops:
            ids = tuple(stop.order_ids)
            first = self.state.order(ids[0]) if ids else None
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

    # ------------------------------------------------------------------ answers
    def answer(
        self,
        decision: DecisionRecord,
        accepted: bool,
        ts_ms: int,
        generation: int,
        effects: Effects,
        response_id: str | None = None,
    ) -> None:
        """Resolve the open proposal `decision` with its courier's answer at `ts_ms`.

        A commitment records `response_id` (the answer's event id) with what it announced, for
        `announce_again`.
        """
        release = self.releases.release_orders
        if not accepted:
            release(decision, decision.order_ids, "declined", ts_ms, effects, cooldown=True)
        elif ts_ms > decision.lease_expires_ts_ms:
            release(decision, decision.order_ids, "lease_expired", ts_ms, effects, cooldown=True)
        elif decision.generation != generation:
            release(decision, decision.order_ids, "shard_moved", ts_ms, effects)
        else:
            self._commit(decision, ts_ms, effects, response_id)

    def announce_again(self, decision: DecisionRecord, response_id: str, effects: Effects) -> bool:
        """Send `decision`'s `assignment_committed` again if the answer `response_id` made it.

        The commitment's state and its announcement reach the broker separately; a worker that
        stops between the two reads the answer again after its restart and finds the decision
        committed already. The decision keeps the record it announced, so the copy is that very
        record (event id, orders, stops, event time and trace), whatever happened to the
        decision since; consumers that keep each event id once see one commitment. Returns
        whether it was sent.
        """
        announced = decision.committed
        if decision.committed_by != response_id or announced is None:
            return False
        event, trace = announced
        effects.emit(ASSIGNMENT_COMMITTED, decision.shard, event, trace)
        return True

    def _commit(
        self,
        decision: DecisionRecord,
        ts_ms: int,
        effects: Effects,
        response_id: str | None = None,
    ) -> None:
        state = self.state
        courier = state.courier(decision.shard, decision.courier_id)
        if courier is None or not courier.online:
            self.releases.release_orders(
                decision, decision.order_ids, "courier_offline", ts_ms, effects
            )
            return
        new_orders = []
        for order_id in decision.new_order_ids:
            order = state.order(order_id)
            if (
                order is not None
                and order.dispatch.decision_id == decision.decision_id
                and order.dispatch.phase is Phase.PROPOSED
            ):
                new_orders.append(order)
        if not new_orders or courier.spare_capacity < len(new_orders) or courier.leaving_to:
            self.releases.release_orders(decision, decision.order_ids, "superseded", ts_ms, effects)
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
        state.put_courier(
            replace(courier, route=route, lease_decision_id=None, lease_expires_ts_ms=None)
        )
        margin_ms = int(self.calibrator.margin_s * 1000)
        for order in new_orders:
            dispatch = replace(order.dispatch, phase=Phase.COMMITTED)
            stop = next(
                (s for s in planned if s.kind == "dropoff" and order.order_id in s.order_ids), None
            )
            if stop is not None:
                p50, p90 = dropoff_eta(stop, ts_ms, margin_ms)
                dispatch = replace(
                    dispatch, eta_p50_ts_ms=p50, eta_p90_ts_ms=p90, eta_sent_ts_ms=ts_ms
                )
                version = self.predictor.version
                eta = eta_event(order.order_id, decision.shard, ts_ms, p50, p90, version)
                effects.emit(ETA_UPDATES, decision.shard, eta, order_trace(order, eta))
            state.put_order(replace(order, dispatch=dispatch))
        committed_ids = tuple(o.order_id for o in new_orders)
        event = committed_event(decision, committed_ids, planned, ts_ms)
        trace = order_trace(new_orders[0], event)
        state.put_decision(
            replace(
                decision,
                status=DecisionStatus.COMMITTED,
                resolved_ts_ms=ts_ms,
                committed_by=response_id,
                committed=(event, trace),
            )
        )
        effects.emit(ASSIGNMENT_COMMITTED, decision.shard, event, trace)
        self.telemetry.committed()
