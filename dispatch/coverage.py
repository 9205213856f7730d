"""Expected demand coverage: how soon available couriers can reach where they are needed.

Demand points are the `reposition_merchants` busiest merchants (`MerchantTable.demand_per_h`,
weighted by their demand) and the merchants of the open orders (each weighted by
`open_order_weight`). A courier free now, or within `coverage_horizon_s`, reaches a point at
its free time plus the travel time. A point's shortfall is how far the earliest reach exceeds
its slack, in minutes: `coverage_slack_s` for a busy merchant, the time left until the food is
ready for an open order. The expected shortfall is the weighted sum over points. Used to
reposition idle couriers (moves go to the busy merchants) and to price taking a courier away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dispatch.candidates import TickFrame
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def shortfall_min(reach_s: FloatArray, slack_s: float) -> FloatArray:
    """Minutes by which reach times exceed the slack (zero below it)."""
    return np.maximum(reach_s - slack_s, 0.0) / 60.0


@dataclass
class Coverage:
    """Reach of available couriers to demand merchants (mutable: repositioning updates it).

    Attributes:
        merchant_rows: rows in `MerchantTable` of the busy merchants (the reposition targets,
            which are also the first demand points).
        weight: weight of each demand point.
        slack_s: slack of each demand point, seconds.
        between_s: travel times from each target to each demand point (p50), `(t, p)`.
        couriers: courier rows counted as available.
        reach_s: when each available courier can reach each demand point, `(a, p)`.
    """

    merchant_rows: IntArray
    weight: FloatArray
    slack_s: FloatArray
    between_s: FloatArray
    couriers: IntArray
    reach_s: FloatArray

    def best_two(self) -> tuple[IntArray, FloatArray, FloatArray]:
        """Per merchant: row (in `couriers`) of the earliest reach, earliest and second reach."""
        a = self.reach_s.shape[0]
        order = np.argsort(self.reach_s, axis=0, kind="stable")
        best1 = np.take_along_axis(self.reach_s, order[:1], axis=0)[0]
        if a > 1:
            best2 = np.take_along_axis(self.reach_s, order[1:2], axis=0)[0]
        else:
            best2 = np.full(best1.shape, np.inf)
        return order[0], best1, best2

    def loss(self) -> FloatArray:
        """Increase of the expected shortfall if each available courier were taken away."""
        a = self.reach_s.shape[0]
        if a == 0:
            return np.zeros(0)
        first, best1, best2 = self.best_two()
        with_all = self.weight * shortfall_min(best1, self.slack_s)
        without = self.weight * shortfall_min(np.minimum(best2, 1e9), self.slack_s)
        delta = without - with_all
        out = np.zeros(a)
        np.add.at(out, first, delta)
        return out


def coverage(snapshot: Snapshot, frame: TickFrame, policy: Policy) -> Coverage | None:
    """The coverage state of this tick, or None without merchant demand."""
    merchants = snapshot.merchants
    if merchants.n == 0:
        return None
    demand = merchants.demand_per_h
    positive = np.flatnonzero(demand > 0)
    if positive.size == 0:
        return None
    top = positive[np.lexsort((positive, -demand[positive]))][: policy.reposition_merchants]
    targets = merchants.xy_m[top]
    open_rows = frame.open_rows
    points = np.vstack([targets, snapshot.orders.pickup_xy_m[open_rows]])
    weight = np.concatenate(
        [demand[top], np.full(open_rows.size, policy.open_order_weight, dtype=np.float64)]
    )
    slack = np.concatenate(
        [
            np.full(top.size, policy.coverage_slack_s),
            np.maximum(frame.ready_s[open_rows] - frame.half_pickup_s, 0.0),
        ]
    )
    free = frame.free_s
    available = np.flatnonzero(
        frame.eligible & (free <= policy.coverage_horizon_s) & (frame.shift_end_s > free)
    )
    eta = snapshot.eta
    travel = np.asarray(
        eta.travel_s(snapshot.couriers.free_xy_m[available][:, None, :], points[None, :, :]).p50_s
    ).reshape(available.size, points.shape[0])
    reach = np.maximum(free[available], 0.0)[:, None] + travel
    between = np.asarray(eta.travel_s(targets[:, None, :], points[None, :, :]).p50_s)
    return Coverage(
        merchant_rows=top,
        weight=weight,
        slack_s=slack,
        between_s=between.reshape(top.size, points.shape[0]),
        couriers=available,
        reach_s=reach,
    )
