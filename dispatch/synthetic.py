"""Synthetic shard snapshots for latency benchmarks and property tests (seeded, pure).

A shard is a square city with clustered merchants; orders are picked up at merchants and
dropped within a few kilometres, most of them ready within the next half hour (a steady state:
late orders do not pile up); couriers are spread over the city, some idle, some busy until a
later time, a few with a pending pickup holding one or two orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch.eta import StraightLineEta
from dispatch.snapshot import (
    NO_PICKUP,
    OPEN,
    CourierTable,
    MerchantTable,
    OrderTable,
    ServiceTimes,
    Snapshot,
)


@dataclass(frozen=True)
class ShardShape:
    """Size and layout of a synthetic shard.

    Attributes:
        orders: open orders.
        couriers: couriers.
        merchants: merchants.
        city_m: side of the square city, metres.
        pending_share: share of couriers with a pending pickup (each holding 1-2 orders).
        idle_share: share of couriers free now.
        capacity: courier capacity (orders carried at once).
    """

    orders: int
    couriers: int
    merchants: int = 400
    city_m: float = 20_000.0
    pending_share: float = 0.05
    idle_share: float = 0.4
    capacity: int = 3

    def __post_init__(self) -> None:
        if min(self.orders, self.couriers, self.merchants) < 0 or self.merchants == 0:
            raise ValueError("orders and couriers must be >= 0 and merchants > 0")
        if not (0 <= self.pending_share <= 1 and 0 <= self.idle_share <= 1):
            raise ValueError("shares must be within [0, 1]")


def synthetic_snapshot(
    shape: ShardShape, rng: np.random.Generator, now_ts_ms: int = 1_700_000_000_000
) -> Snapshot:
    """A random, valid snapshot of the given shape."""
    city = shape.city_m
    centres = rng.uniform(0.2 * city, 0.8 * city, size=(5, 2))
    merchant_xy = np.clip(
        centres[rng.integers(0, 5, shape.merchants)]
        + rng.normal(0, 0.12 * city, (shape.merchants, 2)),
        0,
        city,
    )
    merchant_id = tuple(f"m{i}" for i in range(shape.merchants))
    demand = rng.gamma(1.0, 2.0, shape.merchants)

    m = shape.couriers
    n_pending_couriers = round(shape.pending_share * m)
    pending_couriers = (
        rng.choice(m, size=n_pending_couriers, replace=False) if m else np.zeros(0, np.int64)
    )
    pending_rows: list[int] = []
    pending_courier: list[int] = []
    pending_seq: list[int] = []
    pending_merchant: list[int] = []
    for c in pending_couriers:
        count = int(rng.integers(1, min(2, shape.capacity) + 1))
        merchant = int(rng.integers(0, shape.merchants))
        for k in range(count):
            pending_rows.append(len(pending_rows))
            pending_courier.append(int(c))
            pending_seq.append(k)
            pending_merchant.append(merchant)
    n_open = shape.orders
    n_total = n_open + len(pending_rows)
    merchant_of = np.concatenate(
        [
            rng.choice(shape.merchants, size=n_open, p=demand / demand.sum()),
            np.array(pending_merchant, dtype=np.int64),
        ]
    ).astype(np.int64)
    pickup = merchant_xy[merchant_of]
    dropoff = np.clip(pickup + rng.normal(0, 2_000.0, (n_total, 2)), 0, city)
    # Steady state: late orders are committed as soon as they are late, so most open orders
    # are ready in the future; a few are just past ready.
    ready = now_ts_ms + rng.integers(-30_000, 30 * 60_000, n_total)
    placed = np.minimum(ready - rng.integers(5 * 60_000, 30 * 60_000, n_total), now_ts_ms)
    courier_index = np.concatenate(
        [np.full(n_open, OPEN, dtype=np.int64), np.array(pending_courier, dtype=np.int64)]
    )
    sequence = np.concatenate(
        [np.full(n_open, -1, dtype=np.int64), np.array(pending_seq, dtype=np.int64)]
    )
    orders = OrderTable(
        order_id=tuple(f"o{i}" for i in range(n_total)),
        merchant_id=tuple(merchant_id[k] for k in merchant_of),
        pickup_xy_m=pickup,
        dropoff_xy_m=dropoff,
        placed_ts_ms=placed,
        ready_ts_ms=ready,
        promise_ts_ms=placed + 40 * 60_000,
        courier_index=courier_index,
        drop_sequence=sequence,
    )

    courier_xy = rng.uniform(0, city, (m, 2))
    idle = rng.random(m) < shape.idle_share
    free = np.where(
        idle,
        now_ts_ms - rng.integers(0, 10 * 60_000, m),
        now_ts_ms + rng.integers(0, 30 * 60_000, m),
    )
    pending_pickup = np.full(m, NO_PICKUP, dtype=np.int64)
    spare = np.full(m, shape.capacity, dtype=np.int64)
    for c in set(int(x) for x in pending_couriers):
        held = courier_index == c
        pending_pickup[c] = now_ts_ms + int(rng.integers(60_000, 15 * 60_000))
        free[c] = max(int(free[c]), int(pending_pickup[c]) + 15 * 60_000)
        spare[c] = shape.capacity - int(held.sum())
        courier_xy[c] = dropoff[held][-1]
    start = now_ts_ms - rng.integers(0, 4 * 3_600_000, m)
    couriers = CourierTable(
        courier_id=tuple(f"c{i}" for i in range(m)),
        free_xy_m=courier_xy,
        free_ts_ms=free,
        shift_end_ts_ms=now_ts_ms + rng.integers(30 * 60_000, 6 * 3_600_000, m),
        spare_capacity=spare,
        pending_pickup_ts_ms=pending_pickup,
        orders_done=rng.integers(0, 12, m),
        shift_start_ts_ms=start,
    )
    return Snapshot(
        now_ts_ms=now_ts_ms,
        tick_s=2.0,
        orders=orders,
        couriers=couriers,
        eta=StraightLineEta(),
        service=ServiceTimes(),
        merchants=MerchantTable(merchant_id, merchant_xy, demand),
        shard_id="synthetic",
    )


class ShardStream:
    """A rolling synthetic shard: each tick applies the previous decisions and refills orders.

    Committed orders leave the open set and their courier becomes busy until the planned last
    drop-off, free at its customer; repositioned couriers become free at their target when
    they arrive; new orders arrive so that `shape.orders` stay open. This keeps ticks in a
    steady state (few orders late, a realistic number of commitments per tick).

    Args:
        shape: shard size.
        rng: seeded generator.
        tick_s: seconds between ticks.
    """

    def __init__(self, shape: ShardShape, rng: np.random.Generator, tick_s: float = 2.0) -> None:
        self.shape = shape
        self.rng = rng
        self.tick_s = tick_s
        self.snapshot = synthetic_snapshot(shape, rng)
        self._next_id = self.snapshot.orders.n

    def advance(self, decisions: object) -> Snapshot:
        """Apply `decisions` (a `Decisions`) to the current snapshot and return the next one."""
        from dispatch.decisions import Decisions

        if not isinstance(decisions, Decisions):
            raise TypeError("advance() takes the Decisions of the current snapshot")
        snap = self.snapshot
        now = snap.now_ts_ms + int(self.tick_s * 1000)
        orders, couriers = snap.orders, snap.couriers
        c_index = {cid: i for i, cid in enumerate(couriers.courier_id)}
        free_xy = couriers.free_xy_m.copy()
        free_ts = couriers.free_ts_ms.copy()
        pending = couriers.pending_pickup_ts_ms.copy()
        spare = couriers.spare_capacity.copy()
        gone: set[str] = set()
        for a in decisions.assignments:
            c = c_index[a.courier_id]
            last = a.stops[-1]
            free_xy[c] = last.xy_m
            free_ts[c] = last.handover_ts_ms + int(snap.service.dropoff_s * 500)
            pending[c] = -1
            spare[c] = self.shape.capacity
            gone.update(a.order_ids)
        for r in decisions.repositions:
            c = c_index[r.courier_id]
            free_xy[c] = r.xy_m
            free_ts[c] = r.arrival_ts_ms
        # Pending pickups that happened leave with their orders.
        picked = (pending >= 0) & (pending < now)
        keep = np.array(
            [
                oid not in gone and (ci < 0 or not picked[ci])
                for oid, ci in zip(orders.order_id, orders.courier_index, strict=True)
            ],
            dtype=bool,
        )
        pending[picked] = -1
        spare[picked] = self.shape.capacity
        still_pending = np.zeros(couriers.m, dtype=bool)
        still_pending[orders.courier_index[keep & (orders.courier_index >= 0)]] = True
        pending[~still_pending] = -1
        spare[~still_pending] = self.shape.capacity
        n_new = max(self.shape.orders - int((keep & (orders.courier_index < 0)).sum()), 0)
        merchants = snap.merchants
        demand = merchants.demand_per_h
        merchant_of = self.rng.choice(merchants.n, size=n_new, p=demand / demand.sum())
        pickup = merchants.xy_m[merchant_of]
        dropoff = np.clip(pickup + self.rng.normal(0, 2_000.0, (n_new, 2)), 0, self.shape.city_m)
        ready = now + self.rng.integers(5 * 60_000, 35 * 60_000, n_new)
        new_ids = tuple(f"o{self._next_id + i}" for i in range(n_new))
        self._next_id += n_new
        next_orders = OrderTable(
            order_id=tuple(o for o, k in zip(orders.order_id, keep, strict=True) if k) + new_ids,
            merchant_id=tuple(m for m, k in zip(orders.merchant_id, keep, strict=True) if k)
            + tuple(merchants.merchant_id[i] for i in merchant_of),
            pickup_xy_m=np.vstack([orders.pickup_xy_m[keep], pickup]),
            dropoff_xy_m=np.vstack([orders.dropoff_xy_m[keep], dropoff]),
            placed_ts_ms=np.concatenate([orders.placed_ts_ms[keep], np.full(n_new, now)]),
            ready_ts_ms=np.concatenate([orders.ready_ts_ms[keep], ready]),
            promise_ts_ms=np.concatenate(
                [orders.promise_ts_ms[keep], np.full(n_new, now + 2_400_000)]
            ),
            courier_index=np.concatenate(
                [orders.courier_index[keep], np.full(n_new, OPEN, dtype=np.int64)]
            ),
            drop_sequence=np.concatenate(
                [orders.drop_sequence[keep], np.full(n_new, -1, dtype=np.int64)]
            ),
        )
        next_couriers = CourierTable(
            courier_id=couriers.courier_id,
            free_xy_m=free_xy,
            free_ts_ms=free_ts,
            shift_end_ts_ms=np.maximum(couriers.shift_end_ts_ms, now + 30 * 60_000),
            spare_capacity=spare,
            pending_pickup_ts_ms=pending,
            orders_done=couriers.orders_done,
            shift_start_ts_ms=couriers.shift_start_ts_ms,
        )
        self.snapshot = Snapshot(
            now_ts_ms=now,
            tick_s=self.tick_s,
            orders=next_orders,
            couriers=next_couriers,
            eta=snap.eta,
            service=snap.service,
            merchants=merchants,
            shard_id=snap.shard_id,
        )
        return self.snapshot
