"""Event-time MDRP simulator: the benchmark's rules around the very `decide()` the live workers run.

Rules (Reyes et al. 2018, with prepositioning moves and assignment updates at the restaurant):
couriers start at their on-location at their on-time and move only when instructed; travel
takes `ceil(distance / meters_per_minute)` minutes; pickup happens at
`max(latest ready time of the bundle, arrival + pickup service / 2)` and the courier leaves
half a service later; a drop-off happens half a drop-off service after arrival and the courier
leaves half a service later; no pickup after the courier's off-time (drop-offs may end later);
a courier's move cannot be changed once started. A bundle's orders come from one restaurant;
while its pickup has not happened, the courier's last bundle may gain orders of that
restaurant (an assignment update). An idle courier may be sent to a restaurant without an
order (a prepositioning move). Every `tick_min` minutes the simulator builds a `Snapshot` of
the placed orders and the couriers, calls the decision function and applies its decisions,
rejecting (and counting) any decision that would break a rule.

`foresight_min` is a diagnostic outside the benchmark's rules: the snapshot also shows the
orders placed within that many minutes ahead, so a run measures what knowing the future is
worth (an information ceiling for online policies). Nothing is assigned before it is placed: a
new job for an order not placed yet becomes a move of its idle courier to the order's
restaurant, and other decisions on such orders are dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from dispatch.decisions import Assignment, Decisions, Reposition
from dispatch.engine import decide
from dispatch.eta import GridTravelTime
from dispatch.policy import Policy
from dispatch.snapshot import (
    NO_PICKUP,
    OPEN,
    CourierTable,
    MerchantTable,
    OrderTable,
    ServiceTimes,
    Snapshot,
)
from simulators.mdrp.instance import IntArray, MdrpInstance
from simulators.mdrp.solution import (
    ON_LOCATION,
    AssignmentRecord,
    MdrpSolution,
    MoveRecord,
    OrderRecord,
)

MS_PER_MIN = 60_000

#: The decision function the simulator calls each tick (`decide` unless a test swaps it).
DecideFn = Callable[[Snapshot, Policy], Decisions]

_NOT_PLACED, _OPEN, _COMMITTED = 0, 1, 2
_NEVER = np.iinfo(np.int64).max


@dataclass
class _Job:
    """A bundle committed to a courier, scheduled in whole minutes."""

    restaurant: int
    orders: list[int]
    assign_min: int
    origin: str | None
    depart_min: int
    arrival_min: int
    pickup_min: int = 0
    drop_min: list[int] = field(default_factory=list)
    end_min: int = 0
    fixed: bool = False


@dataclass
class _Courier:
    """Where a courier is once all its jobs are done, and its jobs still open to change."""

    place: str
    xy: tuple[float, float]
    free_min: int
    jobs: list[_Job] = field(default_factory=list)
    moves: list[MoveRecord] = field(default_factory=list)
    delivered: int = 0


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation produced.

    Attributes:
        solution: the benchmark-format solution.
        rejected: count of rejected decisions by reason (a correct policy has none).
        ticks: number of ticks simulated.
        decide_calls: number of `decide()` calls.
        decide_seconds: wall time spent inside `decide()`.
        fallback_ticks: ticks where the greedy circuit breaker decided.
        earliest_pickup_min: per order (instance row), the earliest pickup any courier could
            have given it as things stood when it was placed (see
            `MdrpSimulator.earliest_pickups`); -1 for orders not placed during the run or that
            no courier could have picked up. No policy could have picked the order up earlier
            from that moment: food waiting up to it was decided before the order existed.
    """

    solution: MdrpSolution
    rejected: Counter[str]
    ticks: int
    decide_calls: int
    decide_seconds: float
    fallback_ticks: int
    earliest_pickup_min: IntArray


class MdrpSimulator:
    """Simulate one instance under one policy.

    Args:
        instance: the MDRP instance.
        policy: the dispatch policy passed to `decide()`.
        tick_min: minutes between ticks (positive).
        courier_lookahead_min: couriers whose shift starts within this many minutes are shown
            to `decide()` (free at their on-location at their on-time).
        capacity: most orders a courier carries at once (MDRP bundles are unlimited).
        demand_half_life_min: half-life of the per-restaurant demand estimate (orders seen so
            far, exponentially decayed) passed to `decide()` for repositioning.
        decide_fn: the decision function (the dispatch core's `decide` by default).
        foresight_min: diagnostic: minutes ahead of placement at which orders become visible
            to `decide()` (0, the benchmark's rule, shows only placed orders).
    """

    def __init__(
        self,
        instance: MdrpInstance,
        policy: Policy,
        *,
        tick_min: int = 1,
        courier_lookahead_min: int = 30,
        capacity: int = 1000,
        demand_half_life_min: float = 120.0,
        decide_fn: DecideFn = decide,
        foresight_min: int = 0,
    ) -> None:
        if tick_min < 1:
            raise ValueError(f"tick_min must be a positive number of minutes, got {tick_min}")
        if courier_lookahead_min < 0 or capacity < 1 or demand_half_life_min <= 0:
            raise ValueError(
                "courier_lookahead_min must be >= 0, capacity >= 1, demand_half_life_min > 0"
            )
        if foresight_min < 0:
            raise ValueError(f"foresight_min must be >= 0, got {foresight_min}")
        self.foresight_min = foresight_min
        self.demand_half_life_min = demand_half_life_min
        self.demand = np.zeros(len(instance.restaurant_id), dtype=np.float64)
        self.instance = instance
        self.policy = policy
        self.tick_min = tick_min
        self.lookahead_min = courier_lookahead_min
        self.capacity = capacity
        self.decide_fn = decide_fn
        p = instance.params
        self.half_pickup = p.pickup_service_min // 2
        self.half_dropoff = p.dropoff_service_min // 2
        self.eta = GridTravelTime(p.meters_per_minute)
        self.service = ServiceTimes(p.pickup_service_min * 60.0, p.dropoff_service_min * 60.0)
        self.couriers = [
            _Courier(place=cid, xy=(float(xy[0]), float(xy[1])), free_min=int(on))
            for cid, xy, on in zip(
                instance.courier_id, instance.courier_xy, instance.on_min, strict=True
            )
        ]
        n = instance.n_orders
        self.status = np.full(n, _NOT_PLACED, dtype=np.int8)
        self.order_job: dict[int, tuple[int, _Job]] = {}
        self.rejected: Counter[str] = Counter()
        self.records: list[tuple[int, AssignmentRecord, list[OrderRecord]]] = []
        # Per-courier end of route (where and when it becomes free) and updatable pickup.
        m = instance.n_couriers
        self.end_min = instance.on_min.astype(np.int64).copy()
        self.end_xy = instance.courier_xy.astype(np.float64).copy()
        self.pending_min = np.full(m, NO_PICKUP, dtype=np.int64)
        self.first_pickup_min = np.full(m, _NEVER, dtype=np.int64)
        self.earliest_pickup_min = np.full(n, -1, dtype=np.int64)

    # ----------------------------------------------------------------- scheduling

    def _travel(self, a: tuple[float, float], b: tuple[float, float]) -> int:
        return int(np.ceil(np.sqrt((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) / self._mpm))

    @property
    def _mpm(self) -> float:
        return float(self.instance.params.meters_per_minute)

    def _route_start(self, c: int) -> tuple[str, tuple[float, float], int]:
        courier = self.couriers[c]
        if courier.jobs:
            last = courier.jobs[-1]
            o = last.orders[-1]
            return self.instance.order_id[o], self._order_xy(o), last.end_min
        return courier.place, courier.xy, courier.free_min

    def _order_xy(self, o: int) -> tuple[float, float]:
        xy = self.instance.order_xy[o]
        return float(xy[0]), float(xy[1])

    def _restaurant_xy(self, r: int) -> tuple[float, float]:
        xy = self.instance.restaurant_xy[r]
        return float(xy[0]), float(xy[1])

    def _schedule(self, job: _Job, now: int) -> None:
        """Fill pickup, drop-off and end times of `job` from its arrival and orders."""
        inst = self.instance
        ready = max(int(inst.ready_min[o]) for o in job.orders)
        job.pickup_min = max(job.arrival_min + self.half_pickup, ready, now)
        leave = job.pickup_min + self.half_pickup
        here = self._restaurant_xy(job.restaurant)
        job.drop_min = []
        for o in job.orders:
            there = self._order_xy(o)
            drop = leave + self._travel(here, there) + self.half_dropoff
            job.drop_min.append(drop)
            leave = drop + self.half_dropoff
            here = there
        job.end_min = leave

    def _refresh(self, c: int, now: int) -> None:
        start_place, start_xy, start_free = self._route_start(c)
        del start_place
        self.end_min[c] = start_free
        self.end_xy[c] = start_xy
        jobs = self.couriers[c].jobs
        last = jobs[-1] if jobs else None
        if last is not None and not last.fixed and last.pickup_min >= now:
            self.pending_min[c] = last.pickup_min
        else:
            self.pending_min[c] = NO_PICKUP
        self.first_pickup_min[c] = jobs[0].pickup_min if jobs else _NEVER

    def _fix(self, c: int, job: _Job) -> None:
        """Make a job final: its pickup has happened; record its moves and deliveries."""
        inst = self.instance
        courier = self.couriers[c]
        cid = inst.courier_id[c]
        restaurant = inst.restaurant_id[job.restaurant]
        if job.origin is not None:
            origin = ON_LOCATION if job.origin == cid else job.origin
            courier.moves.append(MoveRecord(cid, job.depart_min, origin, restaurant))
        leave = job.pickup_min + self.half_pickup
        here = restaurant
        rows = []
        for o, drop in zip(job.orders, job.drop_min, strict=True):
            oid = inst.order_id[o]
            courier.moves.append(MoveRecord(cid, leave, here, oid))
            rows.append(
                OrderRecord(
                    oid,
                    int(inst.placement_min[o]),
                    int(inst.ready_min[o]),
                    job.pickup_min,
                    drop,
                    cid,
                )
            )
            leave = drop + self.half_dropoff
            here = oid
        record = AssignmentRecord(
            job.assign_min, job.pickup_min, cid, tuple(inst.order_id[o] for o in job.orders)
        )
        self.records.append((job.pickup_min, record, rows))
        courier.delivered += len(job.orders)
        courier.place = here
        courier.xy = self._order_xy(job.orders[-1])
        courier.free_min = job.end_min
        job.fixed = True

    def earliest_pickups(self, rows: IntArray, now: int) -> IntArray:
        """The earliest pickup any courier could give each order in `rows` at `now`.

        Each courier counts from where and when its committed route ends (an idle courier
        from where it is, now; a courier before its shift from its on-location at its
        on-time; a courier already at the restaurant from its arrival there), or by joining
        its pending pickup when that is at the order's restaurant.
        A pickup is never before the order's ready time nor after the courier's off-time.
        Other orders are ignored, so this is a lower bound for any policy from `now` on.

        Returns:
            Minutes, aligned with `rows`; -1 where no courier could pick the order up.
        """
        inst = self.instance
        restaurant = inst.order_restaurant[rows]
        ready = inst.ready_min[rows]
        travel = inst.travel_min(self.end_xy[None, :, :], inst.restaurant_xy[restaurant][:, None])
        # A courier already at the restaurant has served half the pickup while it waited.
        arrival = np.where(travel == 0, self.end_min, np.maximum(self.end_min, now) + travel)
        pickup = np.maximum(np.maximum(arrival + self.half_pickup, ready[:, None]), now)
        off = inst.off_min
        pickup = np.where(pickup <= off[None, :], pickup, _NEVER)
        for c in np.flatnonzero(self.pending_min >= now):
            same = restaurant == self.couriers[c].jobs[-1].restaurant
            join = np.maximum(self.pending_min[c], ready)
            pickup[:, c] = np.where(same & (join <= off[c]), join, pickup[:, c])
        best = pickup.min(axis=1, initial=_NEVER)
        return np.where(best < _NEVER, best, -1)

    def _fix_due(self, now: int) -> None:
        """Fix every job whose pickup time is before `now`, in pickup order per courier."""
        due = np.flatnonzero(self.first_pickup_min < now)
        for c in due:
            courier = self.couriers[c]
            while courier.jobs and courier.jobs[0].pickup_min < now:
                self._fix(int(c), courier.jobs.pop(0))
            self._refresh(int(c), now)

    # ----------------------------------------------------------------- decisions

    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def _apply_assignment(self, a: Assignment, now: int) -> None:
        inst = self.instance
        c = inst.courier_index.get(a.courier_id)
        if c is None:
            return self._reject("unknown courier")
        rows = [inst.order_index.get(o) for o in a.order_ids]
        if any(r is None for r in rows) or not rows or len(set(rows)) != len(rows):
            return self._reject("unknown or repeated order")
        orders = [int(r) for r in rows if r is not None]
        restaurants = {int(inst.order_restaurant[o]) for o in orders}
        if len(restaurants) != 1:
            return self._reject("bundle mixes restaurants")
        restaurant = restaurants.pop()
        if len(orders) > self.capacity:
            return self._reject("capacity")
        if now > int(inst.off_min[c]) or now + self.lookahead_min < int(inst.on_min[c]):
            return self._reject("courier not on shift")
        courier = self.couriers[c]
        if a.updates_pending:
            if not courier.jobs or self.pending_min[c] == NO_PICKUP:
                return self._reject("no pending pickup to update")
            job = courier.jobs[-1]
            if job.restaurant != restaurant or not set(job.orders) <= set(orders):
                return self._reject("update drops orders or changes restaurant")
            new = [o for o in orders if o not in set(job.orders)]
            if any(self.status[o] != _OPEN for o in new):
                return self._reject("order not open")
            old_orders, old_assign = job.orders, job.assign_min
            job.orders, job.assign_min = orders, now
            self._schedule(job, now)
            if job.pickup_min > int(inst.off_min[c]):
                job.orders, job.assign_min = old_orders, old_assign
                self._schedule(job, now)
                return self._reject("pickup after off time")
        else:
            if any(self.status[o] != _OPEN for o in orders):
                return self._reject("order not open")
            place, xy, free = self._route_start(c)
            r_xy = self._restaurant_xy(restaurant)
            if place == inst.restaurant_id[restaurant]:
                job = _Job(restaurant, orders, now, None, free, free)
            else:
                depart = max(now, free)
                job = _Job(restaurant, orders, now, place, depart, depart + self._travel(xy, r_xy))
            self._schedule(job, now)
            if job.pickup_min > int(inst.off_min[c]):
                return self._reject("pickup after off time")
            courier.jobs.append(job)
            new = orders
        for o in new:
            self.status[o] = _COMMITTED
        for o in job.orders:
            self.order_job[o] = (c, job)
        self._refresh(c, now)
        return None

    def _idle(self, c: int, now: int) -> bool:
        """Whether courier `c` is on shift at `now` with no job and nowhere to be."""
        courier = self.couriers[c]
        return not courier.jobs and courier.free_min <= now and now >= int(self.instance.on_min[c])

    def _apply_reposition(self, r: Reposition, now: int) -> None:
        inst = self.instance
        c = inst.courier_index.get(r.courier_id)
        target = inst.restaurant_index.get(r.merchant_id)
        if c is None or target is None:
            return self._reject("unknown courier or restaurant")
        if not self._idle(c, now):
            return self._reject("reposition of a busy courier")
        courier = self.couriers[c]
        if now > int(inst.off_min[c]):
            return self._reject("courier not on shift")
        if courier.place == r.merchant_id:
            return None
        cid = inst.courier_id[c]
        origin = ON_LOCATION if courier.place == cid else courier.place
        t_xy = self._restaurant_xy(target)
        courier.moves.append(MoveRecord(cid, now, origin, r.merchant_id))
        courier.free_min = now + self._travel(courier.xy, t_xy)
        courier.place, courier.xy = r.merchant_id, t_xy
        self._refresh(c, now)
        return None

    # ----------------------------------------------------------------- foresight

    def _foreseen_rows(self, now: int) -> np.ndarray:
        """Rows of the orders placed after `now` and at most `foresight_min` minutes later."""
        placement = self.instance.placement_min
        return np.flatnonzero((placement > now) & (placement <= now + self.foresight_min))

    def _without_unplaced(self, decisions: Decisions, now: int) -> Decisions:
        """`decisions` with nothing assigned before placement.

        A new job whose orders are not all placed becomes a move of its courier, when idle, to
        the restaurant; updates adding an unplaced order are dropped.
        """
        inst = self.instance
        kept: list[Assignment] = []
        moves = list(decisions.repositions)
        moving = {r.courier_id for r in moves}
        for a in decisions.assignments:
            rows = [inst.order_index.get(o) for o in a.order_ids]
            unplaced = [r for r in rows if r is not None and inst.placement_min[r] > now]
            if not unplaced:
                kept.append(a)
                continue
            c = inst.courier_index.get(a.courier_id)
            if a.updates_pending or c is None or a.courier_id in moving or not self._idle(c, now):
                continue
            moving.add(a.courier_id)
            courier = self.couriers[c]
            r = int(inst.order_restaurant[unplaced[0]])
            xy = self._restaurant_xy(r)
            moves.append(
                Reposition(
                    decision_id=f"foresight-{a.decision_id}",
                    courier_id=a.courier_id,
                    merchant_id=inst.restaurant_id[r],
                    xy_m=xy,
                    depart_ts_ms=now * MS_PER_MIN,
                    arrival_ts_ms=(now + self._travel(courier.xy, xy)) * MS_PER_MIN,
                    reason="foresight",
                )
            )
        return replace(decisions, assignments=tuple(kept), repositions=tuple(moves))

    # ----------------------------------------------------------------- snapshot

    def _snapshot(self, now: int, open_rows: np.ndarray) -> tuple[Snapshot, np.ndarray]:
        inst = self.instance
        visible = np.flatnonzero((inst.on_min <= now + self.lookahead_min) & (inst.off_min >= now))
        position = np.full(inst.n_couriers, -1, dtype=np.int64)
        position[visible] = np.arange(visible.size)
        pend_rows: list[int] = []
        pend_courier: list[int] = []
        pend_seq: list[int] = []
        spare = np.full(visible.size, self.capacity, dtype=np.int64)
        for c in visible[self.pending_min[visible] != NO_PICKUP]:
            job = self.couriers[c].jobs[-1]
            spare[position[c]] -= len(job.orders)
            for k, o in enumerate(job.orders):
                pend_rows.append(o)
                pend_courier.append(int(position[c]))
                pend_seq.append(k)
        rows = np.concatenate([open_rows, np.array(pend_rows, dtype=np.int64)])
        courier_index = np.concatenate(
            [np.full(open_rows.size, OPEN, dtype=np.int64), np.array(pend_courier, dtype=np.int64)]
        )
        sequence = np.concatenate(
            [np.full(open_rows.size, -1, dtype=np.int64), np.array(pend_seq, dtype=np.int64)]
        )
        placement = inst.placement_min[rows]
        orders = OrderTable(
            order_id=tuple(inst.order_id[o] for o in rows),
            merchant_id=tuple(inst.restaurant_id[r] for r in inst.order_restaurant[rows]),
            pickup_xy_m=inst.pickup_xy[rows],
            dropoff_xy_m=inst.order_xy[rows],
            placed_ts_ms=placement * MS_PER_MIN,
            ready_ts_ms=inst.ready_min[rows] * MS_PER_MIN,
            promise_ts_ms=(placement + inst.params.target_ctod_min) * MS_PER_MIN,
            courier_index=courier_index,
            drop_sequence=sequence,
        )
        couriers = CourierTable(
            courier_id=tuple(inst.courier_id[c] for c in visible),
            free_xy_m=self.end_xy[visible],
            free_ts_ms=self.end_min[visible] * MS_PER_MIN,
            shift_end_ts_ms=inst.off_min[visible] * MS_PER_MIN,
            spare_capacity=np.maximum(spare, 0),
            pending_pickup_ts_ms=np.where(
                self.pending_min[visible] == NO_PICKUP,
                NO_PICKUP,
                self.pending_min[visible] * MS_PER_MIN,
            ),
            orders_done=np.array([self.couriers[c].delivered for c in visible], dtype=np.int64),
            shift_start_ts_ms=inst.on_min[visible] * MS_PER_MIN,
        )
        rate_per_h = self.demand * (np.log(2.0) * 60.0 / self.demand_half_life_min)
        snapshot = Snapshot(
            now_ts_ms=now * MS_PER_MIN,
            tick_s=self.tick_min * 60.0,
            orders=orders,
            couriers=couriers,
            eta=self.eta,
            service=self.service,
            merchants=MerchantTable(inst.restaurant_id, inst.restaurant_xy, rate_per_h),
            shard_id=inst.name,
        )
        return snapshot, visible

    # ----------------------------------------------------------------- run

    def run(
        self, on_tick: Callable[[int], None] | None = None, stop_min: int | None = None
    ) -> SimulationResult:
        """Simulate the day and return the solution.

        Args:
            on_tick: called with the tick time after each tick (for progress reporting).
            stop_min: stop ticking after this minute (committed jobs still finish); None runs
                until the last courier's off time.
        """
        inst = self.instance
        by_placement = np.argsort(inst.placement_min, kind="stable")
        next_order = 0
        last_pickup = int(inst.off_min.max(initial=0))
        if stop_min is not None:
            last_pickup = min(last_pickup, stop_min)
        start = int(min(inst.placement_min.min(initial=0), inst.on_min.min(initial=0)))
        last_placement = int(inst.placement_min.max(initial=0))
        ticks = calls = fallbacks = 0
        seconds = 0.0
        now = start
        while now <= last_pickup:
            self.demand *= 0.5 ** (self.tick_min / self.demand_half_life_min)
            placed_from = next_order
            while (
                next_order < by_placement.size
                and inst.placement_min[by_placement[next_order]] <= now
            ):
                placed = by_placement[next_order]
                self.status[placed] = _OPEN
                self.demand[inst.order_restaurant[placed]] += 1.0
                next_order += 1
            self._fix_due(now)
            placed_now = by_placement[placed_from:next_order]
            if placed_now.size:
                self.earliest_pickup_min[placed_now] = self.earliest_pickups(placed_now, now)
            open_rows = np.flatnonzero(self.status == _OPEN)
            if now > last_placement and open_rows.size == 0:
                break
            if self.foresight_min:
                open_rows = np.concatenate([open_rows, self._foreseen_rows(now)])
            snapshot, _ = self._snapshot(now, open_rows)
            began = time.perf_counter()
            decisions = self.decide_fn(snapshot, self.policy)
            seconds += time.perf_counter() - began
            if self.foresight_min:
                decisions = self._without_unplaced(decisions, now)
            calls += 1
            fallbacks += int(decisions.fallback_used)
            for assignment in decisions.assignments:
                self._apply_assignment(assignment, now)
            for reposition in decisions.repositions:
                self._apply_reposition(reposition, now)
            ticks += 1
            if on_tick is not None:
                on_tick(now)
            now += self.tick_min
        for c, courier in enumerate(self.couriers):
            while courier.jobs:
                self._fix(c, courier.jobs.pop(0))
        return SimulationResult(
            solution=self._solution(),
            rejected=self.rejected,
            ticks=ticks,
            decide_calls=calls,
            decide_seconds=seconds,
            fallback_ticks=fallbacks,
            earliest_pickup_min=self.earliest_pickup_min.copy(),
        )

    def _solution(self) -> MdrpSolution:
        records = sorted(self.records, key=lambda r: (r[0], r[1].courier))
        orders = sorted(
            (row for _, _, rows in records for row in rows),
            key=lambda o: self.instance.order_index[o.order],
        )
        moves = tuple(m for courier in self.couriers for m in courier.moves)
        return MdrpSolution(tuple(r for _, r, _ in records), tuple(orders), moves)


def simulate(
    instance: MdrpInstance,
    policy: Policy,
    *,
    tick_min: int = 1,
    courier_lookahead_min: int = 30,
    foresight_min: int = 0,
) -> SimulationResult:
    """Simulate `instance` under `policy` with the default decision function."""
    return MdrpSimulator(
        instance,
        policy,
        tick_min=tick_min,
        courier_lookahead_min=courier_lookahead_min,
        foresight_min=foresight_min,
    ).run()
