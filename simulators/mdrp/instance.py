"""Loading Grubhub Meal Delivery Routing Problem (MDRP) instances.

An instance directory holds tab-separated `orders.txt`, `restaurants.txt`, `couriers.txt` and
`instance_parameters.txt` (header line first). Times are integer minutes from the start of the
day, coordinates are planar metres. Travel takes `ceil(distance / meters_per_minute)` minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


class MdrpFormatError(ValueError):
    """An MDRP instance directory that is missing a file or holds a malformed row."""


@dataclass(frozen=True)
class MdrpParameters:
    """The one-row `instance_parameters.txt`.

    Attributes:
        meters_per_minute: travel speed.
        pickup_service_min: service time at a restaurant (handover at its midpoint).
        dropoff_service_min: service time at a customer (handover at its midpoint).
        target_ctod_min: click-to-door target (overage is measured against it).
        max_ctod_min: maximum click-to-door (not checked by the benchmark's evaluator).
        pay_per_order: courier pay per delivered order.
        guaranteed_pay_per_hour: courier's guaranteed pay per shift hour.
    """

    meters_per_minute: int
    pickup_service_min: int
    dropoff_service_min: int
    target_ctod_min: int
    max_ctod_min: int
    pay_per_order: float
    guaranteed_pay_per_hour: float


@dataclass(frozen=True, eq=False)
class MdrpInstance:
    """One MDRP instance, column-oriented; row `i` of each order array is order `order_id[i]`.

    Attributes:
        name: directory name (e.g. `0o50t75s1p100`).
        params: instance parameters.
        order_id: order ids.
        order_xy: customer locations, metres, shape `(n, 2)`.
        placement_min: placement times.
        ready_min: ready times.
        order_restaurant: restaurant row of each order.
        restaurant_id: restaurant ids.
        restaurant_xy: restaurant locations, shape `(r, 2)`.
        courier_id: courier ids.
        courier_xy: on-locations, shape `(m, 2)`.
        on_min: shift starts.
        off_min: shift ends (no pickup after).
    """

    name: str
    params: MdrpParameters
    order_id: tuple[str, ...]
    order_xy: FloatArray
    placement_min: IntArray
    ready_min: IntArray
    order_restaurant: IntArray
    restaurant_id: tuple[str, ...]
    restaurant_xy: FloatArray
    courier_id: tuple[str, ...]
    courier_xy: FloatArray
    on_min: IntArray
    off_min: IntArray

    @property
    def n_orders(self) -> int:
        """Number of orders."""
        return len(self.order_id)

    @property
    def n_couriers(self) -> int:
        """Number of couriers."""
        return len(self.courier_id)

    @cached_property
    def order_index(self) -> dict[str, int]:
        """Row of each order id."""
        return {o: i for i, o in enumerate(self.order_id)}

    @cached_property
    def courier_index(self) -> dict[str, int]:
        """Row of each courier id."""
        return {c: i for i, c in enumerate(self.courier_id)}

    @cached_property
    def restaurant_index(self) -> dict[str, int]:
        """Row of each restaurant id."""
        return {r: i for i, r in enumerate(self.restaurant_id)}

    @cached_property
    def pickup_xy(self) -> FloatArray:
        """Restaurant location of each order, shape `(n, 2)`."""
        return self.restaurant_xy[self.order_restaurant]

    def travel_min(self, origin_xy: FloatArray, destination_xy: FloatArray) -> IntArray:
        """Travel minutes between points: `ceil(sqrt(dx**2 + dy**2) / meters_per_minute)`."""
        delta = np.asarray(destination_xy, dtype=np.float64) - np.asarray(
            origin_xy, dtype=np.float64
        )
        dist = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
        return np.ceil(dist / self.params.meters_per_minute).astype(np.int64)

    def locations(self) -> dict[str, tuple[float, float]]:
        """Every place id (order, restaurant, courier on-location) mapped to its point."""
        places: dict[str, tuple[float, float]] = {}
        for ids, xy in (
            (self.order_id, self.order_xy),
            (self.restaurant_id, self.restaurant_xy),
            (self.courier_id, self.courier_xy),
        ):
            for i, place in enumerate(ids):
                places[place] = (float(xy[i, 0]), float(xy[i, 1]))
        return places


def _read_table(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    """Rows of a tab-separated file whose header must start with `columns`."""
    if not path.is_file():
        raise MdrpFormatError(f"{path}: missing file")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise MdrpFormatError(f"{path}: empty file")
    header = [h.strip() for h in lines[0].split("\t")]
    if tuple(header[: len(columns)]) != columns:
        raise MdrpFormatError(f"{path}: header {header} does not start with {list(columns)}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < len(columns):
            raise MdrpFormatError(f"{path}:{number}: expected {len(columns)} fields")
        rows.append(fields[: len(columns)])
    return rows


def _numbers(path: Path, rows: list[list[str]], column: int) -> IntArray:
    try:
        return np.array([int(r[column]) for r in rows], dtype=np.int64)
    except ValueError as error:
        raise MdrpFormatError(f"{path}: column {column + 1} must hold integers ({error})") from None


def _xy(path: Path, rows: list[list[str]]) -> FloatArray:
    """The (x, y) metres of every row: columns 2 and 3 of each file of places."""
    return np.stack([_numbers(path, rows, 1), _numbers(path, rows, 2)], axis=1).astype(np.float64)


def load_instance(directory: Path | str) -> MdrpInstance:
    """Load one instance directory.

    Raises:
        MdrpFormatError: if a file is missing or malformed, or ids do not resolve.
    """
    root = Path(directory)
    orders_path = root / "orders.txt"
    orders = _read_table(
        orders_path, ("order", "x", "y", "placement_time", "restaurant", "ready_time")
    )
    restaurants_path = root / "restaurants.txt"
    restaurants = _read_table(restaurants_path, ("restaurant", "x", "y"))
    couriers_path = root / "couriers.txt"
    couriers = _read_table(couriers_path, ("courier", "x", "y", "on_time", "off_time"))
    params_path = root / "instance_parameters.txt"
    if not params_path.is_file():
        raise MdrpFormatError(f"{params_path}: missing file")
    param_lines = [ln for ln in params_path.read_text().splitlines() if ln.strip()]
    if len(param_lines) < 2:
        raise MdrpFormatError(f"{params_path}: expected a header and one data row")
    try:
        values = [float(v) for v in param_lines[1].split("\t") if v.strip()]
    except ValueError as error:
        raise MdrpFormatError(f"{params_path}: non-numeric parameter ({error})") from None
    if len(values) != 7:
        raise MdrpFormatError(f"{params_path}: expected 7 parameters, got {len(values)}")
    params = MdrpParameters(
        meters_per_minute=int(values[0]),
        pickup_service_min=int(values[1]),
        dropoff_service_min=int(values[2]),
        target_ctod_min=int(values[3]),
        max_ctod_min=int(values[4]),
        pay_per_order=values[5],
        guaranteed_pay_per_hour=values[6],
    )
    if params.meters_per_minute <= 0:
        raise MdrpFormatError(f"{params_path}: meters_per_minute must be positive")
    if params.pickup_service_min % 2 or params.dropoff_service_min % 2:
        raise MdrpFormatError(f"{params_path}: service minutes must be even (handover at half)")

    restaurant_id = tuple(r[0] for r in restaurants)
    restaurant_index = {r: i for i, r in enumerate(restaurant_id)}
    if len(restaurant_index) != len(restaurant_id):
        raise MdrpFormatError(f"{restaurants_path}: duplicate restaurant ids")
    unknown = sorted({o[4] for o in orders} - set(restaurant_index))
    if unknown:
        raise MdrpFormatError(f"{orders_path}: unknown restaurants {unknown[:5]}")
    order_id = tuple(o[0] for o in orders)
    courier_id = tuple(c[0] for c in couriers)
    if len(set(order_id)) != len(order_id) or len(set(courier_id)) != len(courier_id):
        raise MdrpFormatError(f"{root}: duplicate order or courier ids")
    placement = _numbers(orders_path, orders, 3)
    ready = _numbers(orders_path, orders, 5)
    if (ready < placement).any():
        raise MdrpFormatError(f"{orders_path}: an order is ready before it is placed")
    on = _numbers(couriers_path, couriers, 3)
    off = _numbers(couriers_path, couriers, 4)
    if (off < on).any():
        raise MdrpFormatError(f"{couriers_path}: a shift ends before it starts")
    return MdrpInstance(
        name=root.resolve().name,
        params=params,
        order_id=order_id,
        order_xy=_xy(orders_path, orders),
        placement_min=placement,
        ready_min=ready,
        order_restaurant=np.array([restaurant_index[o[4]] for o in orders], dtype=np.int64),
        restaurant_id=restaurant_id,
        restaurant_xy=_xy(restaurants_path, restaurants),
        courier_id=courier_id,
        courier_xy=_xy(couriers_path, couriers),
        on_min=on,
        off_min=off,
    )


def find_instances(paths: list[Path | str]) -> list[Path]:
    """Instance directories named by `paths`: each is an instance or a parent of instances.

    Returns:
        Sorted, de-duplicated instance directories.

    Raises:
        MdrpFormatError: if a path does not exist or holds no instance.
    """
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise MdrpFormatError(f"{path}: no such file or directory")
        if (path / "orders.txt").is_file():
            found.add(path)
            continue
        children = [p for p in sorted(path.iterdir()) if (p / "orders.txt").is_file()]
        if not children:
            raise MdrpFormatError(f"{path}: neither an instance nor a parent of instances")
        found.update(children)
    return sorted(found, key=lambda p: (p.name, str(p)))
