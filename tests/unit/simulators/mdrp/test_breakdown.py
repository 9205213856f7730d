"""The click-to-door breakdown: direct minimum, food wait and bundle delay (worked by hand)."""

from __future__ import annotations

import math
from pathlib import Path

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


def test_parts_follow_the_definitions(tmp_path: Path) -> None:
    """Direct is prep plus the straight ride with half services; the rest is wait and bundle."""
    b = breakdown(load_instance(write_tiny(tmp_path / "tiny")), SOLUTION)
    # o1: 10 prep + 2 + 5 ride + 2; o2: 10 + 2 + 8 + 2; o3: 15 + 2 + 3 + 2.
    assert b.direct == pytest.approx((19 + 22 + 22) / 3)
    # o1 picked up 2 min after ready; o2 and o3 at ready.
    assert b.food_wait == pytest.approx(2 / 3)
    # o2 is dropped 28, 4 min after its direct ride from the 12 pickup would end (24).
    assert b.bundle_delay == pytest.approx(4 / 3)
    assert b.delivered == 3


def test_parts_sum_to_the_benchmark_click_to_door_mean(small: MdrpInstance) -> None:
    """On a simulated day, direct + food wait + bundle delay is the metrics' click-to-door."""
    solution = simulate(small, DEFAULT_POLICY).solution
    b = breakdown(small, solution)
    assert b.ctod == pytest.approx(compute_metrics(small, solution).ctod_mean)
    assert b.food_wait >= 0 and b.bundle_delay >= 0


def test_an_instance_without_deliveries_has_no_parts(tmp_path: Path) -> None:
    """No delivered order: NaN parts and a zero count, not a division error."""
    b = breakdown(load_instance(write_tiny(tmp_path / "tiny")), MdrpSolution((), (), ()))
    assert b.delivered == 0 and all(math.isnan(getattr(b, p)) for p in PARTS)


def test_instance_classes_come_from_benchmark_names() -> None:
    """A benchmark name gives its day and variants; any other name gives none."""
    assert instance_classes("1o50t100s1p125") == ("day 1", "o50", "t100", "s1", "p125")
    assert instance_classes("3r50t75s2p100") == ("day 3", "r50", "t75", "s2", "p100")
    assert instance_classes("tiny") == ()


def test_class_means_average_instances_per_class() -> None:
    """Each class averages its own instances' parts; `all` averages every instance."""
    rows = [
        CtodBreakdown("0o100t75s1p100", 10, 30.0, 1.0, 0.0),
        CtodBreakdown("0o50t75s1p100", 10, 32.0, 3.0, 1.0),
        CtodBreakdown("tiny", 3, 20.0, 0.0, 0.0),
    ]
    means = class_means(rows)
    assert means["all"]["instances"] == 3
    assert means["all"]["direct"] == pytest.approx(82 / 3)
    assert means["o50"] == {
        "instances": 1,
        "direct": 32.0,
        "food_wait": 3.0,
        "bundle_delay": 1.0,
        "ctod": 36.0,
    }
    assert means["day 0"]["food_wait"] == pytest.approx(2.0)
    assert "tiny" not in means


def test_class_means_leave_out_instances_without_deliveries() -> None:
    """An instance that delivered nothing does not drag a class mean to NaN."""
    nan = float("nan")
    rows = [
        CtodBreakdown("0o100t75s1p100", 10, 30.0, 1.0, 0.0),
        CtodBreakdown("1o100t75s1p100", 0, nan, nan, nan),
    ]
    means = class_means(rows)
    assert means["all"]["instances"] == 1 and means["o100"]["ctod"] == pytest.approx(31.0)
    assert "day 1" not in means


def test_classes_are_ordered_by_dimension_then_number() -> None:
    """`all`, then days, samples, speeds, shifts and preps, numbers in numeric order."""
    names = ["1r50t100s2p125", "0o100t75s1p100", "0o50t75s1p100"]
    means = class_means(CtodBreakdown(n, 1, 30.0, 1.0, 0.0) for n in names)
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
        st.tuples(st.integers(0, 4), st.floats(20, 40), st.floats(0, 10), st.floats(0, 5)),
        min_size=1,
        max_size=12,
    )
)
def test_every_class_mean_is_the_sum_of_its_parts(
    rows: list[tuple[int, float, float, float]],
) -> None:
    """Per class, click-to-door is direct + food wait + bundle delay, and columns carry it."""
    data = [CtodBreakdown(f"{d}o50t75s1p100", 5, a, b, c) for d, a, b, c in rows]
    means = class_means(data)
    for values in means.values():
        assert values["ctod"] == pytest.approx(sum(values[p] for p in PARTS))
    columns = breakdown_columns(means)
    assert set(columns) == {*PARTS, "ctod"}
    assert columns["ctod"] == {label: v["ctod"] for label, v in means.items()}
