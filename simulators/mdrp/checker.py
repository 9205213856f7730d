"""Validity checker for MDRP solutions: the benchmark evaluator's conditions, one by one.

The conditions (and their exact comparisons) follow the benchmark's evaluator script:
each delivered order is in at most one assignment; no assignment before an order's
placement; no pickup after the courier's off time; no pickup before any bundled order is
ready; consecutive drop-offs of a bundle at least the drop-off service time apart; moves
continuous (each origin is the previous destination, starting at the on-location) with
non-decreasing times; and at each pickup and drop-off time the courier's last timeline event
strictly before it is its arrival at the right place. Where the evaluator would crash (an
unknown id, an assigned order missing from the orders file), the checker reports a violation.
Two benchmark rules the evaluator does not test are checked as well: a bundle holds orders of
one restaurant, and a courier's moves form one contiguous group in the couriers file.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from simulators.mdrp.instance import MdrpInstance
from simulators.mdrp.solution import ON_LOCATION, MdrpSolution


@dataclass(frozen=True)
class CourierTimeline:
    """A courier's timeline as the evaluator builds it.

    Attributes:
        times: on-time, then departure and arrival time of each move.
        places: courier id, then `""` (in transit) and the destination of each move.
        driving_min: total travel minutes of its moves.
    """

    times: tuple[int, ...]
    places: tuple[str, ...]
    driving_min: int

    def place_before(self, minute: int) -> str:
        """The place of the last timeline event strictly before `minute`."""
        i = bisect.bisect_left(self.times, minute) - 1
        return self.places[i]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of the validity check.

    Attributes:
        violations: one human-readable line per violated condition instance.
        timelines: the courier timelines built while checking (used by the metrics).
    """

    violations: tuple[str, ...]
    timelines: dict[str, CourierTimeline] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when no condition is violated."""
        return not self.violations


def build_timelines(
    instance: MdrpInstance, solution: MdrpSolution, violations: list[str]
) -> dict[str, CourierTimeline]:
    """Build each moving courier's timeline, recording continuity and ordering violations."""
    places = instance.locations()
    mpm = instance.params.meters_per_minute
    groups: dict[str, list[tuple[int, str, str]]] = {}
    previous = None
    for move in solution.moves:
        if move.courier != previous and move.courier in groups:
            violations.append(f"moves of courier {move.courier} are not contiguous")
        previous = move.courier
        origin = move.courier if move.origin == ON_LOCATION else move.origin
        groups.setdefault(move.courier, []).append((move.departure_min, origin, move.destination))
    timelines: dict[str, CourierTimeline] = {}
    for courier, moves in groups.items():
        if courier not in instance.courier_index:
            violations.append(f"moves of unknown courier {courier}")
            continue
        times = [int(instance.on_min[instance.courier_index[courier]])]
        where = [courier]
        driving = 0
        for departure, origin, destination in moves:
            if origin != where[-1]:
                violations.append(
                    f"courier {courier}: move from {origin} but it is at {where[-1]}"
                    " (discontinuity)"
                )
            if origin not in places or destination not in places:
                violations.append(
                    f"courier {courier}: unknown place in move {origin}->{destination}"
                )
                continue
            (x1, y1), (x2, y2) = places[origin], places[destination]
            travel = int(np.ceil(np.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2) / mpm))
            times += [departure, departure + travel]
            where += ["", destination]
            driving += travel
        if sorted(times) != times:
            violations.append(f"courier {courier}: departures before arrivals {times}")
        timelines[courier] = CourierTimeline(tuple(times), tuple(where), driving)
    return timelines


def check_solution(instance: MdrpInstance, solution: MdrpSolution) -> CheckResult:
    """Check every evaluator condition; an empty violation list means the solution is valid."""
    violations: list[str] = []
    orders = instance.order_index
    couriers = instance.courier_index
    delivered = {o.order: o for o in solution.orders}

    assigned_to: dict[str, int] = {}
    for a in solution.assignments:
        for o in a.orders:
            assigned_to[o] = assigned_to.get(o, 0) + 1
    for o in delivered:
        if assigned_to.get(o, 0) > 1:
            violations.append(f"order {o} is in more than one assignment")

    for a in solution.assignments:
        if a.courier not in couriers:
            violations.append(f"assignment to unknown courier {a.courier}")
            continue
        unknown = [o for o in a.orders if o not in orders]
        if unknown:
            violations.append(f"assignment of unknown orders {unknown}")
            continue
        rows = [orders[o] for o in a.orders]
        for o, row in zip(a.orders, rows, strict=True):
            if a.assignment_min < instance.placement_min[row]:
                violations.append(f"order {o} assigned at {a.assignment_min} before placement")
            if instance.ready_min[row] > a.pickup_min:
                violations.append(f"order {o} picked up at {a.pickup_min} before it is ready")
        if instance.off_min[couriers[a.courier]] < a.pickup_min:
            violations.append(f"courier {a.courier} picks up at {a.pickup_min} after off time")
        if len({int(instance.order_restaurant[r]) for r in rows}) > 1:
            violations.append(f"bundle {list(a.orders)} mixes restaurants")
        drops: list[int] = []
        for o in a.orders:
            if o not in delivered:
                violations.append(f"assigned order {o} has no row in the orders file")
                break
            drop = delivered[o].dropoff_min
            if drops and drop < drops[-1] + instance.params.dropoff_service_min:
                violations.append(
                    f"bundle {list(a.orders)}: drop-offs out of sequence or too close"
                )
            drops.append(drop)

    timelines = build_timelines(instance, solution, violations)

    for o, record in delivered.items():
        if record.courier not in couriers:
            continue
        timeline = timelines.get(record.courier)
        if timeline is None:
            violations.append(f"order {o}: courier {record.courier} never moves")
            continue
        place = timeline.place_before(record.dropoff_min)
        if place != o:
            violations.append(
                f"order {o}: at drop-off {record.dropoff_min} courier is at {place!r}"
            )

    for a in solution.assignments:
        if a.courier not in couriers or not a.orders or a.orders[0] not in orders:
            continue
        restaurant = instance.restaurant_id[instance.order_restaurant[orders[a.orders[0]]]]
        timeline = timelines.get(a.courier)
        if timeline is None:
            violations.append(f"assignment {list(a.orders)}: courier {a.courier} never moves")
            continue
        place = timeline.place_before(a.pickup_min)
        if place != restaurant:
            violations.append(
                f"assignment {list(a.orders)}: at pickup {a.pickup_min} courier is at {place!r},"
                f" not {restaurant}"
            )
    return CheckResult(tuple(violations), timelines)
