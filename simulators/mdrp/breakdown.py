"""Where click-to-door time goes: each delivered order's minutes split into four parts.

For a delivered order, click-to-door = direct + wait at placement + wait after placement +
bundle delay, exactly:

- `direct`: preparation (ready minus placement) plus half the pickup service, the straight
  drive from the restaurant to the customer and half the drop-off service. It is what the
  order would take if a courier picked it up the moment it was ready and drove straight to the
  customer; no policy can do better.
- `wait_at_placement`: the earliest pickup any courier could have given the order as things
  stood when it was placed (`SimulationResult.earliest_pickup_min`), minus ready: food waiting
  that no decision from then on could avoid; only where couriers already were (earlier
  positioning and commitments) could.
- `wait_after_placement`: pickup minus that earliest pickup: food waiting that came from the
  decisions made after the order was placed (other orders served first, later commitments).
  The two waits add up to pickup minus ready (the benchmark's ready-to-pickup).
- `bundle_delay`: drop-off minus pickup, minus the direct ride: time spent on the bundle's
  other drop-offs first.

Instance means are grouped by the parts of the benchmark's instance names
(`{seed}{o|r}{50|100}t{75|100}s{1|2}p{100|125}`), so a report shows which kind of day, and
which part, holds the minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from simulators.mdrp.instance import FloatArray, IntArray, MdrpInstance
from simulators.mdrp.metrics import delivered_times
from simulators.mdrp.solution import MdrpSolution

#: The parts of a click-to-door minute, in report order.
PARTS = ("direct", "wait_at_placement", "wait_after_placement", "bundle_delay")

_LABEL = re.compile(r"(\D*)(\d+)")
_NAME = re.compile(
    r"^(?P<seed>\d+)(?P<orders>[or]\d+)(?P<speed>t\d+)(?P<shifts>s\d+)(?P<prep>p\d+)$"
)


@dataclass(frozen=True)
class CtodBreakdown:
    """Mean minutes per delivered order of one solved instance, by part.

    Attributes:
        name: instance name.
        delivered: delivered orders (the means are over them).
        direct: mean preparation plus direct ride, services included.
        wait_at_placement: mean minutes from ready to the earliest pickup possible at placement.
        wait_after_placement: mean minutes from that earliest pickup to the pickup.
        bundle_delay: mean minutes spent on other drop-offs of the bundle first.
    """

    name: str
    delivered: int
    direct: float
    wait_at_placement: float
    wait_after_placement: float
    bundle_delay: float

    @property
    def food_wait(self) -> float:
        """Mean minutes from ready to pickup (the benchmark's ready-to-pickup mean)."""
        return self.wait_at_placement + self.wait_after_placement

    @property
    def ctod(self) -> float:
        """Mean click-to-door: the sum of the parts."""
        return self.direct + self.food_wait + self.bundle_delay


@dataclass(frozen=True)
class OrderParts:
    """Each delivered order's click-to-door parts, in minutes (arrays aligned with `rows`).

    Attributes:
        rows: instance rows of the delivered orders.
        direct: preparation plus the direct ride, services included.
        wait_at_placement: ready to the earliest pickup possible at placement.
        wait_after_placement: that earliest pickup to the pickup.
        bundle_delay: minutes spent on other drop-offs of the bundle first.
    """

    rows: IntArray
    direct: FloatArray
    wait_at_placement: FloatArray
    wait_after_placement: FloatArray
    bundle_delay: FloatArray


def order_parts(
    instance: MdrpInstance, solution: MdrpSolution, earliest_pickup_min: IntArray
) -> OrderParts:
    """The click-to-door parts of every order `solution` delivered.

    Args:
        instance: the instance solved.
        solution: its solution.
        earliest_pickup_min: per order (instance row), the earliest pickup possible when it was
            placed, as the simulator records it.

    Raises:
        ValueError: if a delivered order has no earliest pickup, or one after its pickup.
    """
    t = delivered_times(instance, solution)
    rows = t.rows
    earliest = np.asarray(earliest_pickup_min, dtype=np.int64)[rows]
    if ((earliest < 0) | (earliest > t.pickup)).any():
        raise ValueError("a delivered order's earliest pickup is missing or after its pickup")
    possible = np.maximum(earliest, t.ready)
    params = instance.params
    ride = (
        params.pickup_service_min / 2.0
        + instance.travel_min(instance.pickup_xy[rows], instance.order_xy[rows])
        + params.dropoff_service_min / 2.0
    )
    return OrderParts(
        rows=rows,
        direct=t.ready - t.placement + ride,
        wait_at_placement=possible - t.ready,
        wait_after_placement=t.pickup - possible,
        bundle_delay=t.dropoff - t.pickup - ride,
    )


def breakdown(
    instance: MdrpInstance, solution: MdrpSolution, earliest_pickup_min: IntArray
) -> CtodBreakdown:
    """The click-to-door breakdown of `solution`'s delivered orders (NaN parts if none).

    Arguments and errors as for `order_parts`.
    """
    return summarize(instance.name, order_parts(instance, solution, earliest_pickup_min))


def summarize(name: str, parts: OrderParts) -> CtodBreakdown:
    """Instance `name`'s breakdown from its per-order parts (NaN parts without deliveries)."""
    if parts.rows.size == 0:
        nan = float("nan")
        return CtodBreakdown(name, 0, nan, nan, nan, nan)
    means = (float(np.mean(getattr(parts, p))) for p in PARTS)
    return CtodBreakdown(name, int(parts.rows.size), *means)


def instance_classes(name: str) -> tuple[str, ...]:
    """The classes an instance belongs to: its day, order sample, speed, shifts and prep.

    `1o50t100s1p125` belongs to `day 1`, `o50`, `t100`, `s1` and `p125`; a name outside the
    benchmark's scheme belongs to no class.
    """
    match = _NAME.match(name)
    if match is None:
        return ()
    return (f"day {match['seed']}", match["orders"], match["speed"], match["shifts"], match["prep"])


def class_means(rows: Iterable[CtodBreakdown]) -> dict[str, dict[str, float]]:
    """Mean parts (and click-to-door) over instances, for `all` and for every class present.

    Returns:
        `{class: {"instances", *PARTS, "ctod"}}`: `all` first,
        then days, order samples, speeds, shifts and preps, each in numeric order; instances
        without delivered orders are left out.
    """
    groups: dict[str, list[CtodBreakdown]] = {"all": []}
    dimension: dict[str, int] = {"all": -1}
    for row in rows:
        if row.delivered == 0:
            continue
        groups["all"].append(row)
        for position, label in enumerate(instance_classes(row.name)):
            groups.setdefault(label, []).append(row)
            dimension[label] = position

    def rank(label: str) -> tuple[int, str, int]:
        part = _LABEL.fullmatch(label)
        return (dimension[label], part[1], int(part[2])) if part else (dimension[label], label, 0)

    out: dict[str, dict[str, float]] = {}
    for label in sorted(groups, key=rank):
        members = groups[label]
        if not members:
            continue
        means = {p: float(np.mean([getattr(r, p) for r in members])) for p in PARTS}
        out[label] = {"instances": float(len(members)), **means, "ctod": sum(means.values())}
    return out


def breakdown_columns(
    means: dict[str, dict[str, float]], parts: Sequence[str] = (*PARTS, "ctod")
) -> dict[str, dict[str, float]]:
    """Rows of means (`class_means`, or `foodwait.band_means`) turned into table columns.

    One column per part (key of each row), one row per label.
    """
    return {part: {label: values[part] for label, values in means.items()} for part in parts}
