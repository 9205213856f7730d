"""Tables held as dataclasses of parallel NumPy columns, one row per index."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Table = TypeVar("_Table", bound="DataclassInstance")


def take_rows(table: _Table, index: Any) -> _Table:
    """A copy of the dataclass `table` with every array column indexed by `index`.

    `index` is a boolean mask or integer positions (rows kept in that order); fields that are
    no array (a stride, for instance) are copied as they are.
    """
    columns: dict[str, Any] = {}
    for f in dataclasses.fields(table):
        value = getattr(table, f.name)
        columns[f.name] = value[index] if isinstance(value, np.ndarray) else value
    return dataclasses.replace(table, **columns)
