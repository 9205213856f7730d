"""The click-to-door breakdown: direct minimum, food waits and bundle delay (worked by hand)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.policy import DEFAULT_POLICY
from simulators.mdrp.breakdown import (
    PARTS,
    CtodBreakdown,
    breakdown,
    breakdown_columns,
    class_means,
    instance_classes,
)
from simulators.mdrp.instance import MdrpInstance, load_instance
from simulators.mdrp.metrics import compute_metrics
from simulators.mdrp.simulator import simulate
from simulators.mdrp.solution import MdrpSolution

from .tiny import SOLUTION, write_tiny

#: Earliest pickups at placement for the tiny solution's orders o1, o2, o3 (set by hand).
EARLIEST = np.array([11, 12, 20])


def test_parts_follow_the_definitions(tmp_path: Path) -> None:
    """Direct is prep plus the straight ride with half services; the rest is wait and bundle."""
    b = breakdown(load_instance(write_tiny(tmp_path / "tiny")), SOLUTION, EARLIEST)
    # o1: 10 prep + 2 + 5 ride + 2; o2: 10 + 2 + 8 + 2; o3: 15 + 2 + 3 + 2.
    assert b.direct == pytest.approx((19 + 22 + 22) / 3)
    # o1 (ready 10) could be picked up at 11 at the earliest and was at 12; o2 and o3 at ready.
    assert b.wait_at_placement == pytest.approx(1 / 3)
    assert b.wait_after_placement == pytest.approx(1 / 3)
    assert b.food_wait == pytest.approx(2 / 3)
    # o2 is dropped 28, 4 min after its direct ride from the 12 pickup would end (24).
    assert b.bundle_delay == pytest.approx(4 / 3)
    assert b.delivered == 3


def test_parts_sum_to_the_benchmark_click_to_door_mean(small: MdrpInstance) -> None:
    """On a simulated day the parts add up to the metrics' click-to-door, the waits to rtop."""
    result = simulate(small, DEFAULT_POLICY)
    b = breakdown(small, result.solution, result.earliest_pickup_min)
    metrics = compute_metrics(small, result.solution)
    assert b.ctod == pytest.approx(metrics.ctod_mean)
    assert b.food_wait == pytest.approx(metrics.rtop_mean)
    assert min(b.wait_at_placement, b.wait_after_placement, b.bundle_delay) >= 0


def test_a_missing_or_too_late_earliest_pickup_is_refused(tmp_path: Path) -> None:
    """An earliest pickup after the actual one, or none, for a delivered order is a ValueError."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="earliest pickup"):
        breakdown(instance, SOLUTION, np.array([13, 12, 20]))
    with pytest.raises(ValueError, match="earliest pickup"):
        breakdown(instance, SOLUTION, np.array([11, -1, 20]))


def test_an_instance_without_deliveries_has_no_parts(tmp_path: Path) -> None:
    """No delivered order: NaN parts and a zero count, not a division error."""
    instance = load_instance(write_tiny(tmp_path / "tiny"))
    b = breakdown(instance, MdrpSolution((), (), ()), np.full(3, -1))
    assert b.delivered == 0 and all(math.isnan(getattr(b, p)) for p in PARTS)


def test_instance_classes_come_from_benchmark_names() -> None:
    """A benchmark name gives its day and variants; any other name gives none."""
    assert instance_classes("1o50t100s1p125") == ("day 1", "o50", "t100", "s1", "p125")
    assert instance_classes("3r50t75s2p100") == ("day 3", "r50", "t75", "s2", "p100")
    assert instance_classes("tiny") == ()


def test_class_means_average_instances_per_class() -> None:
    """Each class averages its own instances' parts; `all` averages every instance."""
    rows = [
        CtodBreakdown("0o100t75s1p100", 10, 30.0, 0.5, 0.5, 0.0),
        CtodBreakdown("0o50t75s1p100", 10, 32.0, 1.0, 2.0, 1.0),
        CtodBreakdown("tiny", 3, 20.0, 0.0, 0.0, 0.0),
    ]
    means = class_means(rows)
    assert means["all"]["instances"] == 3
    assert means["all"]["direct"] == pytest.approx(82 / 3)
    assert means["o50"] == {
        "instances": 1,
        "direct": 32.0,
        "wait_at_placement": 1.0,
        "wait_after_placement": 2.0,
        "bundle_delay": 1.0,
        "ctod": 36.0,
    }
    assert means["day 0"]["wait_after_placement"] == pytest.approx(1.25)
    assert "tiny" not in means


def test_class_means_leave_out_instances_without_deliveries() -> None:
    """An instance that delivered nothing does not drag a class mean to NaN."""
    nan = float("nan")
    rows = [
        CtodBreakdown("0o100t75s1p100", 10, 30.0, 0.5, 0.5, 0.0),
        CtodBreakdown("1o100t75s1p100", 0, nan, nan, nan, nan),
    ]
    means = class_means(rows)
    assert means["all"]["instances"] == 1 and means["o100"]["ctod"] == pytest.approx(31.0)
    assert "day 1" not in means


def test_classes_are_ordered_by_dimension_then_number() -> None:
    """`all`, then days, samples, speeds, shifts and preps, numbers in numeric order."""
    names = ["1r50t100s2p125", "0o100t75s1p100", "0o50t75s1p100"]
    means = class_means(CtodBreakdown(n, 1, 30.0, 0.5, 0.5, 0.0) for n in names)
    assert list(means) == [
        "all",
        "day 0",
        "day 1",
        "o50",
        "o100",
        "r50",
        "t75",
        "t100",
        "s1",
        "s2",
        "p100",
        "p125",
    ]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.floats(20, 40), st.floats(0, 5), st.floats(0, 10), st.floats(0, 5)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_every_class_mean_is_the_sum_of_its_parts(
    rows: list[tuple[int, float, float, float, float]],
) -> None:
    """Per class, click-to-door is direct + both waits + bundle delay, and columns carry it."""
    data = [CtodBreakdown(f"{d}o50t75s1p100", 5, a, w, x, c) for d, a, w, x, c in rows]
    means = class_means(data)
    for values in means.values():
        assert values["ctod"] == pytest.approx(sum(values[p] for p in PARTS))
    columns = breakdown_columns(means)
    assert set(columns) == {*PARTS, "ctod"}
    assert columns["ctod"] == {label: v["ctod"] for label, v in means.items()}
