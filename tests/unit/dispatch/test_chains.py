"""Chained look-ahead: couriers planned for a next job right after the job they are matched to."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from dispatch.candidates import courier_index, nearest_couriers, plan_pairs, tick_frame
from dispatch.chains import chain_pairs
from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY
from dispatch.snapshot import Snapshot

from .conftest import contested_snapshot, snapshots

# Grid travel at 100 m per minute: 1000 m is 10 minutes; pickup and drop-off take 2 + 2 minutes.
CHAINED = DEFAULT_POLICY.replace(reposition=False, chain_lookahead=True, matching_horizon_s=1200.0)


def test_order_on_time_after_a_chained_job_leaves_the_free_courier_to_another() -> None:
    """The free courier goes to the order only it can serve; the other waits for the chain."""
    d = decide(contested_snapshot(), CHAINED)
    assert sorted((a.courier_id, a.order_ids) for a in d.assignments) == [
        ("x", ("c",)),
        ("y", ("b",)),
    ]
    assert d.held_order_ids == ("a",)


def test_without_lookahead_the_free_courier_is_not_given_to_the_needy_order() -> None:
    """Without chains the same tick leaves the order only the free courier can serve waiting."""
    d = decide(contested_snapshot(), CHAINED.replace(chain_lookahead=False))
    assert ("x", ("c",)) not in {(a.courier_id, a.order_ids) for a in d.assignments}


@given(snapshots())
@settings(max_examples=40, deadline=None)
def test_chained_pairs_start_after_the_planned_job(snapshot: Snapshot) -> None:
    """A chained courier's pickup is never before the end of the job it is chained after."""
    frame = tick_frame(snapshot, CHAINED)
    index = courier_index(snapshot, frame, CHAINED)
    o_rows, c_rows, stride = nearest_couriers(snapshot, index, frame.open_rows, CHAINED)
    planned = plan_pairs(snapshot, frame, o_rows, c_rows, CHAINED, stride)
    planned = planned.take(planned.feasible)
    _, first = np.unique(planned.courier_row, return_index=True)
    planned = planned.take(np.sort(first))
    chain = chain_pairs(snapshot, frame, CHAINED, planned, frame.open_rows)
    end_s = planned.dropoff_p50_s[chain.chain] + frame.half_dropoff_s
    assert (chain.pairs.pickup_p50_s >= end_s + frame.half_pickup_s - 1e-9).all()
    assert (planned.order_row[chain.chain] != chain.pairs.order_row).all()
    assert (chain.pairs.courier_row == planned.courier_row[chain.chain]).all()
    assert np.isfinite(chain.terms).all()
