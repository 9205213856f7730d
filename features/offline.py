"""The offline materialization: training rows from an event log.

The log is JSON Lines, one event per line: either feature events (shapes in
`features.events`) or the records of the input topics as the system logged them (contract
events, `contracts/schemas`; a `courier_ping_batch` stands for each of its fixes, and contract
events no feature reads are skipped). Contract records that break their schema, and repeats of
an event id, are skipped and counted, as the worker dead-letters them.

Events are replayed in event-time order (stable for equal times; the fixes of a ping batch at
the batch's time, when the worker applies them) through the same feature definitions as the
online store, kept as live objects; pings go through `features.pings.apply_pings`, as online,
in bulk: those between two other events at once (the same states as one at a time, up to the
float rounding of windowed sums).
The replay yields:

* an order row per `order_created`: the features as of just before the order was applied
  (`FeatureEngine.order_features`), the order's own fields, and labels from its later events
  (`prep_s` created → ready, `total_s` created → delivered, milestones, the merchant's last
  estimate before ready);
* a travel-leg row per courier arrival at a stop: from the courier's last departure (a pickup,
  a delivery, or accepting an offer, at its last ping) to the arrival, with the live context
  read at departure (the origin zone's observed speed, the courier's own speed, their levels).

A logged `dispatch_tick` is where a worker's tick read its features: waiting pings are applied
there, as the worker applies them before a tick, and `replay_log(on_tick=...)` is called with
the engine as the tick saw it (the parity of online and offline features is tested so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from contracts.geo import distance_m
from contracts.geo import encode as geohash_encode
from contracts.rejections import EventRejected
from contracts.validation import validate_schema
from features import events as ev
from features.definitions import FeatureDef
from features.from_contracts import to_feature_event
from features.pings import PingBatch, apply_pings
from features.store import ZONE_PRECISION, DegradeCallback, FeatureEngine, MemoryBackend

#: Legs kept for training: straight-line speed within these bounds (m/s); others are a courier
#: that went offline or stood still on the way.
LEG_SPEED_BOUNDS_MPS = (0.3, 30.0)
#: Legs shorter than this (a second order at the same merchant) carry no travel time.
LEG_MIN_M = 50.0


#: A logged dispatch tick (contract type): kept in the replay as a marker.
TICK = "dispatch_tick"

#: Events whose handling reads what pings feed (zone and courier features, couriers' cities
#: and last positions): waiting pings are applied before them.
_READS_PINGS = frozenset(
    {ev.ORDER_CREATED, ev.ASSIGNMENT_RESPONSE, ev.PICKED_UP, ev.DELIVERED, TICK}
)

#: `on_tick(engine, tick)`: a logged tick, with the engine holding what it saw.
TickCallback = Callable[["FeatureEngine", Mapping[str, Any]], None]


class EventLogError(ValueError):
    """A line of the event log is not valid JSON or not a valid event."""


@dataclass
class EventLog:
    """Feature events in replay order, and what was skipped on the way.

    Attributes:
        events: `(sort_ts_ms, event)` in replay order; pings as `PingBatch`es.
        skipped: contract records skipped, by reason (`schema_invalid`, `duplicate_event`).
    """

    events: list[tuple[int, dict[str, Any] | PingBatch]]
    skipped: dict[str, int] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise EventLogError(f"{path}:{lineno}: not JSON: {exc}") from exc
            if not isinstance(event, dict):
                raise EventLogError(f"{path}:{lineno}: an event must be a JSON object")
            yield lineno, event


def read_event_log(path: Path) -> list[dict[str, Any]]:
    """All feature events of a JSON-Lines log of feature events, validated, in file order.

    Raises:
        EventLogError: naming the line number and the problem.
    """
    out: list[dict[str, Any]] = []
    for lineno, event in _lines(path):
        try:
            ev.validate_event(event)
        except ev.EventError as exc:
            raise EventLogError(f"{path}:{lineno}: {exc}") from exc
        out.append(event)
    return out


def load_event_log(path: Path) -> EventLog:
    """A log of feature events or of logged contract records, as feature events to replay.

    Raises:
        EventLogError: a line that is not JSON, or a feature event that is not valid.
    """
    return to_replay_order(_lines(path), str(path))


def to_replay_order(lines: Iterable[tuple[int, Mapping[str, Any]]], name: str = "log") -> EventLog:
    """Feature events in replay order from numbered lines (see the module docstring).

    Raises:
        EventLogError: a feature event (a line without `v`) that is not valid.
    """
    staged: list[tuple[int, int, Mapping[str, Any], bool]] = []
    skipped: dict[str, int] = {}
    for lineno, event in lines:
        contract = "v" in event
        if contract:
            try:
                event = validate_schema(dict(event))
            except EventRejected as exc:
                skipped[exc.reason.value] = skipped.get(exc.reason.value, 0) + 1
                continue
        else:
            try:
                ev.validate_event(event)
            except ev.EventError as exc:
                raise EventLogError(f"{name}:{lineno}: {exc}") from exc
        staged.append((int(event["ts_ms"]), lineno, event, contract))
    staged.sort(key=lambda s: (s[0], s[1]))
    merchants: dict[str, str] = {}
    seen: set[str] = set()
    out: list[tuple[int, dict[str, Any] | PingBatch]] = []
    for ts, _, event, contract in staged:
        event_id = str(event["event_id"])
        if event_id in seen:
            skipped["duplicate_event"] = skipped.get("duplicate_event", 0) + 1
            continue
        seen.add(event_id)
        if not contract:
            out.append(
                (ts, _ping_rows([event]) if event["type"] == ev.COURIER_PING else dict(event))
            )
            continue
        if event["type"] == "courier_ping_batch":
            out.append((ts, _ping_rows(event["pings"])))
            continue
        if event["type"] == "courier_ping":  # the worker takes it as a batch of one
            out.append((ts, _ping_rows([event])))
            continue
        if event["type"] == TICK:
            out.append((ts, {"type": TICK, "ts_ms": ts, "shard": str(event["shard"])}))
            continue
        feature_event = to_feature_event(event, merchants.get)
        if feature_event is None:
            continue
        if feature_event["type"] == ev.ORDER_CREATED:
            merchants[str(feature_event["order_id"])] = str(feature_event["merchant_id"])
        out.append((ts, feature_event))
    return EventLog(out, skipped)


def _ping_rows(fixes: Iterable[Mapping[str, Any]]) -> PingBatch:
    """Valid pings (contract fixes or `courier_ping` feature events) as columns.

    A missing or implausible speed is unknown (NaN), as `to_feature_event` reads it. Speeds are
    rounded to float32, as the worker's positions records carry them
    (`contracts.positions`) to its online features.
    """
    rows = list(fixes)
    speeds = [f.get("speed_mps") for f in rows]
    return PingBatch(
        np.array([str(f["courier_id"]) for f in rows], dtype=object),
        np.array([float(f["lat"]) for f in rows]),
        np.array([float(f["lon"]) for f in rows]),
        np.array([int(f["ts_ms"]) for f in rows], dtype=np.int64),
        np.array(
            [
                float(v)
                if isinstance(v, int | float)
                and not isinstance(v, bool)
                and 0.0 <= v <= ev.MAX_SPEED_MPS
                else np.nan
                for v in speeds
            ],
            dtype=np.float32,
        ).astype(np.float64),
    )


def write_event_log(path: Path, events: Iterable[Mapping[str, Any]]) -> None:
    """Write events as JSON Lines."""
    with path.open("wb") as fh:
        for e in events:
            fh.write(orjson.dumps(e))
            fh.write(b"\n")


@dataclass
class _Labels:
    created_ts_ms: int
    ready_ts_ms: int | None = None
    picked_up_ts_ms: int | None = None
    delivered_ts_ms: int | None = None
    estimated_ready_ts_ms: int | None = None
    estimate_ts_ms: int | None = None
    cancelled: bool = False


@dataclass
class _Departure:
    ts_ms: int
    lat: float
    lon: float
    context: dict[str, Any]


@dataclass
class OfflineRows:
    """What one replay of an event log yields (see the module docstring).

    Attributes:
        orders: one row per created order, in event-time order.
        legs: one row per travel leg, in arrival order.
        skipped: contract records skipped, by reason.
    """

    orders: list[dict[str, Any]]
    legs: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)


def replay_order_rows(
    events: Iterable[Mapping[str, Any]],
    engine: FeatureEngine,
) -> Iterator[tuple[Mapping[str, Any], dict[str, Any]]]:
    """Apply events in order; yield (order_created event, its feature row before applying it)."""
    for event in events:
        if event["type"] == ev.ORDER_CREATED:
            row = engine.order_features(
                str(event["merchant_id"]),
                float(event["pickup_lat"]),
                float(event["pickup_lon"]),
                int(event["ts_ms"]),
            )
            engine.apply(event)
            yield event, row
        else:
            engine.apply(event)


def leg_context(
    engine: FeatureEngine, courier_id: str, lat: float, lon: float, ts_ms: int
) -> dict[str, Any]:
    """The live context of a leg leaving (`lat`, `lon`) at `ts_ms` with `courier_id`.

    Keys: `zone_speed_mps` (the origin zone's observed speed in the last hour),
    `courier_speed_mps` (the courier's own travel speed), each None when unknown at every
    level, and their `@level`s.
    """
    zone = engine.read("zone_speed_1h", geohash_encode(lat, lon, ZONE_PRECISION), ts_ms)
    courier = engine.read("courier_speed_30d", courier_id, ts_ms)
    return {
        "zone_speed_mps": zone.values["observed_speed_mps"],
        "zone_speed_mps@level": zone.level,
        "courier_speed_mps": courier.values["speed_mean_mps"],
        "courier_speed_mps@level": courier.level,
    }


class _Replay:
    """One pass over a log: the engine, the order rows and labels, the couriers' legs."""

    def __init__(self, engine: FeatureEngine, on_tick: TickCallback | None = None) -> None:
        self.engine = engine
        self.on_tick = on_tick
        self.rows: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, _Labels] = {}
        self.legs: list[dict[str, Any]] = []
        self.departures: dict[str, _Departure] = {}
        self.last_ping: dict[str, tuple[float, float]] = {}
        self.pings: list[PingBatch] = []

    def run(self, events: Iterable[tuple[int, Mapping[str, Any] | PingBatch]]) -> None:
        for _, event in events:
            if isinstance(event, PingBatch):
                self.pings.append(event)
                continue
            if event["type"] in _READS_PINGS:
                self.flush_pings()
            if event["type"] == TICK:
                if self.on_tick is not None:
                    self.on_tick(self.engine, event)
                continue
            self.handle(event)
        self.flush_pings()

    def flush_pings(self) -> None:
        if not self.pings:
            return
        pings, self.pings = PingBatch.concat(self.pings), []
        order = np.argsort(pings.ts_ms, kind="stable")
        ids, lat, lon = pings.courier_id[order], pings.lat[order], pings.lon[order]
        self.last_ping.update(
            zip(ids.tolist(), zip(lat.tolist(), lon.tolist(), strict=True), strict=True)
        )
        apply_pings(self.engine, pings)

    def handle(self, event: Mapping[str, Any]) -> None:
        etype = event["type"]
        ts = int(event["ts_ms"])
        oid = str(event.get("order_id", ""))
        if etype == ev.ORDER_CREATED:
            self.created(event)
            return
        self.engine.apply(event)
        lab = self.labels.get(oid)
        if etype == ev.ASSIGNMENT_RESPONSE:
            courier = str(event["courier_id"])
            where = self.last_ping.get(courier)
            if event["response"] == "accept" and where is not None:
                self.depart(courier, ts, *where)
            return
        if lab is None:
            return
        row = self.rows[oid]
        if etype == ev.MERCHANT_ESTIMATE and lab.ready_ts_ms is None:
            lab.estimated_ready_ts_ms = int(event["estimated_ready_ts_ms"])
            lab.estimate_ts_ms = ts
        elif etype == ev.MERCHANT_READY and lab.ready_ts_ms is None:
            lab.ready_ts_ms = ts
        elif etype == ev.PICKED_UP:
            lab.picked_up_ts_ms = lab.picked_up_ts_ms or ts
            self.depart(str(event["courier_id"]), ts, row["pickup_lat"], row["pickup_lon"])
        elif etype == ev.DELIVERED:
            lab.delivered_ts_ms = lab.delivered_ts_ms or ts
            self.depart(str(event["courier_id"]), ts, row["dropoff_lat"], row["dropoff_lon"])
        elif etype == ev.ORDER_CANCELLED:
            lab.cancelled = True
        elif etype == ev.ARRIVED:
            self.arrive(str(event["courier_id"]), ts, str(event["stop"]), row)

    def created(self, event: Mapping[str, Any]) -> None:
        oid = str(event["order_id"])
        feats = self.engine.order_features(
            str(event["merchant_id"]),
            float(event["pickup_lat"]),
            float(event["pickup_lon"]),
            int(event["ts_ms"]),
        )
        self.engine.apply(event)
        if oid in self.rows:
            return
        estimate = event.get("prep_estimate_s")
        self.labels[oid] = _Labels(created_ts_ms=int(event["ts_ms"]))
        self.rows[oid] = {
            "order_id": oid,
            "merchant_id": str(event["merchant_id"]),
            "created_ts_ms": int(event["ts_ms"]),
            "pickup_lat": float(event["pickup_lat"]),
            "pickup_lon": float(event["pickup_lon"]),
            "dropoff_lat": float(event["dropoff_lat"]),
            "dropoff_lon": float(event["dropoff_lon"]),
            "prep_estimate_s": _finite_or_none(estimate),
            **feats,
        }

    def depart(self, courier_id: str, ts_ms: int, lat: float, lon: float) -> None:
        context = leg_context(self.engine, courier_id, lat, lon, ts_ms)
        self.departures[courier_id] = _Departure(ts_ms, lat, lon, context)

    def arrive(self, courier_id: str, ts_ms: int, stop: str, row: Mapping[str, Any]) -> None:
        start = self.departures.pop(courier_id, None)
        if start is None:
            return
        lat, lon = (
            (row["pickup_lat"], row["pickup_lon"])
            if stop == "pickup"
            else (row["dropoff_lat"], row["dropoff_lon"])
        )
        dist = distance_m(start.lat, start.lon, lat, lon)
        duration_s = (ts_ms - start.ts_ms) / 1000.0
        lo, hi = LEG_SPEED_BOUNDS_MPS
        if dist < LEG_MIN_M or duration_s <= 0 or not lo <= dist / duration_s <= hi:
            return
        self.legs.append(
            {
                "courier_id": courier_id,
                "order_id": row["order_id"],
                "stop": stop,
                "depart_ts_ms": start.ts_ms,
                "origin_lat": start.lat,
                "origin_lon": start.lon,
                "dest_lat": lat,
                "dest_lon": lon,
                "dist_m": dist,
                "duration_s": duration_s,
                **start.context,
            }
        )

    def order_rows(self) -> list[dict[str, Any]]:
        out = []
        for oid, row in self.rows.items():
            lab = self.labels[oid]
            created = lab.created_ts_ms
            row.update(
                ready_ts_ms=lab.ready_ts_ms,
                picked_up_ts_ms=lab.picked_up_ts_ms,
                delivered_ts_ms=lab.delivered_ts_ms,
                estimated_ready_ts_ms=lab.estimated_ready_ts_ms,
                estimate_ts_ms=lab.estimate_ts_ms,
                prep_s=None if lab.ready_ts_ms is None else (lab.ready_ts_ms - created) / 1000.0,
                total_s=(
                    None
                    if lab.delivered_ts_ms is None
                    else (lab.delivered_ts_ms - created) / 1000.0
                ),
                cancelled=lab.cancelled,
            )
            out.append(row)
        return out


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if np.isfinite(v) else None


def replay_log(
    log: EventLog,
    features: Iterable[FeatureDef] | None = None,
    on_degrade: DegradeCallback | None = None,
    utc_offset_ms: int = 0,
    on_tick: TickCallback | None = None,
) -> OfflineRows:
    """Order rows and travel-leg rows of one log (see the module docstring).

    `on_tick` is called at each logged `dispatch_tick` with the engine as of that tick.
    """
    engine = FeatureEngine(MemoryBackend(), features, on_degrade, utc_offset_ms)
    replay = _Replay(engine, on_tick)
    replay.run(log.events)
    return OfflineRows(replay.order_rows(), replay.legs, dict(log.skipped))


def build_training_rows(
    path: Path,
    features: Iterable[FeatureDef] | None = None,
    on_degrade: DegradeCallback | None = None,
    utc_offset_ms: int = 0,
) -> list[dict[str, Any]]:
    """Training rows, one per created order, in event-time order.

    Each row holds `order_id`, `merchant_id`, `created_ts_ms`, pickup/dropoff coordinates,
    `prep_estimate_s`, the feature row (`FeatureEngine.order_features`) and labels `prep_s`
    (created → ready), `total_s` (created → delivered), `cancelled`, the milestones and the
    merchant's estimate; labels are None when never observed.
    """
    return replay_log(load_event_log(path), features, on_degrade, utc_offset_ms).orders
