"""A one-shard world around a real `ShardEngine`, for the live-dispatch tests.

Inputs are schema-valid events built here and handled the way the worker handles them: courier
events through the real `CourierDirectory` (its `courier_state_update`s go to the engine), pings
into the real `PositionStore`, everything shard-keyed straight to the engine. New orders and
pings also feed a real online feature store, which ticks read for surge as the worker's do.
Every input event and every JSON output is appended to `log`, in handling order, for the
invariant checker.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from contracts.geo import offset_m, shard_of
from contracts.pings import PingColumns
from contracts.records import envelope
from contracts.rejections import EventRejected
from contracts.validation import validate_schema
from dispatch.lifecycle import CourierState, OrderState, Source
from dispatch.live.directory import CourierDirectory
from dispatch.live.effects import Effects, Output
from dispatch.live.engine import ShardEngine
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import LegPredictor
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
from dispatch.live.positions import PositionStore
from dispatch.live.rank_view import rank_in_view
from dispatch.live.records import CourierRecord, DecisionRecord, ShardControl, courier_key
from dispatch.live.staged import ModelSets, TickInputs, prep_model_of
from dispatch.live.state import ShardStores
from dispatch.live.topic_names import COURIER_STATE_UPDATES as STATE_UPDATES_TOPIC
from dispatch.ranking import RankedCourier
from features.from_contracts import to_feature_event
from features.store import OnlineFeatureStore
from simulators.inprocess import CountingTelemetry

#: Event time the tests start at (epoch ms).
T0 = 1_700_000_000_000
#: One second, in ms.
S = 1_000
#: The merchant district every test works in.
LAT, LON = 40.75, -73.99
PRECISION = 4
SHARD = shard_of(LAT, LON, PRECISION)


def offset(
    north_m: float, east_m: float, lat: float = LAT, lon: float = LON
) -> tuple[float, float]:
    """The point `north_m` metres north and `east_m` metres east of (`lat`, `lon`)."""
    return offset_m(lat, lon, east_m, north_m)


def new_stores() -> ShardStores:
    """Empty engine state over plain dicts."""
    return ShardStores(
        orders=KV({}, OrderState.to_json, OrderState.from_json),
        couriers=KV({}, CourierRecord.to_json, CourierRecord.from_json),
        decisions=KV({}, DecisionRecord.to_json, DecisionRecord.from_json),
        controls=KV({}, ShardControl.to_json, ShardControl.from_json),
        orphans=KV({}, Orphans.to_json, Orphans.from_json),
    )


def of_type(effects: Effects | list[Output], kind: str) -> list[dict[str, Any]]:
    """The JSON outputs of `kind` among `effects`."""
    outputs = effects.outputs if isinstance(effects, Effects) else effects
    return [o.event for o in outputs if isinstance(o.value, dict) and o.value["type"] == kind]


@dataclass
class Counts(CountingTelemetry):
    """The simulator's counting telemetry, plus each tick's breaker flag and each ETA label."""

    eta_labels: list[tuple[float, bool, bool]] = field(default_factory=list)
    breaker_ticks: list[bool] = field(default_factory=list)

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:
        """Count a tick and keep its breaker flag."""
        super().tick(shard, duration_s, assignments, breaker)
        self.breaker_ticks.append(breaker)

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:
        """Count an ETA label and keep it."""
        super().eta_label(error_p50_s, covered_p90, fallback)
        self.eta_labels.append((error_p50_s, covered_p90, fallback))


class World:
    """One shard, one partition, a real engine and courier directory; times in epoch ms."""

    def __init__(
        self,
        root: Path | None = None,
        config: EngineConfig | None = None,
        predictor: LegPredictor | None = None,
        stores: ShardStores | None = None,
        models: ModelSets | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="shard-world-") if root is None else None
        base = Path(self._tmp.name) if self._tmp is not None else root
        assert base is not None
        self.positions = PositionStore(base / "positions", flush_interval_s=3600.0, clock=float)
        self.positions.open(0)
        self.stores = stores if stores is not None else new_stores()
        self.telemetry = Counts()
        self.features = OnlineFeatureStore({})
        self.engine = ShardEngine(
            self.stores,
            self.positions,
            config=config,
            predictor=predictor,
            telemetry=self.telemetry,
            models=models,
            inputs=self._tick_inputs,
        )
        self.directory = CourierDirectory(
            KV({}, CourierState.to_json, CourierState.from_json), PRECISION
        )
        self.log: list[dict[str, Any]] = []
        self.outputs: list[Output] = []
        self.rejections: list[tuple[Source, EventRejected]] = []
        self.rejected_ids: set[str] = set()
        self._offsets: Counter[str] = Counter()
        self._seq = 0

    def _tick_inputs(self, partition: int | None, now_ms: int) -> TickInputs:
        """The served models and the zones' supply and demand from the feature store."""
        return TickInputs(
            prep_model_of(self.engine.models, self.engine.config),
            zone_supply_demand=lambda zone: self.features.zone_supply_demand(zone, now_ms),
            telemetry=self.telemetry,
        )

    def close(self) -> None:
        """Close the position store and remove its files."""
        self.positions.close_all()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def event(self, kind: str, ts_ms: int, event_id: str | None = None, **fields: Any) -> Any:
        """A schema-valid input event of `kind` (a fresh event id unless one is given)."""
        self._seq += 1
        return validate_schema(envelope(kind, event_id or f"{kind}-{self._seq}", ts_ms, **fields))

    def source(self, topic: str, event: dict[str, Any], traceparent: str | None = None) -> Source:
        """The next record of `topic` carrying `event` (and a trace context header)."""
        offset_ = self._offsets[topic]
        self._offsets[topic] += 1
        return Source(topic, 0, offset_, None, orjson.dumps(event), traceparent)

    def _record(self, effects: Effects) -> Effects:
        self.outputs.extend(effects.outputs)
        self.rejections.extend(effects.rejections)
        self.log.extend(o.value for o in effects.outputs if isinstance(o.value, dict))
        return effects

    def emitted(self, kind: str) -> list[dict[str, Any]]:
        """Every output of `kind` so far."""
        return of_type(self.outputs, kind)

    # ------------------------------------------------------------------ couriers
    def ping(self, courier_id: str, ts_ms: int, lat: float, lon: float) -> None:
        """A position fix of `courier_id` (applied to the position store)."""
        columns = PingColumns(
            np.array([courier_id], dtype=object),
            np.array([lat]),
            np.array([lon]),
            np.array([ts_ms], dtype=np.int64),
            np.array([4.0]),
            np.array([0.0]),
            np.array([5.0]),
        )
        offset_ = self._offsets["courier_positions"]
        self._offsets["courier_positions"] += 1
        self.positions.apply(0, offset_, shard_of(lat, lon, PRECISION), columns)
        self.features.apply(
            {
                "type": "courier_ping",
                "event_id": f"ping-{courier_id}-{ts_ms}",
                "ts_ms": ts_ms,
                "courier_id": courier_id,
                "lat": lat,
                "lon": lon,
                "speed_mps": 4.0,
            }
        )

    def courier_event(self, event: dict[str, Any]) -> Effects:
        """A `courier_events` record through the directory; its state updates to the engine."""
        self.log.append(event)
        directory = self.directory.on_courier_event(event, self.source("courier_events", event))
        effects = Effects(rejections=list(directory.rejections))
        for output in directory.outputs:
            effects.outputs.append(output)
            if output.topic == STATE_UPDATES_TOPIC:
                effects.extend(self.engine.on_courier_update(output.event))
        return self._record(effects)

    def online(
        self,
        courier_id: str,
        ts_ms: int,
        at: tuple[float, float] | None = None,
        capacity: int = 2,
        shift_end_ts_ms: int | None = None,
    ) -> Effects:
        """`courier_id` comes online at `at` (default: near the merchant) and pings there."""
        lat, lon = at if at is not None else offset(200.0, 0.0)
        fields: dict[str, Any] = {"lat": lat, "lon": lon, "capacity": capacity, "vehicle": "bike"}
        if shift_end_ts_ms is not None:
            fields["shift_end_ts_ms"] = shift_end_ts_ms
        event = self.event("courier_online", ts_ms, courier_id=courier_id, **fields)
        self.ping(courier_id, ts_ms, lat, lon)
        return self.courier_event(event)

    def sighting(self, courier_id: str, shard: str, ts_ms: int) -> Effects:
        """`shard` saw `courier_id` (a position there), through the directory to the engine."""
        event = self.event(
            "courier_sighting",
            ts_ms,
            shard=shard,
            couriers=[{"courier_id": courier_id, "ts_ms": ts_ms}],
        )
        directory = self.directory.on_sighting(event)
        effects = Effects()
        for output in directory.outputs:
            effects.outputs.append(output)
            if output.topic == STATE_UPDATES_TOPIC:
                effects.extend(self.engine.on_courier_update(output.event))
        return self._record(effects)

    def offline(self, courier_id: str, ts_ms: int) -> Effects:
        """`courier_id` goes offline."""
        return self.courier_event(self.event("courier_offline", ts_ms, courier_id=courier_id))

    # ------------------------------------------------------------------ orders
    def order_event(
        self,
        topic: str,
        event: dict[str, Any],
        source: Source | None = None,
        placement: dict[str, float | None] | None = None,
    ) -> Effects:
        """An order, merchant or delivery event to the engine (a new record unless `source`).

        `placement`: a new order's features at placement, as the worker reads them.
        """
        self.log.append(event)
        src = source if source is not None else self.source(topic, event)
        effects = self.engine.on_order_event(event, src, placement)
        if effects.applied and event["type"] == "order_created":
            feature_event = to_feature_event(event)
            assert feature_event is not None
            self.features.apply(feature_event)
        if any(src.same_record(rejected) for rejected, _ in effects.rejections):
            self.rejected_ids.add(str(event["event_id"]))
        return self._record(effects)

    def create(
        self,
        order_id: str,
        ts_ms: int,
        pickup: tuple[float, float] = (LAT, LON),
        dropoff: tuple[float, float] | None = None,
        merchant_id: str = "m1",
        prep_s: float = 0.0,
        promise_ts_ms: int | None = None,
        traceparent: str | None = None,
        placement: dict[str, float | None] | None = None,
    ) -> Effects:
        """`order_created` (by default ready at once, 1.5 km from the merchant).

        `placement`: its features at placement (none: the order has none).
        """
        drop = dropoff if dropoff is not None else offset(1_200.0, 900.0)
        fields: dict[str, Any] = {
            "order_id": order_id,
            "merchant_id": merchant_id,
            "shard": shard_of(*pickup, PRECISION),
            "pickup": {"lat": pickup[0], "lon": pickup[1]},
            "dropoff": {"lat": drop[0], "lon": drop[1]},
            "prep_estimate_s": prep_s,
        }
        if promise_ts_ms is not None:
            fields["promise_ts_ms"] = promise_ts_ms
        event = self.event("order_created", ts_ms, **fields)
        return self.order_event(
            "order_events", event, self.source("order_events", event, traceparent), placement
        )

    def cancel(self, order_id: str, ts_ms: int) -> Effects:
        """`order_cancelled` by the customer."""
        event = self.event(
            "order_cancelled", ts_ms, order_id=order_id, shard=SHARD, reason="customer"
        )
        return self.order_event("order_events", event)

    def picked_up(self, order_id: str, courier_id: str, ts_ms: int) -> Effects:
        """`delivery_picked_up`."""
        event = self.event(
            "delivery_picked_up", ts_ms, order_id=order_id, courier_id=courier_id, shard=SHARD
        )
        return self.order_event("delivery_events", event)

    def delivered(self, order_id: str, courier_id: str, ts_ms: int) -> Effects:
        """`delivery_delivered`."""
        event = self.event(
            "delivery_delivered", ts_ms, order_id=order_id, courier_id=courier_id, shard=SHARD
        )
        return self.order_event("delivery_events", event)

    # ------------------------------------------------------------------ decisions
    def response(
        self, decision_id: str, courier_id: str, ts_ms: int, answer: str = "accept"
    ) -> dict[str, Any]:
        """An `assignment_response` event (not yet handled)."""
        return dict(
            self.event(
                "assignment_response",
                ts_ms,
                decision_id=decision_id,
                courier_id=courier_id,
                shard=SHARD,
                response=answer,
            )
        )

    def handle_response(self, event: dict[str, Any], source: Source | None = None) -> Effects:
        """Hand a response to the engine (a new record unless `source`)."""
        src = source if source is not None else self.source("assignment_responses", event)
        return self._record(self.engine.on_response(event, src))

    def respond(
        self, decision_id: str, courier_id: str, ts_ms: int, answer: str = "accept"
    ) -> Effects:
        """A courier's answer to a proposal, handled."""
        return self.handle_response(self.response(decision_id, courier_id, ts_ms, answer))

    def control(self, ts_ms: int, policy_version: str, shard: str = SHARD, **flags: Any) -> Effects:
        """A `dispatch_control` event."""
        event = self.event(
            "dispatch_control", ts_ms, shard=shard, policy_version=policy_version, **flags
        )
        return self._record(self.engine.on_control(event, self.source("dispatch_control", event)))

    def tick(self, ts_ms: int, shard: str = SHARD) -> Effects:
        """A `dispatch_tick` of `shard`."""
        return self._record(self.engine.on_tick(self.event("dispatch_tick", ts_ms, shard=shard)))

    def rank(
        self, pickup: tuple[float, float], dropoff: tuple[float, float], now_ms: int, k: int
    ) -> tuple[RankedCourier, ...]:
        """The `k` cheapest couriers for a job, ranked from the engine's view of the shard."""
        return rank_in_view(
            self.engine.rank_view(SHARD), self.engine.predictor, pickup, dropoff, now_ms, k
        )

    # ------------------------------------------------------------------ state
    def order(self, order_id: str) -> OrderState:
        """The stored order."""
        order = self.stores.orders.get(order_id)
        assert order is not None, order_id
        return order

    def courier(self, courier_id: str, shard: str = SHARD) -> CourierRecord:
        """The courier's record in `shard`."""
        courier = self.stores.couriers.get(courier_key(shard, courier_id))
        assert courier is not None, courier_id
        return courier

    def decision(self, decision_id: str) -> DecisionRecord:
        """The stored decision."""
        decision = self.stores.decisions.get(decision_id)
        assert decision is not None, decision_id
        return decision


# ---------------------------------------------------------------------- scenarios
def offer(w: World, ts_ms: int) -> dict[str, Any]:
    """The one proposal a tick at `ts_ms` makes."""
    proposals = of_type(w.tick(ts_ms), "assignment_proposed")
    assert len(proposals) == 1, proposals
    return proposals[0]


def offered(w: World, capacity: int = 2) -> dict[str, Any]:
    """c1 online near the merchant, o1 created and offered to it at T0 + 2 s."""
    w.online("c1", T0, capacity=capacity)
    w.create("o1", T0 + S)
    return offer(w, T0 + 2 * S)


def committed(w: World, capacity: int = 2) -> dict[str, Any]:
    """`offered`, then accepted at T0 + 3 s; returns the proposal."""
    proposal = offered(w, capacity)
    w.respond(proposal["decision_id"], "c1", T0 + 3 * S)
    return proposal


def released(effects: Any) -> list[tuple[list[str], str]]:
    """(order ids, reason) of each release among `effects`."""
    return [(e["order_ids"], e["reason"]) for e in of_type(effects, "assignment_released")]
