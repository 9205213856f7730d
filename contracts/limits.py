"""Bounded decoding: the size, depth, string, number and container limits every record meets first.

A record is checked against `DecodeLimits` before any other work is done with it, so that no
input can make a handler allocate, recurse or loop without bound, or produce state or dead
letters larger than the broker takes. Each violation is an ordinary rejection
(`EventRejected`) with its own reason:

* `record_too_large`: the record's value (or its headers) is larger than allowed;
* `too_deep`: JSON nested deeper than `max_depth` (objects and arrays);
* `string_too_long`: a string (or an object key) longer than `max_string_chars`;
* `number_out_of_range`: an integer outside the signed 64-bit range, which no field of any
  contract allows (JSON numbers beyond it would otherwise overflow numeric columns);
* `too_many_items`: an array or object with more entries than `max_items`.

The limits are generous backstops behind the JSON Schemas (which bound each field precisely):
they make the schema check itself, and everything before it, safe.

>>> limits = DecodeLimits()
>>> bounded_loads(b'{"a": [1, 2, {"b": "x"}]}', limits)
{'a': [1, 2, {'b': 'x'}]}
>>> bounded_loads(b"[" * 40 + b"]" * 40, limits)
Traceback (most recent call last):
...
contracts.rejections.EventRejected: JSON nested deeper than 32 levels
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from contracts.rejections import EventRejected, RejectReason

#: Smallest and largest integers any contract field may hold (signed 64-bit).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds on one record, checked before it is parsed further.

    Attributes:
        max_record_bytes: largest record value, in bytes.
        max_header_bytes: largest total size of a record's header names and values, in bytes.
        max_depth: deepest nesting of objects and arrays (the top-level value is depth 1).
        max_string_chars: longest string value or object key, in characters.
        max_items: most entries of one array or object.
    """

    max_record_bytes: int = 16_384
    max_header_bytes: int = 16_384
    max_depth: int = 32
    max_string_chars: int = 4_096
    max_items: int = 10_000

    def __post_init__(self) -> None:
        for name in (
            "max_record_bytes",
            "max_header_bytes",
            "max_depth",
            "max_string_chars",
            "max_items",
        ):
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1"
                raise ValueError(msg)


def check_record_size(
    value: bytes | None, headers: Iterable[tuple[str, bytes | None]], limits: DecodeLimits
) -> None:
    """Raise `EventRejected(RECORD_TOO_LARGE)` if the value or the headers exceed the limits."""
    if value is not None and len(value) > limits.max_record_bytes:
        msg = f"record of {len(value)} bytes exceeds the limit of {limits.max_record_bytes}"
        raise EventRejected(RejectReason.RECORD_TOO_LARGE, msg)
    header_bytes = sum(len(name) + len(raw or b"") for name, raw in headers)
    if header_bytes > limits.max_header_bytes:
        msg = f"headers of {header_bytes} bytes exceed the limit of {limits.max_header_bytes}"
        raise EventRejected(RejectReason.RECORD_TOO_LARGE, msg)


def bounded_loads(value: bytes | None, limits: DecodeLimits, *, skip: str | None = None) -> Any:
    """Parse a record value as JSON within `limits`; raise `EventRejected` otherwise.

    Size first, then parsing (`undecodable`), then the structure of the parsed value (`skip`:
    see `check_bounds`).
    """
    check_record_size(value, (), limits)
    if value is None:
        raise EventRejected(RejectReason.UNDECODABLE, "record has no value")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            msg = f"JSON nested deeper than {limits.max_depth} levels"
            raise EventRejected(RejectReason.TOO_DEEP, msg) from exc
        raise EventRejected(RejectReason.UNDECODABLE, f"not JSON: {exc}") from exc
    check_bounds(parsed, limits, skip=skip)
    return parsed


def check_bounds(value: Any, limits: DecodeLimits, *, skip: str | None = None) -> None:
    """Raise `EventRejected` if parsed JSON `value` breaks a depth, string, number or size limit.

    With `skip`, the array under that key of the top-level object is checked for its length
    only; its items are left to the caller (the ping decoder proves or checks each fix itself,
    so that one bad fix rejects only that fix).
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is str:
            if len(node) > limits.max_string_chars:
                _string_too_long(len(node), limits)
        elif kind is int:
            if not INT64_MIN <= node <= INT64_MAX:
                msg = f"integer {_short(node)} is outside the 64-bit range"
                raise EventRejected(RejectReason.NUMBER_OUT_OF_RANGE, msg)
        elif kind is dict or kind is list:
            if depth > limits.max_depth:
                msg = f"JSON nested deeper than {limits.max_depth} levels"
                raise EventRejected(RejectReason.TOO_DEEP, msg)
            if len(node) > limits.max_items:
                msg = f"{len(node)} entries in one {'object' if kind is dict else 'array'}"
                msg += f" exceed the limit of {limits.max_items}"
                raise EventRejected(RejectReason.TOO_MANY_ITEMS, msg)
            if kind is dict:
                for key, item in node.items():
                    if len(key) > limits.max_string_chars:
                        _string_too_long(len(key), limits)
                    if depth == 1 and key == skip and type(item) is list:
                        if len(item) > limits.max_items:
                            msg = f"{len(item)} entries in {key!r} exceed the limit"
                            msg += f" of {limits.max_items}"
                            raise EventRejected(RejectReason.TOO_MANY_ITEMS, msg)
                        continue
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def _string_too_long(chars: int, limits: DecodeLimits) -> None:
    msg = f"string of {chars} characters exceeds the limit of {limits.max_string_chars}"
    raise EventRejected(RejectReason.STRING_TOO_LONG, msg)


def _short(number: int) -> str:
    text = str(number)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"
