"""Typed key-value views over byte mappings (a Faust RocksDB table, an Rdict, or a dict).

A view turns the mapping's failures into `StateError`: a store that cannot be read or written
means the worker's state is unusable, and the worker must stop (see `dispatch.live.worker`).
A value too large for one table record (`StateValueTooLarge`) is refused before it is written:
that is the fault of the record being handled, not of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

T = TypeVar("T")

#: Largest encoded value written to a table (a changelog record must stay below the producer's
#: 1 MiB request size, key and headers included).
MAX_VALUE_BYTES = 900_000


class StateError(Exception):
    """A state store could not be read or written: the worker's state is unusable."""


class StateValueTooLarge(ValueError):
    """A value is larger than one table record may be; it was not written."""


class KV(Generic[T]):
    """Values of type `T` under string keys, stored as bytes in `mapping`.

    Writes go straight to the mapping (for a Faust table: a changelog record), so callers write
    each changed value once per event.
    """

    def __init__(
        self,
        mapping: MutableMapping[bytes, bytes],
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        self._mapping = mapping
        self._encode = encode
        self._decode = decode
        self.max_value_bytes = max_value_bytes

    def get(self, key: str) -> T | None:
        """The value under `key`, or None."""
        try:
            raw = self._mapping.get(key.encode())
        except Exception as exc:
            raise StateError(f"cannot read {key!r}: {type(exc).__name__}: {exc}") from exc
        return self._decoded(key, raw) if raw is not None else None

    def _decoded(self, key: str, raw: bytes) -> T:
        try:
            return self._decode(raw)
        except Exception as exc:
            raise StateError(f"stored value of {key!r} is unreadable: {exc}") from exc

    def put(self, key: str, value: T) -> None:
        """Store `value` under `key`; `StateValueTooLarge` if it cannot fit one record."""
        raw = self._encode(value)
        if len(raw) > self.max_value_bytes:
            msg = f"value of {key[:80]!r} is {len(raw)} bytes (limit {self.max_value_bytes})"
            raise StateValueTooLarge(msg)
        try:
            self._mapping[key.encode()] = raw
        except Exception as exc:
            raise StateError(f"cannot write {key!r}: {type(exc).__name__}: {exc}") from exc

    def delete(self, key: str) -> None:
        """Remove `key` if present."""
        raw_key = key.encode()
        try:
            if raw_key in self._mapping:
                del self._mapping[raw_key]
        except Exception as exc:
            raise StateError(f"cannot delete {key!r}: {type(exc).__name__}: {exc}") from exc

    def items(self) -> Iterator[tuple[str, T]]:
        """Every (key, value), in the mapping's order."""
        try:
            pairs = list(self._mapping.items())
        except Exception as exc:
            raise StateError(f"cannot read the store: {type(exc).__name__}: {exc}") from exc
        for raw_key, raw in pairs:
            key = raw_key.decode()
            yield key, self._decoded(key, raw)

    def __contains__(self, key: str) -> bool:
        return key.encode() in self._mapping
