"""Loading MDRP instances."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simulators.mdrp.instance import MdrpFormatError, MdrpInstance, find_instances, load_instance


def test_small_instance_loads_with_consistent_columns(small: MdrpInstance) -> None:
    """Every order has a restaurant and is ready no earlier than placed; ids are unique."""
    assert small.n_orders == len(set(small.order_id)) > 0
    assert (small.ready_min >= small.placement_min).all()
    assert (small.order_restaurant >= 0).all()
    assert (small.off_min >= small.on_min).all()
    assert small.params.pickup_service_min == 4 and small.params.dropoff_service_min == 4


def test_travel_minutes_round_up(small: MdrpInstance) -> None:
    """Travel time is ceil(euclidean distance / meters_per_minute)."""
    mpm = small.params.meters_per_minute
    a = np.array([[0.0, 0.0]])
    assert small.travel_min(a, np.array([[mpm, 0.0]]))[0] == 1
    assert small.travel_min(a, np.array([[mpm + 1.0, 0.0]]))[0] == 2
    assert small.travel_min(a, a)[0] == 0


def test_find_instances_accepts_an_instance_or_a_parent(small_dir: Path) -> None:
    """A path is an instance directory or a parent of instance directories."""
    assert find_instances([small_dir]) == [small_dir]
    assert small_dir in find_instances([small_dir.parent])


def test_missing_path_is_a_format_error(tmp_path: Path) -> None:
    """Paths that hold no instance raise MdrpFormatError."""
    with pytest.raises(MdrpFormatError):
        find_instances([tmp_path / "nope"])
    with pytest.raises(MdrpFormatError):
        find_instances([tmp_path])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "orders.txt",
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t1\t2\t5\tr_missing\t9\n",
        ),
        (
            "orders.txt",
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t1\t2\tfive\tr1\t9\n",
        ),
        ("orders.txt", "oops\n"),
        ("couriers.txt", "courier\tx\ty\ton_time\toff_time\nc1\t0\t0\t50\t10\n"),
        ("instance_parameters.txt", "a\tb\n320\t4\n"),
    ],
)
def test_malformed_files_raise_format_errors(
    small_dir: Path, tmp_path: Path, name: str, text: str
) -> None:
    """Unknown restaurants, non-numbers, bad headers and bad rows raise MdrpFormatError."""
    copy = tmp_path / "inst"
    shutil.copytree(small_dir, copy)
    (copy / name).write_text(text)
    with pytest.raises(MdrpFormatError):
        load_instance(copy)
