"""The validity checker: the evaluator's conditions, one violation at a time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from simulators.mdrp.checker import check_solution
from simulators.mdrp.instance import MdrpInstance, load_instance
from simulators.mdrp.solution import AssignmentRecord, MdrpSolution, MoveRecord, OrderRecord

from .tiny import SOLUTION, write_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> MdrpInstance:
    """The hand-made instance."""
    return load_instance(write_tiny(Path(tmp_path_factory.mktemp("tiny")) / "tiny"))


def _with(**changes: object) -> MdrpSolution:
    return dataclasses.replace(SOLUTION, **changes)  # type: ignore[arg-type]


def test_hand_checked_solution_is_valid(tiny: MdrpInstance) -> None:
    """The hand-checked solution passes every condition."""
    assert check_solution(tiny, SOLUTION).violations == ()


@pytest.mark.parametrize(
    ("solution", "message"),
    [
        (
            _with(
                assignments=(AssignmentRecord(2, 11, "c1", ("o1", "o2")), SOLUTION.assignments[1])
            ),
            "before it is ready",
        ),
        (
            _with(
                assignments=(AssignmentRecord(1, 12, "c1", ("o1", "o2")), SOLUTION.assignments[1])
            ),
            "before placement",
        ),
        (
            _with(assignments=(SOLUTION.assignments[0], AssignmentRecord(5, 61, "c2", ("o3",)))),
            "after off time",
        ),
        (
            _with(assignments=(*SOLUTION.assignments, AssignmentRecord(30, 40, "c1", ("o3",)))),
            "more than one assignment",
        ),
        (
            _with(moves=(SOLUTION.moves[0], MoveRecord("c1", 14, "r2", "o1"), *SOLUTION.moves[2:])),
            "discontinuity",
        ),
        (
            _with(
                orders=(
                    SOLUTION.orders[0],
                    OrderRecord("o2", 2, 12, 12, 24, "c1"),
                    SOLUTION.orders[2],
                )
            ),
            "drop-offs out of sequence",
        ),
        (
            _with(moves=(MoveRecord("c1", 11, "0", "r1"), *SOLUTION.moves[1:])),
            "at pickup",
        ),
        (
            _with(assignments=(AssignmentRecord(5, 20, "c1", ("o1", "o3")),)),
            "mixes restaurants",
        ),
        (
            _with(
                moves=(
                    *SOLUTION.moves[:3],
                    MoveRecord("c2", 5, "0", "r2"),
                    MoveRecord("c1", 30, "o2", "r1"),
                    MoveRecord("c2", 22, "r2", "o3"),
                )
            ),
            "not contiguous",
        ),
    ],
)
def test_each_violation_is_detected(
    tiny: MdrpInstance, solution: MdrpSolution, message: str
) -> None:
    """A solution breaking one condition is reported with that condition."""
    violations = check_solution(tiny, solution).violations
    assert any(message in v for v in violations), violations


def test_departure_before_arrival_is_detected(tiny: MdrpInstance) -> None:
    """Leaving r1 before arriving there breaks the timeline order."""
    moves = (SOLUTION.moves[0], MoveRecord("c1", 1, "r1", "o1"), *SOLUTION.moves[2:])
    assert any(
        "departures before arrivals" in v
        for v in check_solution(tiny, _with(moves=moves)).violations
    )
