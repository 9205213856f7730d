from dataclasses import dataclass

import numpy as np
import pytest

from contracts.columns import take_rows


@dataclass(frozen=True)
class Table:
    """Ids, a value column and a field that is no column."""

    ids: tuple[str, ...]
    value: np.ndarray
    stride: int


TABLE = Table(("a", "b", "c"), np.array([1.0, 2.0, 3.0]), 7)


@pytest.mark.parametrize(
    ("index", "ids"),
    [
        (np.array([2, 0]), ("c", "a")),
        (np.array([True, False, True]), ("a", "c")),
        (np.array([], dtype=np.int64), ()),
    ],
    ids=["positions", "mask", "none"],
)
def test_every_column_keeps_the_same_rows_and_other_fields_stay(
    index: np.ndarray, ids: tuple[str, ...]
) -> None:
    """Ids and arrays are indexed alike (positions in their order, or a mask); the rest is kept."""
    taken = take_rows(TABLE, index)
    assert taken.ids == ids
    assert taken.value.tolist() == [{"a": 1.0, "b": 2.0, "c": 3.0}[i] for i in ids]
    assert taken.stride == 7
