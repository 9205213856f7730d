"""A seeded synthetic event log: merchants, couriers, orders and their lifecycle events.

Used by tests and demos to exercise the feature definitions end to end; the shapes are those
of `features.events`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features import events as ev


def generate_event_log(
    rng: np.random.Generator,
    *,
    start_ts_ms: int = 1_700_000_000_000,
    duration_ms: int = 3 * 3_600_000,
    n_merchants: int = 8,
    n_couriers: int = 12,
    n_orders: int = 120,
    ping_every_ms: int = 60_000,
    center: tuple[float, float] = (40.75, -73.98),
    spread_deg: float = 0.03,
) -> list[dict[str, Any]]:
    """Events sorted by `ts_ms` (ties keep generation order), with unique `event_id`s."""
    lat0, lon0 = center
    merchants = [
        (
            f"m{i}",
            lat0 + rng.uniform(-spread_deg, spread_deg),
            lon0 + rng.uniform(-spread_deg, spread_deg),
        )
        for i in range(n_merchants)
    ]
    out: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0

    def emit(ts: int, etype: str, **fields: Any) -> None:
        nonlocal seq
        seq += 1
        out.append((ts, seq, {"type": etype, "event_id": f"e{seq}", "ts_ms": int(ts), **fields}))

    for c in range(n_couriers):
        lat = lat0 + rng.uniform(-spread_deg, spread_deg)
        lon = lon0 + rng.uniform(-spread_deg, spread_deg)
        t = start_ts_ms + int(rng.integers(0, ping_every_ms))
        online_until = start_ts_ms + int(rng.uniform(0.5, 1.0) * duration_ms)
        while t < online_until:
            lat += rng.normal(0, 0.001)
            lon += rng.normal(0, 0.001)
            speed = None if rng.random() < 0.05 else float(np.clip(rng.normal(6.0, 2.0), 0.0, 30.0))
            emit(
                t,
                ev.COURIER_PING,
                courier_id=f"c{c}",
                lat=float(lat),
                lon=float(lon),
                speed_mps=speed,
            )
            t += ping_every_ms + int(rng.integers(-5_000, 5_000))
    for o in range(n_orders):
        mid, mlat, mlon = merchants[int(rng.integers(0, n_merchants))]
        t0 = start_ts_ms + int(rng.uniform(0, duration_ms))
        oid = f"o{o}"
        emit(
            t0,
            ev.ORDER_CREATED,
            order_id=oid,
            merchant_id=mid,
            pickup_lat=float(mlat),
            pickup_lon=float(mlon),
            dropoff_lat=float(mlat + rng.normal(0, 0.01)),
            dropoff_lon=float(mlon + rng.normal(0, 0.01)),
        )
        if rng.random() < 0.05:
            emit(
                t0 + int(rng.uniform(60_000, 600_000)),
                ev.ORDER_CANCELLED,
                order_id=oid,
                merchant_id=mid,
            )
            continue
        courier = f"c{int(rng.integers(0, n_couriers))}"
        t_offer = t0 + int(rng.uniform(30_000, 300_000))
        if rng.random() < 0.2:
            emit(
                t_offer,
                ev.ASSIGNMENT_RESPONSE,
                courier_id=courier,
                decision_id=f"d-{oid}-declined",
                response="decline",
            )
            t_offer += 60_000
        emit(
            t_offer,
            ev.ASSIGNMENT_RESPONSE,
            courier_id=courier,
            decision_id=f"d-{oid}",
            response="accept",
        )
        t_ready = t0 + int(rng.gamma(4.0, 150_000.0))
        emit(
            min(t0 + 45_000, t_ready - 1),
            ev.MERCHANT_ESTIMATE,
            order_id=oid,
            merchant_id=mid,
            estimated_ready_ts_ms=t0 + (t_ready - t0) * 9 // 10,
        )
        emit(t_ready, ev.MERCHANT_READY, order_id=oid, merchant_id=mid)
        t_pick = max(t_ready, t_offer) + int(rng.uniform(60_000, 600_000))
        emit(t_pick - 30_000, ev.ARRIVED, order_id=oid, courier_id=courier, stop="pickup")
        emit(t_pick, ev.PICKED_UP, order_id=oid, merchant_id=mid, courier_id=courier)
        t_delivered = t_pick + int(rng.uniform(300_000, 1_500_000))
        emit(t_delivered - 30_000, ev.ARRIVED, order_id=oid, courier_id=courier, stop="dropoff")
        emit(t_delivered, ev.DELIVERED, order_id=oid, courier_id=courier)
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]
