"""The immutable input of one dispatch tick: orders, couriers, service times, ETA and the clock.

Units: positions are in a local planar frame in metres (`*_xy_m`, shape `(n, 2)`, float64),
timestamps are epoch milliseconds (`*_ts_ms`, int64) and durations are seconds (`*_s`).
Tables are column-oriented (one numpy array per field, one row per order or courier) so that
a live shard with thousands of rows can be filled and scored without Python loops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from contracts.columns import take_rows
from dispatch.eta import EtaProvider

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Value of `pending_pickup_ts_ms` for a courier without a pending pickup.
NO_PICKUP = -1
#: Value of `OrderTable.courier_index` for an open (not yet committed) order.
OPEN = -1


class SnapshotError(ValueError):
    """A snapshot whose columns are inconsistent, mis-shaped or out of range."""


def _ids(name: str, values: Sequence[str]) -> tuple[str, ...]:
    ids = tuple(map(str, values))
    if len(set(ids)) != len(ids):
        raise SnapshotError(f"{name} holds duplicate ids")
    return ids


def _points(name: str, values: object, n: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if n == 0 and array.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if array.shape != (n, 2):
        raise SnapshotError(f"{name} must have shape ({n}, 2), got {array.shape}")
    if not np.isfinite(array).all():
        raise SnapshotError(f"{name} holds a non-finite coordinate")
    return array


def _ints(name: str, values: object, n: int) -> IntArray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise SnapshotError(f"{name} must have shape ({n},), got {array.shape}")
    whole = np.issubdtype(array.dtype, np.integer) or (
        np.isfinite(array).all() and np.array_equal(array, np.round(array))
    )
    if n and not whole:
        raise SnapshotError(f"{name} must hold whole numbers")
    return array.astype(np.int64)


@dataclass(frozen=True)
class ServiceTimes:
    """Time spent at stops; each handover happens at the midpoint of its service time.

    A courier arriving at a merchant at `a` hands over at `max(ready, a + pickup_s / 2)` and
    leaves `pickup_s / 2` later; at a customer it hands over `dropoff_s / 2` after arriving and
    leaves `dropoff_s / 2` after the handover (the MDRP rule, 4 + 4 minutes there).

    Attributes:
        pickup_s: total service time at a merchant, seconds.
        dropoff_s: total service time at a customer, seconds.
    """

    pickup_s: float = 240.0
    dropoff_s: float = 240.0

    def __post_init__(self) -> None:
        for name in ("pickup_s", "dropoff_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SnapshotError(f"{name} must be a non-negative number of seconds")


@dataclass(frozen=True, eq=False)
class OrderTable:
    """Orders a tick may act on: open ones and those waiting in a courier's pending pickup.

    Attributes:
        order_id: unique order ids.
        merchant_id: merchant of each order (bundles only join orders of one merchant).
        pickup_xy_m: merchant location, metres, shape `(n, 2)`.
        dropoff_xy_m: customer location, metres, shape `(n, 2)`.
        placed_ts_ms: when the customer placed the order (epoch ms).
        ready_ts_ms: when the food is ready (known or predicted, epoch ms).
        promise_ts_ms: promised delivery time (epoch ms); lateness is measured against it.
        courier_index: `OPEN` (-1) for an open order, else the row in `CourierTable` of the
            courier whose pending (not yet picked up) bundle holds it.
        drop_sequence: position of the order in that courier's drop-off sequence (0-based);
            `-1` for open orders.
        ready_p90_ts_ms: the pessimistic (p90) ready time, at or after `ready_ts_ms`; lateness
            risk is priced from it. None: the ready time is known (same as `ready_ts_ms`).
    """

    order_id: tuple[str, ...]
    merchant_id: tuple[str, ...]
    pickup_xy_m: FloatArray
    dropoff_xy_m: FloatArray
    placed_ts_ms: IntArray
    ready_ts_ms: IntArray
    promise_ts_ms: IntArray
    courier_index: IntArray
    drop_sequence: IntArray
    ready_p90_ts_ms: IntArray | None = None

    def __post_init__(self) -> None:
        ids = _ids("order_id", self.order_id)
        n = len(ids)
        set_ = object.__setattr__
        set_(self, "order_id", ids)
        merchants = tuple(str(m) for m in self.merchant_id)
        if len(merchants) != n:
            raise SnapshotError(f"merchant_id must have {n} entries, got {len(merchants)}")
        set_(self, "merchant_id", merchants)
        set_(self, "pickup_xy_m", _points("pickup_xy_m", self.pickup_xy_m, n))
        set_(self, "dropoff_xy_m", _points("dropoff_xy_m", self.dropoff_xy_m, n))
        for name in ("placed_ts_ms", "ready_ts_ms", "promise_ts_ms", "courier_index"):
            set_(self, name, _ints(name, getattr(self, name), n))
        set_(self, "drop_sequence", _ints("drop_sequence", self.drop_sequence, n))
        if (self.courier_index < OPEN).any():
            raise SnapshotError("courier_index must be -1 (open) or a courier row")
        if ((self.courier_index == OPEN) != (self.drop_sequence < 0)).any():
            raise SnapshotError("drop_sequence must be -1 exactly for open orders")
        if (self.ready_ts_ms < self.placed_ts_ms).any():
            raise SnapshotError("an order is ready before it is placed")
        if self.ready_p90_ts_ms is None:
            set_(self, "ready_p90_ts_ms", self.ready_ts_ms)
        else:
            set_(self, "ready_p90_ts_ms", _ints("ready_p90_ts_ms", self.ready_p90_ts_ms, n))
        if (self.ready_late_ts_ms < self.ready_ts_ms).any():
            raise SnapshotError("ready_p90_ts_ms is before ready_ts_ms")

    @property
    def n(self) -> int:
        """Number of orders."""
        return len(self.order_id)

    @property
    def ready_late_ts_ms(self) -> IntArray:
        """`ready_p90_ts_ms`, filled in (`ready_ts_ms` where none was given)."""
        return self.ready_p90_ts_ms if self.ready_p90_ts_ms is not None else self.ready_ts_ms

    @cached_property
    def merchant_code(self) -> IntArray:
        """Dense integer code per merchant id (equal ids get equal codes)."""
        codes: dict[str, int] = {}
        return np.fromiter(
            (codes.setdefault(m, len(codes)) for m in self.merchant_id),
            dtype=np.int64,
            count=self.n,
        )

    @classmethod
    def empty(cls) -> OrderTable:
        """A table with no orders."""
        none = np.zeros(0, dtype=np.int64)
        return cls((), (), np.zeros((0, 2)), np.zeros((0, 2)), none, none, none, none, none)


@dataclass(frozen=True, eq=False)
class CourierTable:
    """Couriers a tick may assign: where and when each becomes free, and its pending pickup.

    A courier's committed route (onboard orders, a pending pickup and its drop-offs) ends at
    `free_xy_m` at `free_ts_ms`; a new job starts from there. An idle courier has
    `free_ts_ms <= now` (the time it arrived or finished there). A courier heading to a merchant
    without orders (a reposition) is free at the merchant at its arrival time.

    Attributes:
        courier_id: unique courier ids.
        free_xy_m: where the courier becomes free, metres, shape `(m, 2)`.
        free_ts_ms: when it becomes free there (epoch ms).
        shift_end_ts_ms: latest time it may pick up (drop-offs may finish later).
        spare_capacity: how many more orders it may carry at once.
        pending_pickup_ts_ms: planned handover time of its pending bundle, `NO_PICKUP` if none;
            the bundle's orders are the `OrderTable` rows whose `courier_index` is this row.
        orders_done: orders it delivered so far in this shift (for load balancing).
        shift_start_ts_ms: start of its shift (epoch ms).
        decline_prob: probability that it declines an offer, in [0, 1] (None: zeros).
    """

    courier_id: tuple[str, ...]
    free_xy_m: FloatArray
    free_ts_ms: IntArray
    shift_end_ts_ms: IntArray
    spare_capacity: IntArray
    pending_pickup_ts_ms: IntArray
    orders_done: IntArray
    shift_start_ts_ms: IntArray
    decline_prob: FloatArray | None = None

    def __post_init__(self) -> None:
        ids = _ids("courier_id", self.courier_id)
        m = len(ids)
        set_ = object.__setattr__
        set_(self, "courier_id", ids)
        set_(self, "free_xy_m", _points("free_xy_m", self.free_xy_m, m))
        for name in (
            "free_ts_ms",
            "shift_end_ts_ms",
            "spare_capacity",
            "pending_pickup_ts_ms",
            "orders_done",
            "shift_start_ts_ms",
        ):
            set_(self, name, _ints(name, getattr(self, name), m))
        if (self.spare_capacity < 0).any():
            raise SnapshotError("spare_capacity must be non-negative")
        if (self.orders_done < 0).any():
            raise SnapshotError("orders_done must be non-negative")
        if (self.shift_end_ts_ms < self.shift_start_ts_ms).any():
            raise SnapshotError("a shift ends before it starts")
        decline = (
            np.zeros(m, dtype=np.float64)
            if self.decline_prob is None
            else np.asarray(self.decline_prob, dtype=np.float64)
        )
        if (
            decline.shape != (m,)
            or not (np.isfinite(decline) & (decline >= 0) & (decline <= 1)).all()
        ):
            raise SnapshotError(f"decline_prob must hold {m} probabilities in [0, 1]")
        set_(self, "decline_prob", decline)

    @property
    def m(self) -> int:
        """Number of couriers."""
        return len(self.courier_id)

    def take(self, rows: IntArray) -> CourierTable:
        """The couriers at `rows`, in that order."""
        return take_rows(self, rows)

    @property
    def p_decline(self) -> FloatArray:
        """`decline_prob`, filled in (zeros where none was given)."""
        return self.decline_prob if self.decline_prob is not None else np.zeros(self.m)

    @classmethod
    def empty(cls) -> CourierTable:
        """A table with no couriers."""
        none = np.zeros(0, dtype=np.int64)
        return cls((), np.zeros((0, 2)), none, none, none, none, none, none)


@dataclass(frozen=True, eq=False)
class MerchantTable:
    """Merchants with their expected demand, used to reposition idle couriers.

    Attributes:
        merchant_id: unique merchant ids.
        xy_m: merchant locations, metres, shape `(r, 2)`.
        demand_per_h: expected orders per hour at each merchant (non-negative; a recent-rate
            estimate from the feature layer).
    """

    merchant_id: tuple[str, ...]
    xy_m: FloatArray
    demand_per_h: FloatArray

    def __post_init__(self) -> None:
        ids = _ids("merchant_id", self.merchant_id)
        r = len(ids)
        object.__setattr__(self, "merchant_id", ids)
        object.__setattr__(self, "xy_m", _points("xy_m", self.xy_m, r))
        demand = np.asarray(self.demand_per_h, dtype=np.float64)
        if demand.shape != (r,) or not np.isfinite(demand).all() or (demand < 0).any():
            raise SnapshotError("demand_per_h must be finite, non-negative, one per merchant")
        object.__setattr__(self, "demand_per_h", demand)

    @property
    def n(self) -> int:
        """Number of merchants."""
        return len(self.merchant_id)

    @classmethod
    def empty(cls) -> MerchantTable:
        """A table with no merchants (no repositioning)."""
        return cls((), np.zeros((0, 2)), np.zeros(0))


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything one tick of one shard sees; `decide()` never looks elsewhere.

    Attributes:
        now_ts_ms: the tick's event time (epoch ms).
        tick_s: seconds until the next tick; a choice that can wait that long is held.
        orders: open orders and orders in pending pickups.
        couriers: couriers that may receive work.
        eta: travel-time provider (p50/p90 seconds).
        service: service times at merchants and customers.
        merchants: merchants and their expected demand (for repositioning; may be empty).
        shard_id: shard name, part of every decision id.
        forbidden: `(order_id, courier_id)` pairs no option may join (the courier declined the
            order, or let its offer lapse, and is cooling down from it): the order is never
            assigned to that courier, inserted into its pending pickup, chained after its job
            or ranked for it. Each pair names an order and a courier of the tables; stored
            sorted and without repeats.
    """

    now_ts_ms: int
    tick_s: float
    orders: OrderTable
    couriers: CourierTable
    eta: EtaProvider
    service: ServiceTimes = field(default_factory=ServiceTimes)
    merchants: MerchantTable = field(default_factory=MerchantTable.empty)
    shard_id: str = ""
    forbidden: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tick_s) and self.tick_s > 0):
            raise SnapshotError(f"tick_s must be positive, got {self.tick_s}")
        object.__setattr__(self, "now_ts_ms", int(self.now_ts_ms))
        index = self.orders.courier_index
        if self.orders.n and int(index.max(initial=OPEN)) >= self.couriers.m:
            raise SnapshotError("courier_index points past the courier table")
        pending = index[index >= 0]
        if pending.size and (self.couriers.pending_pickup_ts_ms[pending] == NO_PICKUP).any():
            raise SnapshotError("an order waits in the pending pickup of a courier without one")
        try:
            pairs = tuple(sorted({(str(o), str(c)) for o, c in self.forbidden}))
        except (TypeError, ValueError) as exc:
            raise SnapshotError("forbidden must hold (order_id, courier_id) pairs") from exc
        object.__setattr__(self, "forbidden", pairs)
        if pairs:
            order_ids, courier_ids = set(self.orders.order_id), set(self.couriers.courier_id)
            unknown = [p for p in pairs if p[0] not in order_ids or p[1] not in courier_ids]
            if unknown:
                msg = f"forbidden pair {unknown[0]} names an order or courier not in the tables"
                raise SnapshotError(msg)

    @cached_property
    def _forbidden_codes(self) -> IntArray:
        """`order_row * m + courier_row` of each forbidden pair, sorted."""
        order_row = {o: i for i, o in enumerate(self.orders.order_id)}
        courier_row = {c: j for j, c in enumerate(self.couriers.courier_id)}
        m = self.couriers.m
        codes = [order_row[o] * m + courier_row[c] for o, c in self.forbidden]
        return np.sort(np.array(codes, dtype=np.int64))

    def forbids(self, order_row: npt.ArrayLike, courier_row: npt.ArrayLike) -> BoolArray:
        """Whether each (order row, courier row) pair is forbidden (rows broadcast together)."""
        orders = np.asarray(order_row, dtype=np.int64)
        couriers = np.asarray(courier_row, dtype=np.int64)
        if not self.forbidden:
            return np.zeros(np.broadcast_shapes(orders.shape, couriers.shape), dtype=bool)
        return np.isin(orders * self.couriers.m + couriers, self._forbidden_codes)
