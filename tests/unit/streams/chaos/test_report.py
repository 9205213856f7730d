"""The report's pass rule and the order of its keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.chaos.checker import Figures
from streams.chaos.probe import Probe
from streams.chaos.report import MUST_BE_ZERO, REPORT_KEYS, failures, figures
from streams.chaos.run import ChaosOptions, ChaosResult


def _result() -> ChaosResult:
    return ChaosResult(
        options=ChaosOptions(seed=9),
        figures=Figures(orders=12, fuzz_sent=5, fuzz_dead_lettered=5),
        probe=Probe(lambda: [], []),
        faults_done=[],
        faults_not_started=[],
        fault_events=[],
        unexpected_exits=0,
        crash_lines=[],
        zombies_fenced=0,
        orders_in_burst=0,
        steps=3,
        open_at_end=(),
        wall_s=1.0,
        workdir=Path("run"),
    )


def _passing() -> dict[str, Any]:
    return figures(_result())


def test_a_report_starts_with_the_issue_s_keys_in_order() -> None:
    """The first keys of the JSON are exactly REPORT_KEYS."""
    assert list(_passing())[: len(REPORT_KEYS)] == list(REPORT_KEYS)


def test_a_clean_run_passes() -> None:
    """All must-be-zero figures at zero and every hostile record dead-lettered: no failure."""
    assert failures(_passing()) == []


def test_any_must_be_zero_figure_above_zero_fails() -> None:
    """Each must-be-zero figure at 1 is one failure naming it."""
    for key in MUST_BE_ZERO:
        report = {**_passing(), key: 1}
        assert failures(report) == [f"{key} = 1"]


def test_a_hostile_record_without_its_letter_fails() -> None:
    """fuzz_dead_lettered below fuzz_sent is a failure."""
    report = {**_passing(), "fuzz_dead_lettered": 4}
    assert failures(report) == ["fuzz_dead_lettered = 4 of fuzz_sent = 5"]


def test_an_order_still_on_its_way_when_the_run_stopped_fails() -> None:
    """A run that ends with an order open in the world cannot judge it: `open_at_end` fails."""
    result = _result()
    result.open_at_end = ("o306",)
    report = figures(result)
    assert (report["open_at_end"], report["open_at_end_orders"]) == (1, ["o306"])
    assert failures(report) == ["open_at_end = 1"]
