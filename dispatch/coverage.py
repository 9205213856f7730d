"""Expected demand coverage: how soon available couriers can reach where they are needed.

Demand points are the `reposition_merchants` busiest merchants (`MerchantTable.demand_per_h`,
weighted by their demand) and the merchants of the most urgent open orders (at most
`coverage_open_points`, each weighted by `open_order_weight`). A courier free now, or within
`coverage_horizon_s`, reaches a point at its free time plus the travel time; only the
`coverage_couriers_per_point` couriers nearest to each point (in the time-aware index) are
tracked, which is all that matters for the earliest and second-earliest reach. A courier covers
a point only if it could still hand food over there before its shift ends (at the later of its
reach and the point's slack); otherwise it never reaches it. A point's
shortfall is how far the earliest reach exceeds its slack, in minutes: `coverage_slack_s` for
a busy merchant, the time left until the food is ready for an open order. The expected
shortfall is the weighted sum over points. Used to reposition idle couriers (moves go to the
busy merchants) and to price taking a courier away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from dispatch.candidates import CourierIndex, TickFrame
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


#: Reach of a point a courier cannot serve before its shift ends, seconds (finite, so that
#: shortfall differences stay defined).
UNREACHABLE_S = 1e7


def shortfall_min(reach_s: FloatArray, slack_s: FloatArray) -> FloatArray:
    """Minutes by which reach times exceed the slack (zero below it)."""
    return np.maximum(reach_s - slack_s, 0.0) / 60.0


@dataclass
class Coverage:
    """Reach of available couriers to demand points (mutable: repositioning updates it).

    Attributes:
        merchant_rows: rows in `MerchantTable` of the busy merchants (the reposition targets,
            which are also the first demand points).
        weight: weight of each demand point.
        slack_s: slack of each demand point, seconds.
        between_s: travel times from each target to each demand point (p50), `(t, p)`.
        couriers: courier rows tracked as available.
        reach_s: when each tracked courier can reach each demand point, `(a, p)`
            (`UNREACHABLE_S` where it could not serve the point before its shift ends).
        arrival_s: when each tracked courier would arrive at each demand point, `(a, p)`.
        last_arrival_s: latest arrival of each tracked courier that still allows a handover
            before its shift ends, `(a,)`.
    """

    merchant_rows: IntArray
    weight: FloatArray
    slack_s: FloatArray
    between_s: FloatArray
    couriers: IntArray
    reach_s: FloatArray
    arrival_s: FloatArray
    last_arrival_s: FloatArray

    def served_reach(
        self, rows: IntArray, arrival_s: FloatArray, reach_s: FloatArray
    ) -> FloatArray:
        """`reach_s` where the couriers could still serve each point before their shift ends.

        `rows` are positions in `couriers` (the leading axes of `arrival_s`); elsewhere the
        reach is `UNREACHABLE_S`.
        """
        extra_axes = (1,) * (arrival_s.ndim - rows.ndim)
        limit = self.last_arrival_s[rows].reshape(rows.shape + extra_axes)
        return np.where(np.maximum(arrival_s, self.slack_s) <= limit, reach_s, UNREACHABLE_S)

    def best_two(self) -> tuple[IntArray, FloatArray, FloatArray]:
        """Per point: row (in `couriers`) of the earliest reach, earliest and second reach."""
        a = self.reach_s.shape[0]
        first = np.argmin(self.reach_s, axis=0)
        if a > 1:
            two = np.partition(self.reach_s, 1, axis=0)
            return first, two[0], two[1]
        return first, self.reach_s[0], np.full(self.reach_s.shape[1], np.inf)

    def expected_shortfall(self, reach_s: FloatArray) -> FloatArray:
        """Weighted shortfall summed over points, for reach rows of shape `(..., p)`."""
        return (self.weight * shortfall_min(reach_s, self.slack_s)).sum(axis=-1)

    def loss(self) -> FloatArray:
        """Increase of the expected shortfall if each tracked courier were taken away."""
        a = self.reach_s.shape[0]
        if a == 0:
            return np.zeros(0)
        first, best1, best2 = self.best_two()
        delta = self.weight * (
            shortfall_min(np.minimum(best2, 1e9), self.slack_s) - shortfall_min(best1, self.slack_s)
        )
        out = np.zeros(a)
        np.add.at(out, first, delta)
        return out


def coverage(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, index: CourierIndex
) -> Coverage | None:
    """The coverage state of this tick, or None without merchant demand or couriers."""
    merchants = snapshot.merchants
    if merchants.n == 0:
        return None
    demand = merchants.demand_per_h
    positive = np.flatnonzero(demand > 0)
    free = frame.free_s
    available = np.flatnonzero(
        frame.eligible & (free <= policy.coverage_horizon_s) & (frame.shift_end_s > free)
    )
    if positive.size == 0 or available.size == 0:
        return None
    top = positive[np.lexsort((positive, -demand[positive]))][: policy.reposition_merchants]
    targets = merchants.xy_m[top]
    open_rows = frame.open_rows
    slack_open = np.maximum(frame.ready_s[open_rows] - frame.half_pickup_s, 0.0)
    urgent = open_rows[np.lexsort((open_rows, slack_open))][: policy.coverage_open_points]
    points = np.vstack([targets, snapshot.orders.pickup_xy_m[urgent]])
    weight = np.concatenate(
        [demand[top], np.full(urgent.size, policy.open_order_weight, dtype=np.float64)]
    )
    slack = np.concatenate(
        [
            np.full(top.size, policy.coverage_slack_s),
            np.maximum(frame.ready_s[urgent] - frame.half_pickup_s, 0.0),
        ]
    )
    k = policy.coverage_couriers_per_point
    if available.size > k:
        usable = np.zeros(frame.free_s.size, dtype=bool)
        usable[available] = True
        near = index.nearest(points, 2 * k)
        tracked = np.unique(near[usable[near]])
        idle = available[frame.idle[available]]
        if idle.size > policy.reposition_candidates:
            # Keep the idle couriers farthest from any busy merchant: moving them helps most.
            far, _ = cKDTree(targets).query(snapshot.couriers.free_xy_m[idle], k=1)
            idle = idle[np.lexsort((idle, -np.asarray(far)))][: policy.reposition_candidates]
        tracked = np.union1d(tracked, idle)
    else:
        tracked = available
    eta = snapshot.eta
    travel = np.asarray(
        eta.travel_s(snapshot.couriers.free_xy_m[tracked][:, None, :], points[None, :, :]).p50_s
    ).reshape(tracked.size, points.shape[0])
    arrival = np.maximum(free[tracked], 0.0)[:, None] + travel
    last_arrival = frame.shift_end_s[tracked] - policy.shift_end_margin_s - frame.half_pickup_s
    between = np.asarray(eta.travel_s(targets[:, None, :], points[None, :, :]).p50_s)
    return Coverage(
        merchant_rows=top,
        weight=weight,
        slack_s=slack,
        between_s=between.reshape(top.size, points.shape[0]),
        couriers=tracked.astype(np.int64),
        reach_s=np.where(
            np.maximum(arrival, slack) <= last_arrival[:, None], arrival, UNREACHABLE_S
        ),
        arrival_s=arrival,
        last_arrival_s=last_arrival,
    )
