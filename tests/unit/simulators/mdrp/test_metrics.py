"""Benchmark metrics on a hand-checked solution (expected values worked out by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.mdrp.instance import load_instance
from simulators.mdrp.metrics import METRIC_KEYS, compute_metrics, mean_metrics

from .tiny import SOLUTION, write_tiny


def test_metrics_match_the_definitions(tmp_path: Path) -> None:
    """CtoD, RtoP, utilization, pay and bundle size follow the benchmark's definitions."""
    m = compute_metrics(load_instance(write_tiny(tmp_path / "tiny")), SOLUTION)
    assert m.valid and m.orders == 3 and m.undelivered_pct == 0.0
    # click-to-door 21, 26, 22; linear-interpolated p90 of [21, 22, 26] is 22 + 0.8 * 4.
    assert m.ctod_mean == pytest.approx(23.0) and m.ctod_p90 == pytest.approx(25.2)
    assert m.overage_mean == 0.0
    # ready-to-pickup 2, 0, 0.
    assert m.rtop_mean == pytest.approx(2 / 3) and m.rtop_p90 == pytest.approx(1.6)
    # c1: (9 driving + 4 pickup + 8 drop-off) / 120; c2: (13 + 4 + 4) / 60.
    assert m.util_mean == pytest.approx((21 / 120 + 21 / 60) / 2)
    assert m.util_p10 == pytest.approx(21 / 120 + 0.1 * (21 / 60 - 21 / 120))
    # pay: c1 max(20, 30) + c2 max(10, 15) over 3 orders.
    assert m.cost_per_order == pytest.approx(15.0)
    assert m.orders_per_bundle == pytest.approx(1.5)


def test_undelivered_orders_are_counted(tmp_path: Path) -> None:
    """Dropping an order from the solution counts it undelivered (not in the CtoD mean)."""
    import dataclasses

    partial = dataclasses.replace(
        SOLUTION,
        assignments=SOLUTION.assignments[:1],
        orders=SOLUTION.orders[:2],
        moves=SOLUTION.moves[:3],
    )
    m = compute_metrics(load_instance(write_tiny(tmp_path / "tiny")), partial)
    assert m.undelivered_pct == pytest.approx(100 / 3)
    assert m.ctod_mean == pytest.approx(23.5)


def test_mean_metrics_average_every_key(tmp_path: Path) -> None:
    """The mean row averages each metric and is valid only if all instances are."""
    m = compute_metrics(load_instance(write_tiny(tmp_path / "tiny")), SOLUTION)
    mean = mean_metrics([m, m])
    assert set(METRIC_KEYS) <= set(mean) and mean["valid"] is True
    assert mean["ctod_mean"] == pytest.approx(m.ctod_mean)
