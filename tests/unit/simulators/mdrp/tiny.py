"""A hand-made three-order MDRP instance and a valid solution for it, checked by hand.

Travel is 100 m per minute; couriers c1 (0, 100) on 0-120 and c2 (1000, 1000) on 0-60.
c1 leaves at 1, reaches r1 at 2, picks o1 and o2 up at 12 (o2 ready), drops o1 at 21 and o2
at 28. c2 leaves at 5, reaches r2 at 15, picks o3 up at 20, drops it at 27.
"""

from __future__ import annotations

from pathlib import Path

from simulators.mdrp.solution import AssignmentRecord, MdrpSolution, MoveRecord, OrderRecord

FILES = {
    "orders.txt": "order\tx\ty\tplacement_time\trestaurant\tready_time\n"
    "o1\t0\t500\t0\tr1\t10\no2\t0\t800\t2\tr1\t12\no3\t1000\t300\t5\tr2\t20\n",
    "restaurants.txt": "restaurant\tx\ty\nr1\t0\t0\nr2\t1000\t0\n",
    "couriers.txt": "courier\tx\ty\ton_time\toff_time\nc1\t0\t100\t0\t120\nc2\t1000\t1000\t0\t60\n",
    "instance_parameters.txt": "meters_per_minute\tpickup service minutes\tdropoff service minutes"
    "\ttarget click-to-door\tmaximum click-to-door\tpay per order\tguaranteed pay per hour\n"
    "100\t4\t4\t40\t90\t10\t15\n",
}

SOLUTION = MdrpSolution(
    assignments=(
        AssignmentRecord(2, 12, "c1", ("o1", "o2")),
        AssignmentRecord(5, 20, "c2", ("o3",)),
    ),
    orders=(
        OrderRecord("o1", 0, 10, 12, 21, "c1"),
        OrderRecord("o2", 2, 12, 12, 28, "c1"),
        OrderRecord("o3", 5, 20, 20, 27, "c2"),
    ),
    moves=(
        MoveRecord("c1", 1, "0", "r1"),
        MoveRecord("c1", 14, "r1", "o1"),
        MoveRecord("c1", 23, "o1", "o2"),
        MoveRecord("c2", 5, "0", "r2"),
        MoveRecord("c2", 22, "r2", "o3"),
    ),
)


def write_tiny(directory: Path) -> Path:
    """Write the tiny instance into `directory` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (directory / name).write_text(text)
    return directory
