"""Solution files."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.mdrp.solution import (
    ASSIGNMENTS_FILE,
    AssignmentRecord,
    MdrpSolution,
    MoveRecord,
    OrderRecord,
    SolutionFormatError,
    read_solution,
    write_solution,
)

SOLUTION = MdrpSolution(
    assignments=(AssignmentRecord(10, 20, "c1", ("o1", "o2")),),
    orders=(OrderRecord("o1", 5, 18, 20, 30, "c1"), OrderRecord("o2", 6, 19, 20, 36, "c1")),
    moves=(
        MoveRecord("c1", 12, "0", "r1"),
        MoveRecord("c1", 22, "r1", "o1"),
        MoveRecord("c1", 32, "o1", "o2"),
    ),
)


def test_round_trip(tmp_path: Path) -> None:
    """Writing then reading a solution gives it back."""
    write_solution(SOLUTION, tmp_path)
    assert read_solution(tmp_path) == SOLUTION


def test_times_are_truncated_like_the_evaluator(tmp_path: Path) -> None:
    """Times are parsed with int(float(x)): 12.9 reads as 12."""
    write_solution(SOLUTION, tmp_path)
    (tmp_path / ASSIGNMENTS_FILE).write_text(
        "assignment_time pickup_time courier orders\n10.9 20.7 c1 o1 o2\n"
    )
    assert read_solution(tmp_path).assignments[0] == AssignmentRecord(10, 20, "c1", ("o1", "o2"))


def test_missing_or_malformed_files_raise(tmp_path: Path) -> None:
    """A missing file or a short row is a SolutionFormatError."""
    with pytest.raises(SolutionFormatError):
        read_solution(tmp_path)
    write_solution(SOLUTION, tmp_path)
    (tmp_path / ASSIGNMENTS_FILE).write_text("header\n10 20 c1\n")
    with pytest.raises(SolutionFormatError):
        read_solution(tmp_path)
