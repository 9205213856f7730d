"""Request-time ranking: the cheapest couriers for one job, with the cost terms a tick uses.

`rank(request, snapshot, k, policy)` ranks over a whole snapshot. It is two steps, which the live
ranking view (`dispatch.live.rank_view`) takes too, over its own columns:

1. `nearest_rows`: the `policy.max_candidates` couriers nearest to the pickup among those that
   may take a new job, in the time-aware metric of the tick's spatial index (x, y, and
   `index_speed_mps` × seconds until free); ties go to the lower row;
2. `cheapest`: each of them planned and priced exactly as a tick plans and prices a new job
   (`dispatch.candidates.plan_pairs`, `dispatch.costs.single_terms`), infeasible ones dropped,
   the `k` cheapest returned, ties by row.

So a request costs one vectorized pass over the shard's couriers and the scoring of its
candidates; nothing is built per courier of the shard. A caller whose columns were checked once
(the ranking view checks its own when it is built) may build a request's tables with `trusted`
and price them with `cheapest_in`, instead of checking the same columns again per request.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

import numpy as np

from dispatch.candidates import may_take_new_job, plan_pairs, tick_frame
from dispatch.costs import TERM_NAMES, single_terms
from dispatch.eta import EtaProvider
from dispatch.policy import DEFAULT_POLICY, Policy
from dispatch.routes import to_ts_ms
from dispatch.snapshot import (
    OPEN,
    BoolArray,
    CourierTable,
    FloatArray,
    IntArray,
    OrderTable,
    ServiceTimes,
    Snapshot,
    SnapshotError,
)

_Table = TypeVar("_Table")
_DEFAULTS: dict[type, tuple[tuple[str, Any, Any], ...]] = {}


def trusted(cls: type[_Table], **columns: Any) -> _Table:
    """A `cls` (a frozen dataclass of `dispatch.snapshot`) of `columns`, without its checks.

    For columns already in the form its checks leave them in (tuples of str ids, int64 and
    float64 arrays, every optional column filled in) and already known to pass them, because
    they were checked once and only taken apart since; fields not given take their defaults.
    """
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = tuple(
            (f.name, f.default, f.default_factory)
            for f in fields(cls)  # type: ignore[arg-type]
        )
        _DEFAULTS[cls] = defaults
    table = object.__new__(cls)
    given = 0
    for name, default, factory in defaults:
        if name in columns:
            value = columns[name]
            given += 1
        elif default is not MISSING:
            value = default
        elif factory is not MISSING:
            value = factory()
        else:
            msg = f"{cls.__name__}.{name} has no default and was not given"
            raise TypeError(msg)
        object.__setattr__(table, name, value)
    if given != len(columns):
        unknown = sorted(columns.keys() - {d[0] for d in defaults})
        msg = f"{cls.__name__} has no field {unknown}"
        raise TypeError(msg)
    return table


@dataclass(frozen=True)
class RankedCourier:
    """One courier's offer for a request, with the same cost terms `decide` uses.

    Attributes:
        courier_id: the courier.
        cost: total cost (sum of `terms`).
        terms: `(name, weighted value)` pairs.
        pickup_ts_ms: planned handover at the merchant (p50).
        dropoff_ts_ms: planned handover at the customer (p50).
    """

    courier_id: str
    cost: float
    terms: tuple[tuple[str, float], ...]
    pickup_ts_ms: int
    dropoff_ts_ms: int


def nearest_rows(
    free_xy_m: FloatArray,
    free_s: FloatArray,
    eligible: BoolArray,
    point_xy_m: FloatArray,
    count: int,
    index_speed_mps: float,
) -> IntArray:
    """Rows of the `count` eligible couriers nearest to `point_xy_m`, ascending.

    The distance is the tick's spatial index's (`dispatch.candidates.CourierIndex`): from
    `(x, y, 0)` to `(free x, free y, index_speed_mps × max(free_s, 0))`. Equal distances go to
    the lower row, so the choice never depends on anything but the columns. All eligible rows
    when there are no more than `count`.
    """
    rows = np.flatnonzero(eligible)
    if rows.size <= count:
        return rows
    delta = free_xy_m[rows] - point_xy_m
    busy_m = np.maximum(free_s[rows], 0.0) * index_speed_mps
    distance2 = delta[:, 0] ** 2 + delta[:, 1] ** 2 + busy_m**2
    kth = np.partition(distance2, count - 1)[count - 1]
    below = rows[distance2 < kth]
    ties = rows[distance2 == kth][: count - below.size]
    return np.sort(np.concatenate([below, ties]))


def cheapest(
    request: OrderTable,
    candidates: CourierTable,
    *,
    now_ts_ms: int,
    tick_s: float,
    eta: EtaProvider,
    service: ServiceTimes,
    shard_id: str,
    k: int,
    policy: Policy,
    forbidden: tuple[tuple[str, str], ...] = (),
) -> tuple[RankedCourier, ...]:
    """The `k` cheapest of `candidates` for the one open order of `request`, cheapest first.

    Each candidate that may take a new job is planned and priced as a tick at `now_ts_ms`
    plans and prices a new job (with `eta`, `service` and `tick_s`); infeasible pairs and the
    `forbidden` ones (order id, courier id) are left out; equal costs go to the lower row.
    """
    job = Snapshot(
        now_ts_ms=now_ts_ms,
        tick_s=tick_s,
        orders=request,
        couriers=candidates,
        eta=eta,
        service=service,
        shard_id=shard_id,
        forbidden=forbidden,
    )
    return cheapest_in(job, k, policy)


def cheapest_in(job: Snapshot, k: int, policy: Policy) -> tuple[RankedCourier, ...]:
    """The `k` cheapest couriers of `job` for its one open order, cheapest first (`cheapest`)."""
    m = job.couriers.m
    frame = tick_frame(job, policy)
    pairs = plan_pairs(job, frame, np.zeros(m, dtype=np.int64), np.arange(m), policy, m)
    pairs = pairs.take(pairs.feasible & frame.eligible[pairs.courier_row])
    terms = single_terms(job, frame, pairs, policy)
    costs = terms.sum(axis=1)
    best = np.lexsort((pairs.courier_row, costs))[:k]
    ids = job.couriers.courier_id
    now = job.now_ts_ms
    rows = pairs.courier_row[best].tolist()
    pickups = pairs.pickup_p50_s[best].tolist()
    dropoffs = pairs.dropoff_p50_s[best].tolist()
    return tuple(
        RankedCourier(
            courier_id=ids[row],
            cost=float(sum(values)),
            terms=tuple(zip(TERM_NAMES, values, strict=True)),
            pickup_ts_ms=to_ts_ms(now, pickup),
            dropoff_ts_ms=to_ts_ms(now, dropoff),
        )
        for row, values, pickup, dropoff in zip(
            rows, terms[best].tolist(), pickups, dropoffs, strict=True
        )
    )


def rank(
    request: OrderTable, snapshot: Snapshot, k: int, policy: Policy = DEFAULT_POLICY
) -> tuple[RankedCourier, ...]:
    """The `k` cheapest couriers for one single-order request, cheapest first.

    Candidates are the `policy.max_candidates` nearest couriers that may take a new job
    (`nearest_rows`); a courier the snapshot forbids with the request's order id is never
    ranked.

    Args:
        request: a one-row order table (the order to place; `courier_index` must be open).
        snapshot: the current snapshot (its couriers are ranked; its orders are ignored).
        k: how many couriers to return (at most).
        policy: weights and candidate limits.

    Raises:
        SnapshotError: if the request is not exactly one open order.
    """
    if request.n != 1 or int(request.courier_index[0]) != OPEN:
        raise SnapshotError("rank() takes exactly one open order")
    if k < 1:
        return ()
    couriers = snapshot.couriers
    now = snapshot.now_ts_ms
    free_s = (couriers.free_ts_ms - now) / 1000.0
    eligible = may_take_new_job(
        (couriers.shift_end_ts_ms - now) / 1000.0, couriers.spare_capacity, policy
    )
    rows = nearest_rows(
        couriers.free_xy_m,
        free_s,
        eligible,
        request.pickup_xy_m[0],
        policy.max_candidates,
        policy.index_speed_mps,
    )
    chosen = couriers.take(rows)
    kept = set(chosen.courier_id)
    return cheapest(
        request,
        chosen,
        now_ts_ms=now,
        tick_s=snapshot.tick_s,
        eta=snapshot.eta,
        service=snapshot.service,
        shard_id=snapshot.shard_id,
        k=k,
        policy=policy,
        forbidden=tuple(p for p in snapshot.forbidden if p[0] in request.order_id and p[1] in kept),
    )
