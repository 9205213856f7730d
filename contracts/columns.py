"""Tables held as dataclasses of parallel NumPy columns, one row per index."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Table = TypeVar("_Table", bound="DataclassInstance")


@functools.cache
def _field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def take_rows(table: _Table, index: Any) -> _Table:
    """A new table of the dataclass type of `table` with every column indexed by `index`.

    Columns are its arrays and its tuples (of ids); `index` is a boolean mask or integer
    positions (rows kept in that order). Other fields (a stride, for instance) are copied as
    they are. Every field must be an `__init__` argument.
    """
    columns: dict[str, Any] = {}
    for name in _field_names(type(table)):
        value = getattr(table, name)
        if isinstance(value, np.ndarray):
            value = value[index]
        elif isinstance(value, tuple):
            value = tuple(np.asarray(value, dtype=object)[index].tolist())
        columns[name] = value
    return type(table)(**columns)
