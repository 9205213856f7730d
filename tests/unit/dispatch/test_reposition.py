"""Repositioning idle couriers towards demand."""

from __future__ import annotations

import numpy as np

from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY
from dispatch.snapshot import MerchantTable

from .conftest import grid_courier, grid_snapshot

MERCHANTS = MerchantTable(
    ("busy", "quiet"), np.array([[0.0, 0.0], [5000.0, 5000.0]]), np.array([6.0, 0.0])
)


def test_idle_courier_far_from_demand_moves_to_the_busy_merchant() -> None:
    """An idle courier 15 minutes from the only busy merchant is sent there."""
    snap = grid_snapshot([], [grid_courier("c1", (1500, 0), free=-5, end=300)], MERCHANTS)
    d = decide(snap, DEFAULT_POLICY)
    assert [(r.courier_id, r.merchant_id) for r in d.repositions] == [("c1", "busy")]
    assert d.repositions[0].arrival_ts_ms > d.repositions[0].depart_ts_ms


def test_no_demand_no_moves() -> None:
    """Without merchant demand nobody is repositioned."""
    snap = grid_snapshot([], [grid_courier("c1", (1500, 0), free=-5, end=300)])
    assert not decide(snap, DEFAULT_POLICY).repositions


def test_busy_couriers_are_not_moved() -> None:
    """A courier still on a job is never repositioned."""
    snap = grid_snapshot([], [grid_courier("c1", (1500, 0), free=5, end=300)], MERCHANTS)
    assert not decide(snap, DEFAULT_POLICY).repositions


def test_courier_already_covering_demand_stays() -> None:
    """A courier next to the busy merchant gains nothing from moving and stays."""
    snap = grid_snapshot([], [grid_courier("c1", (50, 0), free=-5, end=300)], MERCHANTS)
    assert not decide(snap, DEFAULT_POLICY).repositions


def test_reposition_can_be_switched_off() -> None:
    """With reposition off, idle couriers stay where they are."""
    snap = grid_snapshot([], [grid_courier("c1", (1500, 0), free=-5, end=300)], MERCHANTS)
    assert not decide(snap, DEFAULT_POLICY.replace(reposition=False)).repositions


def test_courier_whose_shift_ends_before_arrival_stays() -> None:
    """An idle courier that could not hand food over at the merchant before its shift ends stays."""
    snap = grid_snapshot([], [grid_courier("c1", (1500, 0), free=-5, end=10)], MERCHANTS)
    assert not decide(snap, DEFAULT_POLICY).repositions


def test_expiring_courier_does_not_cover_demand() -> None:
    """A courier next to the busy merchant but off shift too soon does not cover it."""
    snap = grid_snapshot(
        [],
        [
            grid_courier("c1", (50, 0), free=-5, end=1),
            grid_courier("c2", (1500, 0), free=-5, end=300),
        ],
        MERCHANTS,
    )
    assert [(r.courier_id, r.merchant_id) for r in decide(snap, DEFAULT_POLICY).repositions] == [
        ("c2", "busy")
    ]
