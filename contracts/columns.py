"""Tables held as dataclasses of parallel NumPy columns, one row per index."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Table = TypeVar("_Table", bound="DataclassInstance")


def take_rows(table: _Table, index: Any) -> _Table:
    """A copy of the dataclass `table` with every column indexed by `index`.

    Columns are its arrays and its tuples (of ids); `index` is a boolean mask or integer
    positions (rows kept in that order). Other fields (a stride, for instance) are copied as
    they are.
    """
    columns: dict[str, Any] = {}
    for f in dataclasses.fields(table):
        value = getattr(table, f.name)
        if isinstance(value, np.ndarray):
            value = value[index]
        elif isinstance(value, tuple):
            value = tuple(np.asarray(value, dtype=object)[index].tolist())
        columns[f.name] = value
    return dataclasses.replace(table, **columns)
