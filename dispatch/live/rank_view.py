"""A shard's ranking view: its couriers in columns, built once and reused by many requests.

`build_rank_view` reads the shard's dispatchable couriers once (`courier_starts`: where and when
each becomes free) into columns that do not depend on the request time; `rank_in_view` answers
one request from them. Per request it computes, vectorized over the shard's couriers, what a
tick's snapshot at the request time would hold (a courier with a route is free where it ends,
never before the request time; one without is free now at its fix, and is left out when that
fix is older than `position_max_age_s`; its shift started no later than now), takes the
candidates nearest to the pickup and prices them (`dispatch.ranking`). For a view built from a
shard's state, `rank_in_view` answers exactly what `dispatch.ranking.rank` answers on
`build_snapshot` of that state at the request time.

A view holds plain values (numpy columns, the policy, service times), so it can be sent to
another process and ranked there with that process's own ETA predictor.

Its columns are checked once, when it is built (`check_view`: every rule of
`dispatch.snapshot.CourierTable`); a request takes rows of them and adds the request time, which
cannot break those rules, so its candidate table and snapshot are built unchecked
(`dispatch.ranking.trusted`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from contracts.geo import decode_center
from dispatch.candidates import may_take_new_job
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import LegPredictor, ShardEta
from dispatch.live.shard_snapshot import (
    CourierStart,
    PositionView,
    courier_starts,
    project_xy,
    request_table,
)
from dispatch.live.state import ShardState
from dispatch.policy import Policy
from dispatch.ranking import RankedCourier, cheapest_in, nearest_rows, trusted
from dispatch.snapshot import (
    BoolArray,
    CourierTable,
    FloatArray,
    IntArray,
    MerchantTable,
    ServiceTimes,
    Snapshot,
    SnapshotError,
)

#: The merchants of a request's snapshot: none (ranking never repositions).
_NO_MERCHANTS = MerchantTable.empty()


@dataclass(frozen=True, eq=False)
class RankView:
    """One shard's dispatchable couriers, by id, independent of the request time.

    Attributes:
        shard: the shard.
        courier_id: the couriers.
        free_xy_m: where each becomes free, metres around the shard's centre, shape `(m, 2)`.
        busy: whether each has a route (it is free where and when the route ends).
        busy_until_ts_ms: when a busy courier's route ends (0 for the others).
        fix_ts_ms: time of an idle courier's fix (0 for busy ones).
        shift_start_ts_ms: start of each one's shift.
        shift_end_ts_ms: end of each one's shift (the default shift length after its start
            when it announced none).
        spare_capacity: orders each may still take.
        pending_pickup_ts_ms: planned handover of each one's pending pickup (`NO_PICKUP`).
        orders_done: orders each delivered in its shift.
        policy: the shard's policy, `max_candidates` being the candidates per request.
        service: service times at stops.
        tick_s: the tick interval (a job that can wait that long is priced like the tick's).
        default_promise_s: promise of a job that names none, after the request time.
        position_max_age_ms: an idle courier's fix older than this leaves it out.
    """

    shard: str
    courier_id: tuple[str, ...]
    free_xy_m: FloatArray
    busy: BoolArray
    busy_until_ts_ms: IntArray
    fix_ts_ms: IntArray
    shift_start_ts_ms: IntArray
    shift_end_ts_ms: IntArray
    spare_capacity: IntArray
    pending_pickup_ts_ms: IntArray
    orders_done: IntArray
    policy: Policy
    service: ServiceTimes
    tick_s: float
    default_promise_s: float
    position_max_age_ms: int

    @property
    def m(self) -> int:
        """Number of couriers."""
        return len(self.courier_id)


def build_rank_view(
    state: ShardState,
    positions: PositionView,
    config: EngineConfig,
    policy: Policy,
    shard: str,
) -> RankView:
    """The view of `shard`'s couriers as `state` and `positions` hold them now."""
    starts: list[CourierStart] = courier_starts(state, positions, config, shard)
    default_shift_ms = int(config.default_shift_s * 1000)

    def ints(values: list[int]) -> IntArray:
        return np.array(values, dtype=np.int64)

    return check_view(
        RankView(
            shard=shard,
            courier_id=tuple(c.record.courier_id for c in starts),
            free_xy_m=project_xy([c.lat for c in starts], [c.lon for c in starts], shard),
            busy=np.array([c.busy_until_ts_ms is not None for c in starts], dtype=bool),
            busy_until_ts_ms=ints([c.busy_until_ts_ms or 0 for c in starts]),
            fix_ts_ms=ints([c.fix_ts_ms or 0 for c in starts]),
            shift_start_ts_ms=ints([c.record.shift_start_ts_ms for c in starts]),
            shift_end_ts_ms=ints(
                [
                    c.record.shift_end_ts_ms or c.record.shift_start_ts_ms + default_shift_ms
                    for c in starts
                ]
            ),
            spare_capacity=ints([c.record.spare_capacity for c in starts]),
            pending_pickup_ts_ms=ints([c.pending_pickup_ts_ms for c in starts]),
            orders_done=ints([c.record.orders_done for c in starts]),
            policy=policy,
            service=config.service,
            tick_s=config.tick_s,
            default_promise_s=config.default_promise_s,
            position_max_age_ms=int(config.position_max_age_s * 1000),
        )
    )


def check_view(view: RankView) -> RankView:
    """`view`, once its columns pass the checks of a `CourierTable` (`SnapshotError` if not).

    All but the order of shift start and end, which depends on the request time: a request's
    table starts each shift no later than the request, and only couriers whose shift ends no
    earlier than the request (a policy's margins are never negative) are candidates, so no
    candidate's shift ends before it starts.
    """
    CourierTable(
        courier_id=view.courier_id,
        free_xy_m=view.free_xy_m,
        free_ts_ms=view.busy_until_ts_ms,
        shift_end_ts_ms=view.shift_end_ts_ms,
        spare_capacity=view.spare_capacity,
        pending_pickup_ts_ms=view.pending_pickup_ts_ms,
        orders_done=view.orders_done,
        shift_start_ts_ms=np.minimum(view.shift_start_ts_ms, view.shift_end_ts_ms),
    )
    for name in ("busy", "fix_ts_ms"):
        if getattr(view, name).shape != (view.m,):
            msg = f"{name} must have shape ({view.m},)"
            raise SnapshotError(msg)
    return view


def rank_in_view(
    view: RankView,
    predictor: LegPredictor,
    pickup: tuple[float, float],
    dropoff: tuple[float, float],
    now_ms: int,
    k: int,
    ready_ts_ms: int | None = None,
    promise_ts_ms: int | None = None,
) -> tuple[RankedCourier, ...]:
    """The `k` cheapest couriers of `view` for a job requested at `now_ms`, cheapest first.

    The job is picked up at `pickup` (ready at `ready_ts_ms`, or now) and dropped off at
    `dropoff` (promised at `promise_ts_ms`, or `default_promise_s` from now); the travel
    times are `predictor`'s. See the module docstring for what the answer equals.
    """
    request = request_table(
        view.shard, pickup, dropoff, now_ms, ready_ts_ms, promise_ts_ms, view.default_promise_s
    )
    if k < 1:
        return ()
    fresh = view.busy | (now_ms - view.fix_ts_ms <= view.position_max_age_ms)
    free_ts_ms = np.where(view.busy, np.maximum(view.busy_until_ts_ms, now_ms), now_ms)
    eligible = fresh & may_take_new_job(
        (view.shift_end_ts_ms - now_ms) / 1000.0, view.spare_capacity, view.policy
    )
    rows = nearest_rows(
        view.free_xy_m,
        (free_ts_ms - now_ms) / 1000.0,
        eligible,
        request.pickup_xy_m[0],
        view.policy.max_candidates,
        view.policy.index_speed_mps,
    )
    if rows.size == 0:
        return ()
    ids = operator.itemgetter(*rows.tolist())(view.courier_id)
    # Rows of checked columns (see `check_view`), with the request time as free time and as
    # shift start where that is later and earlier: nothing to check again.
    couriers = trusted(
        CourierTable,
        courier_id=ids if rows.size > 1 else (ids,),
        free_xy_m=view.free_xy_m[rows],
        free_ts_ms=free_ts_ms[rows],
        shift_end_ts_ms=view.shift_end_ts_ms[rows],
        spare_capacity=view.spare_capacity[rows],
        pending_pickup_ts_ms=view.pending_pickup_ts_ms[rows],
        orders_done=view.orders_done[rows],
        shift_start_ts_ms=np.minimum(view.shift_start_ts_ms[rows], now_ms),
        decline_prob=np.zeros(rows.size, dtype=np.float64),
    )
    origin = decode_center(view.shard)
    job = trusted(
        Snapshot,
        now_ts_ms=int(now_ms),
        tick_s=view.tick_s,
        orders=request,
        couriers=couriers,
        eta=ShardEta(predictor, origin[0], origin[1], now_ms),
        service=view.service,
        merchants=_NO_MERCHANTS,
        shard_id=view.shard,
        forbidden=(),
    )
    return cheapest_in(job, k, view.policy)
