"""Seeded synthetic input events for a small city: couriers, pings, orders, and invalid records.

The events follow the contracts exactly (`contracts/schemas`), with record keys as producers must
set them. `invalid=True` mixes in records that must end in a dead-letter topic, one kind per
`RejectReason` that a producer can cause, each tagged with the reason it should get.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from contracts.geo import offset_m, project_m, shard_of
from contracts.records import envelope


@dataclass(frozen=True)
class Record:
    """One record to produce: topic, key, value and record timestamp (= event time)."""

    topic: str
    key: bytes | None
    value: bytes
    ts_ms: int
    expect_reason: str | None = None  # the dead-letter reason this record must get, if invalid


@dataclass(frozen=True)
class CityConfig:
    """Size and shape of the synthetic city."""

    seed: int = 7
    center_lat: float = 40.7580
    center_lon: float = -73.9855
    radius_m: float = 12_000.0
    n_merchants: int = 40
    n_couriers: int = 100
    n_orders: int = 300
    duration_s: int = 1200
    ping_interval_s: int = 4
    start_ts_ms: int = 1_795_000_000_000
    shard_precision: int = 4
    cancel_rate: float = 0.05
    invalid: bool = True

    def __post_init__(self) -> None:
        if self.n_couriers < 1 or self.n_merchants < 1 or self.n_orders < 0:
            msg = "need at least one courier and one merchant"
            raise ValueError(msg)
        if self.duration_s < 60 or self.ping_interval_s < 1:
            msg = "duration_s must be >= 60 and ping_interval_s >= 1"
            raise ValueError(msg)


@dataclass
class _Courier:
    courier_id: str
    lat: float
    lon: float
    target: tuple[float, float]
    speed_mps: float


@dataclass
class SyntheticCity:
    """Generates the events of one seeded run; `records()` yields them in event-time order."""

    config: CityConfig = field(default_factory=CityConfig)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.config.seed)

    def _point(
        self, radius_m: float, around: tuple[float, float] | None = None
    ) -> tuple[float, float]:
        lat0, lon0 = around or (self.config.center_lat, self.config.center_lon)
        r = radius_m * math.sqrt(float(self.rng.random()))
        theta = 2 * math.pi * float(self.rng.random())
        return offset_m(lat0, lon0, r * math.cos(theta), r * math.sin(theta))

    def records(self) -> list[Record]:
        """All records of the run, sorted by timestamp (stable)."""
        out = [*self._courier_records(), *self._order_records()]
        if self.config.invalid:
            out.extend(self._invalid_records(out))
        out.sort(key=lambda r: r.ts_ms)
        return out

    # ------------------------------------------------------------------ couriers and pings
    def _courier_records(self) -> Iterator[Record]:
        cfg = self.config
        couriers = []
        for i in range(cfg.n_couriers):
            lat, lon = self._point(cfg.radius_m)
            courier = _Courier(
                f"c{i}", lat, lon, self._point(cfg.radius_m), 3 + 5 * float(self.rng.random())
            )
            couriers.append(courier)
            ts = cfg.start_ts_ms + int(self.rng.integers(0, 5_000))
            vehicle = ["bike", "ebike", "scooter", "car"][i % 4]
            yield _record(
                "courier_events",
                courier.courier_id,
                envelope(
                    "courier_online",
                    f"on-{courier.courier_id}",
                    ts,
                    courier_id=courier.courier_id,
                    lat=lat,
                    lon=lon,
                    capacity=1 + i % 3,
                    vehicle=vehicle,
                    shift_end_ts_ms=cfg.start_ts_ms + 8 * 3_600_000,
                ),
            )
        phase = self.rng.integers(0, cfg.ping_interval_s, size=len(couriers))
        for second in range(10, cfg.duration_s):
            fixes: list[dict[str, Any]] = []
            ts = cfg.start_ts_ms + second * 1000
            for courier, offset in zip(couriers, phase, strict=True):
                if (second - offset) % cfg.ping_interval_s:
                    continue
                _move(courier, cfg.ping_interval_s, self)
                heading = float(self.rng.uniform(0, 360))
                fixes.append(
                    {
                        "courier_id": courier.courier_id,
                        "lat": round(courier.lat, 7),
                        "lon": round(courier.lon, 7),
                        "ts_ms": ts + int(self.rng.integers(0, 1000)),
                        "speed_mps": round(courier.speed_mps, 2),
                        "heading_deg": round(heading, 1),
                        "accuracy_m": round(float(self.rng.uniform(3, 30)), 1),
                    }
                )
            if fixes:
                batch = envelope(
                    "courier_ping_batch",
                    f"pb-{second}",
                    max(f["ts_ms"] for f in fixes),
                    pings=fixes,
                )
                yield _record("courier_pings", "gateway-1", batch)
        for courier in couriers[: max(1, cfg.n_couriers // 10)]:
            ts = cfg.start_ts_ms + cfg.duration_s * 1000 + 1
            event = envelope(
                "courier_offline", f"off-{courier.courier_id}", ts, courier_id=courier.courier_id
            )
            yield _record("courier_events", courier.courier_id, event)

    # ------------------------------------------------------------------ orders
    def _order_records(self) -> Iterator[Record]:
        cfg = self.config
        merchants = [self._point(cfg.radius_m * 0.8) for _ in range(cfg.n_merchants)]
        end_ms = cfg.start_ts_ms + cfg.duration_s * 1000
        for i in range(cfg.n_orders):
            order_id = f"o{i}"
            m = int(self.rng.integers(0, len(merchants)))
            pickup = merchants[m]
            dropoff = self._point(3_000, around=pickup)
            shard = shard_of(pickup[0], pickup[1], cfg.shard_precision)
            placed = cfg.start_ts_ms + int(self.rng.integers(0, cfg.duration_s * 1000 * 2 // 5))
            prep_ms = int(self.rng.integers(4 * 60_000, 12 * 60_000))
            common = {"order_id": order_id, "shard": shard}
            yield _record(
                "order_events",
                shard,
                envelope(
                    "order_created",
                    f"{order_id}-created",
                    placed,
                    merchant_id=f"m{m}",
                    pickup={"lat": pickup[0], "lon": pickup[1]},
                    dropoff={"lat": dropoff[0], "lon": dropoff[1]},
                    promise_ts_ms=placed + 40 * 60_000,
                    prep_estimate_s=prep_ms / 1000,
                    n_items=int(self.rng.integers(1, 6)),
                    **common,
                ),
            )
            yield _record(
                "merchant_ready",
                shard,
                envelope(
                    "merchant_accepted",
                    f"{order_id}-accepted",
                    placed + 30_000,
                    merchant_id=f"m{m}",
                    estimated_ready_ts_ms=placed + prep_ms,
                    **common,
                ),
            )
            if float(self.rng.random()) < cfg.cancel_rate:
                yield _record(
                    "order_events",
                    shard,
                    envelope(
                        "order_cancelled",
                        f"{order_id}-cancelled",
                        placed + 60_000,
                        reason="customer",
                        **common,
                    ),
                )
                continue
            ready = placed + prep_ms
            if ready > end_ms:
                continue
            yield _record(
                "merchant_ready",
                shard,
                envelope("order_ready", f"{order_id}-ready", ready, merchant_id=f"m{m}", **common),
            )
            courier_id = f"c{int(self.rng.integers(0, cfg.n_couriers))}"
            picked = ready + int(self.rng.integers(30_000, 180_000))
            if picked > end_ms:
                continue
            yield _record(
                "delivery_events",
                shard,
                envelope(
                    "delivery_picked_up",
                    f"{order_id}-picked",
                    picked,
                    courier_id=courier_id,
                    **common,
                ),
            )
            delivered = picked + int(self.rng.integers(5 * 60_000, 15 * 60_000))
            if delivered <= end_ms:
                yield _record(
                    "delivery_events",
                    shard,
                    envelope(
                        "delivery_delivered",
                        f"{order_id}-delivered",
                        delivered,
                        courier_id=courier_id,
                        **common,
                    ),
                )

    # ------------------------------------------------------------------ invalid records
    def _invalid_records(self, valid: list[Record]) -> Iterator[Record]:
        cfg = self.config
        t = cfg.start_ts_ms + cfg.duration_s * 500
        shard = shard_of(cfg.center_lat, cfg.center_lon, cfg.shard_precision)
        created = next(r for r in valid if r.topic == "order_events")
        delivered = next((r for r in valid if b'"delivery_delivered"' in r.value), None)
        cancelled = next((r for r in valid if b'"order_cancelled"' in r.value), None)
        for i in range(3):
            yield Record(
                "order_events", shard.encode(), b"{not json" + bytes([i]), t + i, "undecodable"
            )
            yield Record(
                "courier_events",
                b"c0",
                orjson.dumps(
                    envelope("courier_capacity", f"bad-cap-{i}", t, courier_id="c0", capacity=-1)
                ),
                t + i,
                "schema_invalid",
            )
            yield Record(
                "order_events",
                shard.encode(),
                orjson.dumps(
                    envelope(
                        "order_cancelled",
                        f"ghost-{i}",
                        t,
                        order_id=f"ghost{i}",
                        shard=shard,
                        reason="ops",
                    )
                ),
                t + i,
                "unknown_id",
            )
        yield Record(
            "order_events", created.key, created.value, created.ts_ms + 1, "duplicate_event"
        )
        far = t + 2 * 86_400_000
        yield Record(
            "merchant_ready",
            shard.encode(),
            orjson.dumps(
                envelope(
                    "order_ready", "future-1", far, order_id="o0", merchant_id="m0", shard=shard
                )
            ),
            t,
            "timestamp_out_of_range",
        )
        yield Record(
            "order_events",
            b"wrong",
            orjson.dumps(
                envelope(
                    "order_cancelled", "wrongkey-1", t, order_id="o1", shard=shard, reason="ops"
                )
            ),
            t,
            "wrong_key",
        )
        if cancelled is not None:
            yield _after_the_end(
                cancelled,
                "delivery_events",
                "delivery_delivered",
                "late-delivery",
                120_000,
                courier_id="c1",
            )
        if delivered is not None:
            yield _after_the_end(
                delivered,
                "order_events",
                "order_cancelled",
                "late-cancel",
                60_000,
                reason="customer",
            )
        bad_fix = {"courier_id": "c2", "lat": 123.0, "lon": 0.0, "ts_ms": t}
        good_fix = {"courier_id": "c3", "lat": cfg.center_lat, "lon": cfg.center_lon, "ts_ms": t}
        batch = envelope("courier_ping_batch", "mixed-batch", t, pings=[good_fix, bad_fix])
        yield Record("courier_pings", b"gateway-1", orjson.dumps(batch), t, "schema_invalid")


def _move(courier: _Courier, dt_s: float, city: SyntheticCity) -> None:
    """Advance a courier toward its target; pick a new target on arrival."""
    lat, lon = courier.lat, courier.lon
    tlat, tlon = courier.target
    dx, dy = (float(v) for v in project_m(tlat, tlon, lat, lon))
    dist = math.hypot(dx, dy)
    step = courier.speed_mps * dt_s
    if dist <= step:
        courier.lat, courier.lon = tlat, tlon
        courier.target = city._point(city.config.radius_m)
        return
    courier.lat, courier.lon = offset_m(lat, lon, dx / dist * step, dy / dist * step)


def _record(topic: str, key: str, event: dict[str, Any]) -> Record:
    return Record(topic, key.encode(), orjson.dumps(event), int(event["ts_ms"]))


def bad_records(shard: str, lat: float, lon: float, ts_ms: int) -> list[Record]:
    """One record per dead-letter reason a producer can cause, touching no real order or courier.

    Uses ids no simulation uses (`demo-ghost-*`); the ghost order is cancelled at once and its
    courier never pings, so nothing here is ever dispatched. Each record is tagged with the
    reason it must get.
    """
    key = shard.encode()
    ghost = "demo-ghost-o1"
    created = envelope(
        "order_created",
        f"{ghost}-created",
        ts_ms,
        order_id=ghost,
        merchant_id="demo-ghost-m1",
        shard=shard,
        pickup={"lat": lat, "lon": lon},
        dropoff={"lat": lat, "lon": lon},
    )
    cancelled = envelope(
        "order_cancelled",
        f"{ghost}-cancelled",
        ts_ms + 1,
        order_id=ghost,
        shard=shard,
        reason="ops",
    )
    delivered = envelope(
        "delivery_delivered",
        f"{ghost}-delivered",
        ts_ms + 2,
        order_id=ghost,
        courier_id="demo-ghost-c1",
        shard=shard,
    )
    online = envelope(
        "courier_online",
        "demo-ghost-c1-online",
        ts_ms,
        courier_id="demo-ghost-c1",
        lat=lat,
        lon=lon,
        capacity=1,
        vehicle="bike",
    )
    unknown_cancel = envelope(
        "order_cancelled",
        "demo-ghost-o2-cancelled",
        ts_ms,
        order_id="demo-ghost-o2",
        shard=shard,
        reason="ops",
    )
    bad_fix = {"courier_id": "demo-ghost-c1", "lat": 123.0, "lon": lon, "ts_ms": ts_ms}
    pings = envelope("courier_ping_batch", "demo-ghost-pings", ts_ms, pings=[bad_fix])
    response = envelope(
        "assignment_response",
        "demo-ghost-response",
        ts_ms,
        decision_id="demo-ghost-decision",
        courier_id="demo-ghost-c1",
        shard=shard,
        response="accept",
    )
    future = envelope(
        "order_cancelled",
        "demo-ghost-future",
        ts_ms + 86_400_000,
        order_id=ghost,
        shard=shard,
        reason="ops",
    )
    capacity = envelope(
        "courier_capacity", "demo-ghost-c1-capacity", ts_ms, courier_id="demo-ghost-c1", capacity=0
    )
    return [
        Record("order_events", key, orjson.dumps(created), ts_ms),
        Record("order_events", key, orjson.dumps(cancelled), ts_ms + 1),
        Record("delivery_events", key, orjson.dumps(delivered), ts_ms + 2, "invalid_transition"),
        Record("order_events", key, orjson.dumps(created), ts_ms + 3, "duplicate_event"),
        Record("order_events", key, b"{not json", ts_ms, "undecodable"),
        Record("order_events", b"not-the-shard", orjson.dumps(unknown_cancel), ts_ms, "wrong_key"),
        Record("order_events", key, orjson.dumps(future), ts_ms, "timestamp_out_of_range"),
        Record("courier_events", b"demo-ghost-c1", orjson.dumps(online), ts_ms),
        Record("courier_events", b"demo-ghost-c1", orjson.dumps(capacity), ts_ms, "schema_invalid"),
        Record("courier_pings", b"gateway-demo", orjson.dumps(pings), ts_ms, "schema_invalid"),
        Record("assignment_responses", key, orjson.dumps(response), ts_ms, "unknown_id"),
    ]


def _after_the_end(
    final: Record, topic: str, event_type: str, suffix: str, after_ms: int, **fields: Any
) -> Record:
    """An `event_type` of the order that `final` ended, `after_ms` later: an invalid transition."""
    body = orjson.loads(final.value)
    event = envelope(
        event_type,
        f"{body['order_id']}-{suffix}",
        body["ts_ms"] + after_ms,
        order_id=body["order_id"],
        shard=body["shard"],
        **fields,
    )
    return Record(topic, final.key, orjson.dumps(event), event["ts_ms"], "invalid_transition")
