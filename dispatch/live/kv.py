"""Typed key-value views over byte mappings (a Faust RocksDB table, an Rdict, or a dict)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Generic, TypeVar

T = TypeVar("T")


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
    ) -> None:
        self._mapping = mapping
        self._encode = encode
        self._decode = decode

    def get(self, key: str) -> T | None:
        """The value under `key`, or None."""
        raw = self._mapping.get(key.encode())
        return self._decode(raw) if raw is not None else None

    def put(self, key: str, value: T) -> None:
        """Store `value` under `key`."""
        self._mapping[key.encode()] = self._encode(value)

    def delete(self, key: str) -> None:
        """Remove `key` if present."""
        raw_key = key.encode()
        if raw_key in self._mapping:
            del self._mapping[raw_key]

    def items(self) -> Iterator[tuple[str, T]]:
        """Every (key, value), in the mapping's order."""
        for raw_key, raw in list(self._mapping.items()):
            yield raw_key.decode(), self._decode(raw)

    def __contains__(self, key: str) -> bool:
        return key.encode() in self._mapping
