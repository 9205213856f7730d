"""MDRP solutions: the benchmark's three files (assignments, orders, moves), in memory and on disk.

Files are space-separated with a header line:
`solution_info_assignments.txt` (`assignment_time pickup_time courier order1 [order2 ...]`,
orders in drop-off sequence), `solution_info_orders.txt` (one row per delivered order) and
`solution_info_couriers.txt` (one row per move, grouped by courier in execution order; origin
`0` is the courier's on-location). Times are integer minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ASSIGNMENTS_FILE = "solution_info_assignments.txt"
ORDERS_FILE = "solution_info_orders.txt"
COURIERS_FILE = "solution_info_couriers.txt"
ON_LOCATION = "0"


class SolutionFormatError(ValueError):
    """A solution file that is missing or cannot be parsed."""


@dataclass(frozen=True)
class AssignmentRecord:
    """A final assignment: when it was made, when the bundle was picked up, by whom, what.

    Attributes:
        assignment_min: time of the (last) assignment decision.
        pickup_min: pickup time at the restaurant.
        courier: courier id.
        orders: order ids in drop-off sequence.
    """

    assignment_min: int
    pickup_min: int
    courier: str
    orders: tuple[str, ...]


@dataclass(frozen=True)
class OrderRecord:
    """One delivered order.

    Attributes:
        order: order id.
        placement_min: placement time.
        ready_min: ready time.
        pickup_min: pickup time.
        dropoff_min: drop-off time.
        courier: courier id.
    """

    order: str
    placement_min: int
    ready_min: int
    pickup_min: int
    dropoff_min: int
    courier: str


@dataclass(frozen=True)
class MoveRecord:
    """One courier move.

    Attributes:
        courier: courier id.
        departure_min: departure time.
        origin: place id it leaves (`"0"` for its on-location).
        destination: place id it goes to (restaurant or order id).
    """

    courier: str
    departure_min: int
    origin: str
    destination: str


@dataclass(frozen=True)
class MdrpSolution:
    """A complete solution: assignments, delivered orders and moves (grouped by courier).

    Attributes:
        assignments: final assignments.
        orders: delivered orders.
        moves: courier moves, grouped by courier in execution order.
    """

    assignments: tuple[AssignmentRecord, ...]
    orders: tuple[OrderRecord, ...]
    moves: tuple[MoveRecord, ...]


def write_solution(solution: MdrpSolution, directory: Path | str) -> Path:
    """Write the three solution files into `directory` (created if needed); returns it."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["assignment_time pickup_time courier orders"]
    lines += [
        " ".join((str(a.assignment_min), str(a.pickup_min), a.courier, *a.orders))
        for a in solution.assignments
    ]
    (root / ASSIGNMENTS_FILE).write_text("\n".join(lines) + "\n")
    lines = ["order placement_time ready_time pickup_time dropoff_time courier"]
    lines += [
        f"{o.order} {o.placement_min} {o.ready_min} {o.pickup_min} {o.dropoff_min} {o.courier}"
        for o in solution.orders
    ]
    (root / ORDERS_FILE).write_text("\n".join(lines) + "\n")
    lines = ["courier departure_time origin destination"]
    lines += [f"{m.courier} {m.departure_min} {m.origin} {m.destination}" for m in solution.moves]
    (root / COURIERS_FILE).write_text("\n".join(lines) + "\n")
    return root


def _minutes(text: str, where: str) -> int:
    """Parse a time the way the benchmark's evaluator does: `int(float(x))` (truncation)."""
    try:
        return int(float(text))
    except ValueError:
        raise SolutionFormatError(f"{where}: {text!r} is not a number") from None


def _data_lines(path: Path, n_fields: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """The rows of `path` after its header as (`<path>:<line>`, fields), blank lines skipped.

    Raises:
        SolutionFormatError: the file is missing, or a row has other than `n_fields` fields.
    """
    if not path.is_file():
        raise SolutionFormatError(f"{path}: missing file")
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where, fields = f"{path}:{number}", line.split()
        if n_fields is not None and len(fields) != n_fields:
            raise SolutionFormatError(f"{where}: expected {n_fields} fields, got {len(fields)}")
        yield where, fields


def read_solution(directory: Path | str) -> MdrpSolution:
    """Read the three solution files, parsing times with the evaluator's truncation.

    Raises:
        SolutionFormatError: if a file is missing or a row is malformed.
    """
    root = Path(directory)
    assignments = []
    for where, fields in _data_lines(root / ASSIGNMENTS_FILE):
        if len(fields) < 4:
            raise SolutionFormatError(f"{where}: expected time, pickup, courier and orders")
        assignments.append(
            AssignmentRecord(
                _minutes(fields[0], where), _minutes(fields[1], where), fields[2], tuple(fields[3:])
            )
        )
    orders = []
    for where, fields in _data_lines(root / ORDERS_FILE, n_fields=6):
        orders.append(
            OrderRecord(
                fields[0],
                _minutes(fields[1], where),
                _minutes(fields[2], where),
                _minutes(fields[3], where),
                _minutes(fields[4], where),
                fields[5],
            )
        )
    moves = []
    for where, fields in _data_lines(root / COURIERS_FILE, n_fields=4):
        moves.append(MoveRecord(fields[0], _minutes(fields[1], where), fields[2], fields[3]))
    return MdrpSolution(tuple(assignments), tuple(orders), tuple(moves))
