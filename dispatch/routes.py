"""Turning planned times (seconds from now) into decision records with explanations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from dispatch.candidates import PairTable, TickFrame
from dispatch.costs import TERM_NAMES
from dispatch.decisions import Assignment, Explanation, Stop, decision_id
from dispatch.snapshot import Snapshot


def to_ts_ms(now_ts_ms: int, seconds: float) -> int:
    """Absolute epoch-ms time of a time given in seconds from the tick."""
    return int(now_ts_ms + round(seconds * 1000.0))


def _stop(
    kind: Literal["pickup", "dropoff"],
    order_ids: tuple[str, ...],
    xy_m: np.ndarray,
    now_ts_ms: int,
    times_s: tuple[float, float, float],
) -> Stop:
    """A `kind` stop at `xy_m`; `times_s` are its arrival, p50 and p90 handover (s from now)."""
    arrival_s, handover_s, handover_p90_s = times_s
    return Stop(
        kind=kind,
        order_ids=order_ids,
        xy_m=(float(xy_m[0]), float(xy_m[1])),
        arrival_ts_ms=to_ts_ms(now_ts_ms, arrival_s),
        handover_ts_ms=to_ts_ms(now_ts_ms, handover_s),
        handover_p90_ts_ms=to_ts_ms(now_ts_ms, handover_p90_s),
    )


def explanation(
    terms: Sequence[float],
    runner_up_courier_id: str | None,
    runner_up_cost: float | None,
    reason: str,
) -> Explanation:
    """An explanation whose total is the sum of its weighted terms."""
    pairs = tuple((name, float(value)) for name, value in zip(TERM_NAMES, terms, strict=True))
    return Explanation(
        terms=pairs,
        total_cost=float(sum(value for _, value in pairs)),
        runner_up_courier_id=runner_up_courier_id,
        runner_up_cost=None if runner_up_cost is None else float(runner_up_cost),
        reason=reason,
    )


def build_assignment(
    snapshot: Snapshot,
    courier_row: int,
    sequence: Sequence[int],
    new_rows: Sequence[int],
    *,
    updates_pending: bool,
    depart_s: float,
    arrival_s: float,
    pickup_p50_s: float,
    pickup_p90_s: float,
    dropoff_p50_s: Sequence[float],
    dropoff_p90_s: Sequence[float],
    explain: Explanation,
    extra_pickup: tuple[int, float] | None = None,
    first_row: int | None = None,
) -> Assignment:
    """An `Assignment` for the bundle `sequence` (order rows in drop-off order).

    `first_row` is an order of the merchant picked up first (default: the first drop-off).
    `extra_pickup` is `(order row, handover seconds)` of an order joining the bundle: at the
    same merchant everyone is handed over at its time; at a nearby merchant it gets its own
    pickup stop right after the first handover.
    """
    orders = snapshot.orders
    now = snapshot.now_ts_ms
    ids = tuple(orders.order_id[r] for r in sequence)
    courier_id = snapshot.couriers.courier_id[courier_row]
    second = extra_pickup
    head = sequence[0] if first_row is None else first_row
    first_merchant = orders.merchant_id[head]
    at_first = tuple(
        orders.order_id[r] for r in sequence if orders.merchant_id[r] == first_merchant
    )
    if second is not None and orders.merchant_id[second[0]] == first_merchant:
        # Same merchant: one handover for everyone, at the new order's time.
        pickup_p50_s = pickup_p90_s = second[1]
        second = None
    stops = [
        _stop(
            "pickup",
            at_first if second is not None else ids,
            orders.pickup_xy_m[head],
            now,
            (arrival_s, pickup_p50_s, pickup_p90_s),
        )
    ]
    if second is not None:
        row, handover = second
        arrival = handover - snapshot.service.pickup_s / 2.0
        stops.append(
            _stop(
                "pickup",
                (orders.order_id[row],),
                orders.pickup_xy_m[row],
                now,
                (arrival, handover, handover),
            )
        )
    half_dropoff_s = snapshot.service.dropoff_s / 2.0
    for row, drop50, drop90 in zip(sequence, dropoff_p50_s, dropoff_p90_s, strict=True):
        stops.append(
            _stop(
                "dropoff",
                (orders.order_id[row],),
                orders.dropoff_xy_m[row],
                now,
                (drop50 - half_dropoff_s, drop50, drop90),
            )
        )
    new_ids = tuple(orders.order_id[r] for r in new_rows)
    return Assignment(
        decision_id=decision_id("assign", snapshot.shard_id, now, courier_id, ids),
        courier_id=courier_id,
        merchant_id=first_merchant,
        order_ids=ids,
        new_order_ids=new_ids,
        updates_pending=updates_pending,
        depart_ts_ms=to_ts_ms(now, depart_s),
        stops=tuple(stops),
        cost=explain.total_cost,
        explanation=explain,
    )


def new_job_assignment(
    snapshot: Snapshot, frame: TickFrame, pairs: PairTable, e: int, explain: Explanation
) -> Assignment:
    """The assignment of pair `e`: its one order as a new job of its courier, no bundle.

    The courier leaves when it is free (now at the earliest) and its times are the pair's.
    """
    c = int(pairs.courier_row[e])
    row = int(pairs.order_row[e])
    return build_assignment(
        snapshot,
        c,
        [row],
        [row],
        updates_pending=False,
        depart_s=max(float(frame.free_s[c]), 0.0),
        arrival_s=float(pairs.arrival_p50_s[e]),
        pickup_p50_s=float(pairs.pickup_p50_s[e]),
        pickup_p90_s=float(pairs.pickup_p90_s[e]),
        dropoff_p50_s=[float(pairs.dropoff_p50_s[e])],
        dropoff_p90_s=[float(pairs.dropoff_p90_s[e])],
        explain=explain,
    )


def runner_up(
    candidate_couriers: np.ndarray, candidate_costs: np.ndarray, chosen_courier: int
) -> tuple[int | None, float | None]:
    """Cheapest candidate whose courier differs from the chosen one (ties: lower row)."""
    other = candidate_couriers != chosen_courier
    if not other.any():
        return None, None
    couriers = candidate_couriers[other]
    costs = candidate_costs[other]
    best = np.lexsort((couriers, costs))[0]
    return int(couriers[best]), float(costs[best])
