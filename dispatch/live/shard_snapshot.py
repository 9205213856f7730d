"""A tick's view of one shard: its state, positions and ETA predictor as a `decide()` snapshot.

`build_snapshot` turns the shard's state, the couriers' latest positions and the ETA predictor
into the immutable `dispatch.snapshot.Snapshot` that `decide()` takes.

What `build_snapshot` guarantees:

* couriers: exactly the shard's dispatchable couriers (online, holding no open proposal, not
  leaving the shard, their handover into it received), each once, by courier id. A courier with
  a route becomes free where and when its route ends (half a drop-off after the last planned
  stop, never before now); one without a route is free now at its latest position, and is left
  out when that fix is older than `position_max_age_s`. Spare capacity is the capacity less the
  orders it holds (committed and not delivered), so no decision can overload it.
* orders: every live open order of the shard (not picked up, not ended, not under a proposal or
  commitment), by order id, then the orders waiting in a courier's pending pickup (a route whose
  only pickup is its first stop), which only an insertion may join. An order under an open
  proposal is in neither, so a tick never offers an order twice.
* times: ready times (p50 and p90) follow `dispatch.live.staged.ready_times` (the merchant's
  `order_ready`, the prep model, the merchant's estimates, the default, by variant); the promise
  is the order's, or placement plus `default_promise_s`; a shift without an end ends
  `default_shift_s` after its start.
* live inputs (`TickInputs`, `learned` only): each courier's probability of declining, and
  travel legs carrying their live context (`dispatch.live.eta.LegContext`).
* forbidden pairs: each open order with each courier of the snapshot it cools down from at
  `now_ms` (it declined the order, or let an offer of it lapse, less than `cooldown_s` ago),
  so `decide()` never offers the order to that courier until the cool-down ends.
* positions are projected to metres around the centre of the shard's geohash cell; the ETA
  provider (`ShardEta`) predicts in that frame and counts its fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from contracts.geo import decode_center, project_m
from dispatch.lifecycle import OrderState, OrderStatus
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import LegContext, LegPredictor, ShardEta
from dispatch.live.records import CourierRecord, Phase
from dispatch.live.staged import TickInputs, ready_times
from dispatch.live.state import ShardState
from dispatch.snapshot import NO_PICKUP, OPEN, CourierTable, FloatArray, OrderTable, Snapshot


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


@dataclass(frozen=True)
class ShardSnapshot:
    """A tick's snapshot of one shard, with what it was built from.

    Attributes:
        snapshot: what `decide()` sees.
        eta: its ETA provider (counts the predictions that fell back).
        orders: the snapshot's orders by id, in the order of its rows.
    """

    snapshot: Snapshot
    eta: ShardEta
    orders: dict[str, OrderState]

    def open_orders(self) -> list[OrderState]:
        """The snapshot's open orders (not in a pending pickup), in row order."""
        is_open = (self.snapshot.orders.courier_index == OPEN).tolist()
        return [o for o, open_ in zip(self.orders.values(), is_open, strict=True) if open_]


@dataclass(frozen=True)
class CourierStart:
    """A dispatchable courier and where it becomes free, at any time.

    Attributes:
        record: the courier.
        lat: latitude where it becomes free: its route's last stop, or (no route) its fix.
        lon: longitude of that point.
        busy_until_ts_ms: when its route ends (half a drop-off after the last planned stop);
            None without a route (it is free now, where its latest fix is).
        fix_ts_ms: time of that fix (None with a route).
        pending_pickup_ts_ms: planned handover of its pending pickup (`NO_PICKUP` if none).
        pending: the orders waiting in that pickup.
    """

    record: CourierRecord
    lat: float
    lon: float
    busy_until_ts_ms: int | None
    fix_ts_ms: int | None
    pending_pickup_ts_ms: int
    pending: tuple[str, ...]

    def free_ts_ms(self, now_ms: int) -> int:
        """When it is free to start a new job, never before `now_ms`."""
        busy = self.busy_until_ts_ms
        return now_ms if busy is None else max(now_ms, busy)


def build_snapshot(
    state: ShardState,
    positions: PositionView,
    config: EngineConfig,
    predictor: LegPredictor,
    shard: str,
    now_ms: int,
    inputs: TickInputs | None = None,
) -> ShardSnapshot:
    """The snapshot of `shard` at `now_ms` (see the module docstring for what it holds)."""
    live = inputs or TickInputs()
    origin = decode_center(shard)
    free = _free_couriers(state, positions, config, shard, now_ms)
    orders: list[OrderState] = []
    order_courier: list[int] = []
    order_sequence: list[int] = []
    for order in state.live_orders(shard):
        if order.status.terminal or order.status is OrderStatus.PICKED_UP:
            continue
        if order.dispatch.phase is Phase.OPEN:
            orders.append(order)
            order_courier.append(OPEN)
            order_sequence.append(-1)
    for row, courier in enumerate(free):
        route = courier.record.route
        dropoffs = [o for s in route if s.kind == "dropoff" for o in s.order_ids]
        for order_id in courier.pending:
            pending = state.order(order_id)
            if pending is None:
                continue
            orders.append(pending)
            order_courier.append(row)
            order_sequence.append(dropoffs.index(order_id) if order_id in dropoffs else 0)
    ready = ready_times(orders, now_ms, config, live.served, live.telemetry)
    order_table = OrderTable(
        order_id=tuple(o.order_id for o in orders),
        merchant_id=tuple(o.merchant_id for o in orders),
        pickup_xy_m=_xy([o.pickup_lat for o in orders], [o.pickup_lon for o in orders], origin),
        dropoff_xy_m=_xy([o.dropoff_lat for o in orders], [o.dropoff_lon for o in orders], origin),
        placed_ts_ms=np.array([o.placed_ts_ms for o in orders], dtype=np.int64),
        ready_ts_ms=ready.p50_ts_ms,
        promise_ts_ms=np.array(
            [
                o.promise_ts_ms or o.placed_ts_ms + int(config.default_promise_s * 1000)
                for o in orders
            ],
            dtype=np.int64,
        ),
        courier_index=np.array(order_courier, dtype=np.int64),
        drop_sequence=np.array(order_sequence, dtype=np.int64),
        ready_p90_ts_ms=ready.p90_ts_ms,
    )
    learned = config.variant == "learned"
    ids = [c.record.courier_id for c in free]
    decline = np.array([live.decline_prob(i) for i in ids] if learned else [], dtype=np.float64)
    default_shift_ms = int(config.default_shift_s * 1000)
    courier_table = CourierTable(
        courier_id=tuple(c.record.courier_id for c in free),
        free_xy_m=_xy([c.lat for c in free], [c.lon for c in free], origin),
        free_ts_ms=np.array([c.free_ts_ms(now_ms) for c in free], dtype=np.int64),
        shift_end_ts_ms=np.array(
            [
                c.record.shift_end_ts_ms or c.record.shift_start_ts_ms + default_shift_ms
                for c in free
            ],
            dtype=np.int64,
        ),
        spare_capacity=np.array([c.record.spare_capacity for c in free], dtype=np.int64),
        pending_pickup_ts_ms=np.array([c.pending_pickup_ts_ms for c in free], dtype=np.int64),
        orders_done=np.array([c.record.orders_done for c in free], dtype=np.int64),
        shift_start_ts_ms=np.array(
            [min(c.record.shift_start_ts_ms, now_ms) for c in free], dtype=np.int64
        ),
        decline_prob=np.clip(np.nan_to_num(decline, nan=0.0), 0.0, 1.0) if learned else None,
    )
    context = (
        LegContext(live.zone_speed_mps, np.array([live.courier_speed_mps(i) for i in ids]))
        if learned
        else None
    )
    eta = ShardEta(predictor, origin[0], origin[1], now_ms, context)
    snapshot = Snapshot(
        now_ts_ms=now_ms,
        tick_s=config.tick_s,
        orders=order_table,
        couriers=courier_table,
        eta=eta,
        service=config.service,
        shard_id=shard,
        forbidden=_cooling_pairs(orders, order_courier, courier_table.courier_id, now_ms),
    )
    return ShardSnapshot(snapshot, eta, {o.order_id: o for o in orders})


def _cooling_pairs(
    orders: list[OrderState], order_courier: list[int], courier_ids: tuple[str, ...], now_ms: int
) -> tuple[tuple[str, str], ...]:
    """(order, courier) pairs of the open orders and the couriers they cool down from."""
    present = set(courier_ids)
    return tuple(
        (order.order_id, courier_id)
        for order, row in zip(orders, order_courier, strict=True)
        if row == OPEN
        for courier_id, until_ts_ms in order.dispatch.cooldowns
        if until_ts_ms > now_ms and courier_id in present
    )


def courier_starts(
    state: ShardState, positions: PositionView, config: EngineConfig, shard: str
) -> list[CourierStart]:
    """The shard's dispatchable couriers, by id, each with where it becomes free.

    One without a route and without a known position is left out.
    """
    found: list[CourierStart] = []
    for courier in state.couriers(shard):
        if not courier.dispatchable:
            continue
        pending: tuple[str, ...] = ()
        pending_ts = NO_PICKUP
        if courier.route:
            pickups = [s for s in courier.route if s.kind == "pickup"]
            if len(pickups) == 1 and courier.route[0].kind == "pickup":
                pending = pickups[0].order_ids
                pending_ts = pickups[0].planned_ts_ms
            last = courier.route[-1]
            busy_until = last.planned_ts_ms + int(config.service.dropoff_s * 500)
            start = CourierStart(courier, last.lat, last.lon, busy_until, None, pending_ts, pending)
        else:
            position = positions.get(courier.courier_id)
            if position is None:
                continue
            start = CourierStart(
                courier, position.lat, position.lon, None, position.ts_ms, pending_ts, pending
            )
        found.append(start)
    return found


def _free_couriers(
    state: ShardState, positions: PositionView, config: EngineConfig, shard: str, now_ms: int
) -> list[CourierStart]:
    """The shard's dispatchable couriers at `now_ms`, by id.

    One without a route is left out when its fix is older than `position_max_age_s`.
    """
    max_age_ms = int(config.position_max_age_s * 1000)
    return [
        c
        for c in courier_starts(state, positions, config, shard)
        if c.fix_ts_ms is None or now_ms - c.fix_ts_ms <= max_age_ms
    ]


def request_table(
    shard: str,
    pickup: tuple[float, float],
    dropoff: tuple[float, float],
    now_ms: int,
    ready_ts_ms: int | None,
    promise_ts_ms: int | None,
    default_promise_s: float,
) -> OrderTable:
    """A one-order table for a job not placed yet (for `rank`), in `shard`'s frame.

    Ready now unless a later `ready_ts_ms` is given; promised `default_promise_s` from now
    unless `promise_ts_ms` is given.
    """
    origin = decode_center(shard)
    return OrderTable(
        order_id=("request",),
        merchant_id=("request",),
        pickup_xy_m=_xy([pickup[0]], [pickup[1]], origin),
        dropoff_xy_m=_xy([dropoff[0]], [dropoff[1]], origin),
        placed_ts_ms=np.array([now_ms]),
        ready_ts_ms=np.array([max(now_ms, ready_ts_ms or now_ms)]),
        promise_ts_ms=np.array([promise_ts_ms or now_ms + int(default_promise_s * 1000)]),
        courier_index=np.array([OPEN]),
        drop_sequence=np.array([-1]),
    )


def project_xy(lat: list[float], lon: list[float], shard: str) -> FloatArray:
    """Points in metres around the centre of `shard`'s cell (its snapshots' frame), `(n, 2)`."""
    return _xy(lat, lon, decode_center(shard))


def _xy(lat: list[float], lon: list[float], origin: tuple[float, float]) -> FloatArray:
    """Points in metres around `origin`, shape `(n, 2)`."""
    return np.array(project_m(lat, lon, *origin)).T.reshape(len(lat), 2)
