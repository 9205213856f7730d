"""Food waiting by preparation time and merchant history (worked by hand on the tiny day)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dispatch.policy import DEFAULT_POLICY
from simulators.mdrp.breakdown import breakdown, order_parts
from simulators.mdrp.foodwait import (
    HISTORY_EDGES,
    PREP_EDGES_MIN,
    FoodWaitBands,
    band_labels,
    band_means,
    band_of,
    earlier_orders,
    history_bands,
    prep_bands,
)
from simulators.mdrp.instance import MdrpInstance, load_instance
from simulators.mdrp.simulator import simulate
from simulators.mdrp.solution import MdrpSolution

from .tiny import SOLUTION, write_tiny

#: Earliest pickups at placement for the tiny solution's orders o1, o2, o3 (set by hand).
EARLIEST = np.array([11, 12, 20])


def test_band_labels_name_inclusive_ranges_and_the_open_top() -> None:
    """Edges 0, 2, 9 give `0`, `1-2`, `3-9`, `>9`; prep edges start at `0-5`."""
    assert band_labels((0, 2, 9)) == ("0", "1-2", "3-9", ">9")
    assert band_labels(PREP_EDGES_MIN) == ("0-5", "6-10", "11-15", "16-20", "21-30", ">30")


def test_band_edges_are_inclusive() -> None:
    """A value equal to an edge falls in the band below it; above every edge, the last band."""
    values = np.array([0, 1, 2, 3, 9, 10, 400])
    assert band_of(values, HISTORY_EDGES).tolist() == [0, 1, 1, 2, 2, 3, 3]


def test_earlier_orders_count_strictly_earlier_placements_per_merchant(tmp_path: Path) -> None:
    """o1 is r1's first order, o2 its second; o3 is r2's first."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    assert earlier_orders(instance).tolist() == [0, 1, 0]


def test_orders_placed_in_the_same_minute_do_not_count_each_other(tmp_path: Path) -> None:
    """Two orders of one merchant placed together both had no earlier order."""
    text = (write_tiny(tmp_path / "tiny") / "orders.txt").read_text()
    (tmp_path / "tiny" / "orders.txt").write_text(text.replace("o2\t0\t800\t2", "o2\t0\t800\t0"))
    instance = load_instance(tmp_path / "tiny")
    assert earlier_orders(instance).tolist() == [0, 0, 0]


def test_prep_bands_split_the_waits_by_preparation_time(tmp_path: Path) -> None:
    """o1 and o2 (10 min prep) are in 6-10, o3 (15) in 11-15; only o1 waited, 1 + 1 min."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    bands = prep_bands(instance, order_parts(instance, SOLUTION, EARLIEST))
    assert bands.delivered == 3
    assert bands.share == pytest.approx((0, 2 / 3, 1 / 3, 0, 0, 0))
    assert bands.wait_at_placement == pytest.approx((0, 1 / 3, 0, 0, 0, 0))
    assert bands.wait_after_placement == pytest.approx((0, 1 / 3, 0, 0, 0, 0))


def test_history_bands_split_the_waits_by_merchant_history(tmp_path: Path) -> None:
    """o1 and o3 are their merchants' first orders, o2 r1's second; o1's waits are in `0`."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    bands = history_bands(instance, order_parts(instance, SOLUTION, EARLIEST))
    assert bands.share == pytest.approx((2 / 3, 1 / 3, 0, 0))
    assert bands.wait_at_placement == pytest.approx((1 / 3, 0, 0, 0))
    assert bands.wait_after_placement == pytest.approx((1 / 3, 0, 0, 0))


def test_band_contributions_add_up_to_the_breakdown_waits(small: MdrpInstance) -> None:
    """On a simulated day each grouping's bands sum to the mean waits and a share of 1."""
    result = simulate(small, DEFAULT_POLICY)
    parts = order_parts(small, result.solution, result.earliest_pickup_min)
    whole = breakdown(small, result.solution, result.earliest_pickup_min)
    for bands in (prep_bands(small, parts), history_bands(small, parts)):
        assert sum(bands.share) == pytest.approx(1.0)
        assert sum(bands.wait_at_placement) == pytest.approx(whole.wait_at_placement)
        assert sum(bands.wait_after_placement) == pytest.approx(whole.wait_after_placement)


def test_an_instance_without_deliveries_has_nan_bands(tmp_path: Path) -> None:
    """No delivered order: NaN per band and a zero count, not a division error."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    parts = order_parts(instance, MdrpSolution((), (), ()), np.full(3, -1))
    bands = prep_bands(instance, parts)
    assert bands.delivered == 0 and all(math.isnan(v) for v in bands.share)


def test_band_means_average_instances_and_sum_to_all() -> None:
    """Each band is the mean over instances with deliveries; `all` sums the bands."""
    nan = (float("nan"),) * 2
    rows = [
        FoodWaitBands("a", 10, (0.5, 0.5), (0.2, 0.0), (0.4, 0.2)),
        FoodWaitBands("b", 10, (0.25, 0.75), (0.6, 0.2), (0.0, 0.0)),
        FoodWaitBands("c", 0, nan, nan, nan),
    ]
    means = band_means(rows, ("low", "high"))
    assert list(means) == ["low", "high", "all"]
    assert means["low"] == pytest.approx(
        {"share": 0.375, "wait_at_placement": 0.4, "wait_after_placement": 0.2, "food_wait": 0.6}
    )
    assert means["all"]["share"] == pytest.approx(1.0)
    assert means["all"]["food_wait"] == pytest.approx(0.4 + 0.2 + 0.1 + 0.1)


def test_band_means_refuse_labels_that_do_not_match_the_bands() -> None:
    """Two bands named by three labels is a ValueError, not a silently shifted table."""
    rows = [FoodWaitBands("a", 1, (1.0, 0.0), (0.0, 0.0), (0.0, 0.0))]
    with pytest.raises(ValueError, match="3 labels for 2 bands"):
        band_means(rows, ("x", "y", "z"))
