"""Cost terms of a (bundle, courier) choice, each a weight times a quantity in minutes.

Terms (columns of every cost matrix, in this order):

- `delay`: click-to-door delay of the new orders above their direct minimum (ready, then
  straight to the customer): food waiting for the courier, batching detours, and a ride slower
  than the order's direct one (a slower courier).
- `detour`: delay a bundle change imposes on orders already in the courier's pending pickup.
- `late`: minutes the p90 drop-off is past the promise (summed over the bundle's orders).
- `courier_wait`: minutes the courier idles at the merchant before the handover.
- `travel`: minutes the courier drives empty to the merchant.
- `pay`: marginal courier pay (1 per order given to a courier past its guaranteed minimum).
- `courier_time`: minutes of courier time the job uses (from when the courier is free to the
  end of its last drop-off; for a bundle change, how much later its route ends), counted only
  up to the courier's shift end.
- `coverage`: expected demand coverage lost while the courier is on the job (increase of the
  expected shortfall, order-minutes per hour, times the job's hours; see `dispatch.coverage`).
- `decline`: expected re-dispatch delay: the courier's probability of declining the offer
  (`CourierTable.decline_prob`, from its acceptance rate) times `policy.redispatch_s`, the
  minutes an order loses when its offer is declined and it goes to the next courier.

The total cost of a choice is the sum of its weighted terms.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dispatch.candidates import PairTable, TickFrame
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot

FloatArray = NDArray[np.float64]

TERM_NAMES: tuple[str, ...] = (
    "delay",
    "detour",
    "late",
    "courier_wait",
    "travel",
    "pay",
    "coverage",
    "courier_time",
    "decline",
)
N_TERMS = len(TERM_NAMES)


def term_weights(policy: Policy) -> FloatArray:
    """Weights of the terms, in `TERM_NAMES` order."""
    return np.array(
        [
            policy.w_delay,
            policy.w_detour,
            policy.w_late,
            policy.w_courier_wait,
            policy.w_travel,
            policy.w_pay,
            policy.w_coverage,
            policy.w_courier_time,
            policy.w_decline,
        ],
        dtype=np.float64,
    )


def past_guarantee(snapshot: Snapshot, policy: Policy) -> FloatArray:
    """1.0 for couriers whose delivered orders already cover their guaranteed pay, else 0.0."""
    couriers = snapshot.couriers
    hours = (couriers.shift_end_ts_ms - couriers.shift_start_ts_ms) / 3_600_000.0
    covered = couriers.orders_done >= policy.guarantee_orders_per_hour * hours
    return covered.astype(np.float64)


def single_terms(
    snapshot: Snapshot,
    frame: TickFrame,
    pairs: PairTable,
    policy: Policy,
    coverage_loss: FloatArray | None = None,
    start_s: FloatArray | None = None,
) -> FloatArray:
    """Weighted terms of new single-order jobs, shape `(pairs.size, N_TERMS)`.

    `coverage_loss` is the per-courier increase of the expected shortfall (order-minutes per
    hour) if the courier is taken away; None prices coverage at zero. `start_s` is when each
    pair's courier is free to start the job (seconds from now); None takes the couriers'
    free times.
    """
    raw = np.zeros((pairs.size, N_TERMS), dtype=np.float64)
    o = pairs.order_row
    raw[:, 0] = (
        pairs.pickup_p50_s - frame.ready_s[o] + pairs.ride_p50_s - frame.direct_p50_s[o]
    ) / 60.0
    raw[:, 2] = np.maximum(pairs.dropoff_p90_s - frame.promise_s[o], 0.0) / 60.0
    raw[:, 3] = (
        np.maximum(
            pairs.pickup_p50_s - np.maximum(pairs.arrival_p50_s + frame.half_pickup_s, 0.0), 0.0
        )
        / 60.0
    )
    raw[:, 4] = pairs.travel_p50_s / 60.0
    raw[:, 5] = past_guarantee(snapshot, policy)[pairs.courier_row]
    free_s = frame.free_s[pairs.courier_row] if start_s is None else start_s
    job_start_s = np.maximum(free_s, 0)
    job_end_s = pairs.dropoff_p50_s + frame.half_dropoff_s
    if coverage_loss is not None:
        job_min = (job_end_s - job_start_s) / 60.0
        raw[:, 6] = coverage_loss[pairs.courier_row] * job_min / 60.0
    raw[:, 7] = shift_minutes(job_start_s, job_end_s, frame.shift_end_s[pairs.courier_row])
    raw[:, 8] = redispatch_minutes(snapshot, policy)[pairs.courier_row]
    return raw * term_weights(policy)


def redispatch_minutes(snapshot: Snapshot, policy: Policy) -> FloatArray:
    """Each courier's expected re-dispatch delay of an offer, minutes (the `decline` term)."""
    return snapshot.couriers.p_decline * (policy.redispatch_s / 60.0)


def shift_minutes(start_s: FloatArray, end_s: FloatArray, shift_end_s: FloatArray) -> FloatArray:
    """Minutes of the span from `start_s` to `end_s` that fall before `shift_end_s`.

    What a job costs in courier time: the courier's time after its shift ends is not
    available to other orders anyway.
    """
    return (np.minimum(end_s, shift_end_s) - np.minimum(start_s, shift_end_s)) / 60.0
