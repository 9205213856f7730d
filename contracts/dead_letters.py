"""Dead-letter records: the original record plus headers that say why and where from.

A dead letter goes to `<source topic>_dlq`, in the source record's partition, with the source's
own key, value and headers, plus these headers (the fields of Kafka Streams' KIP-1034):

| header | value |
| --- | --- |
| `dlq.reason` | the reason (`contracts.rejections.RejectReason`) |
| `dlq.message` | what was wrong, at most `MAX_MESSAGE_CHARS` characters |
| `dlq.exception` | the error's class name (`EventRejected` for a rejection) |
| `dlq.topic`, `dlq.partition`, `dlq.offset` | where the source record was |
| `dlq.index` | for one fix of a ping batch: its index in the batch (the value is that fix) |
| `dlq.truncated` | what was cut to fit (`key`, `value`, `headers`, comma separated), if anything |
| `dlq.original_size` | the uncut value's size in bytes (only when the value was cut) |
| `dlq.sha256` | hex SHA-256 of the uncut value (only when the value was cut) |
| `dlq.value_encoding` | `sanitized` when a fix could not be re-encoded as it was |

Building a dead letter never fails: a value larger than `DeadLetterLimits.max_value_bytes` is cut
to that size, so a dead letter always fits under the producer's request size whatever arrived; a
source header whose name clashes with ours is kept under `original.<name>`; source headers
beyond `max_header_bytes` are dropped (and `dlq.truncated` says so); a fix that JSON cannot encode
(nested too deep) is sent as a sanitized copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

#: Header names on every dead-letter record.
REASON_HEADER = "dlq.reason"
MESSAGE_HEADER = "dlq.message"
EXCEPTION_HEADER = "dlq.exception"
TOPIC_HEADER = "dlq.topic"
PARTITION_HEADER = "dlq.partition"
OFFSET_HEADER = "dlq.offset"
INDEX_HEADER = "dlq.index"
TRUNCATED_HEADER = "dlq.truncated"
ORIGINAL_SIZE_HEADER = "dlq.original_size"
SHA256_HEADER = "dlq.sha256"
VALUE_ENCODING_HEADER = "dlq.value_encoding"
#: Prefix of a source header whose name clashes with one of ours.
CLASH_PREFIX = "original."
MAX_MESSAGE_CHARS = 1000
#: Depth at which a fix that JSON cannot encode is cut when it is sanitized.
_SANITIZE_DEPTH = 16

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetterLimits:
    """Sizes a dead letter is cut to (bytes); together far below a producer's 1 MiB request.

    Attributes:
        max_value_bytes: largest value copied; a longer one is cut to this size.
        max_key_bytes: largest key copied; a longer one is cut to this size.
        max_header_bytes: largest total of source header names and values copied.
    """

    max_value_bytes: int = 262_144
    max_key_bytes: int = 4_096
    max_header_bytes: int = 16_384

    def __post_init__(self) -> None:
        for name in ("max_value_bytes", "max_key_bytes", "max_header_bytes"):
            if getattr(self, name) < 0:
                msg = f"{name} must be >= 0"
                raise ValueError(msg)


@dataclass(frozen=True)
class DeadLetter:
    """One record for `<source topic>_dlq`: the failure, and the source record as it was.

    `value` is the source record's value, or for one fix of a ping batch (`index` set) the
    fix itself (encode it with `encode_fix`). `headers` are the source record's headers.
    """

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    message: str
    exception: str = "EventRejected"
    index: int | None = None
    headers: Headers = ()
    value_encoding: str | None = None

    @property
    def topic(self) -> str:
        """The dead-letter topic of the source."""
        return f"{self.source_topic}_dlq"

    def record(self, limits: DeadLetterLimits | None = None) -> DeadLetterRecord:
        """The record to produce: key, value and headers cut to `limits`. Never raises."""
        limits = limits or DeadLetterLimits()
        truncated: list[str] = []
        key = self.key
        if key is not None and len(key) > limits.max_key_bytes:
            key = key[: limits.max_key_bytes]
            truncated.append("key")
        value = self.value
        cut: list[tuple[str, bytes]] = []
        if value is not None and len(value) > limits.max_value_bytes:
            cut = [
                (ORIGINAL_SIZE_HEADER, str(len(value)).encode()),
                (SHA256_HEADER, hashlib.sha256(value).hexdigest().encode()),
            ]
            value = value[: limits.max_value_bytes]
            truncated.append("value")
        source_headers = _renamed(self.headers)
        if sum(len(k) + len(v) for k, v in source_headers) > limits.max_header_bytes:
            source_headers = []
            truncated.append("headers")
        headers = [
            (REASON_HEADER, self.reason.encode("utf-8", "replace")),
            (MESSAGE_HEADER, self.message[:MAX_MESSAGE_CHARS].encode("utf-8", "replace")),
            (EXCEPTION_HEADER, self.exception[:200].encode("utf-8", "replace")),
            (TOPIC_HEADER, self.source_topic.encode()),
            (PARTITION_HEADER, str(self.source_partition).encode()),
            (OFFSET_HEADER, str(self.source_offset).encode()),
        ]
        if self.index is not None:
            headers.append((INDEX_HEADER, str(self.index).encode()))
        if self.value_encoding is not None:
            headers.append((VALUE_ENCODING_HEADER, self.value_encoding.encode()))
        if truncated:
            headers.append((TRUNCATED_HEADER, ",".join(truncated).encode()))
        headers.extend(cut)
        headers.extend(source_headers)
        return DeadLetterRecord(self.topic, self.source_partition, key, value, headers)


@dataclass(frozen=True)
class DeadLetterRecord:
    """A dead letter ready to produce."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def _renamed(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """Source headers, those clashing with ours (`dlq.*`, `original.*`) under `original.`."""
    out = []
    for name, value in headers:
        clash = name.startswith(("dlq.", CLASH_PREFIX))
        out.append((f"{CLASH_PREFIX}{name}" if clash else name, bytes(value or b"")))
    return out


def encode_fix(fix: Any) -> tuple[bytes, str | None]:
    """A rejected fix as JSON bytes, and `sanitized` if it had to change to encode; never raises.

    A fix JSON cannot encode as it is (nested deeper than the encoder allows) is sanitized:
    nesting below `_SANITIZE_DEPTH` levels becomes the string `"..."`, anything that is not
    JSON becomes its type name.
    """
    try:
        return orjson.dumps(fix), None
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return orjson.dumps(_sanitized(fix)), "sanitized"
    except (TypeError, orjson.JSONEncodeError):  # pragma: no cover - _sanitized is JSON-safe
        return orjson.dumps(type(fix).__name__), "sanitized"


def _sanitized(value: Any) -> Any:
    """A JSON-safe copy of `value`, built without recursion."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any] | dict[str, Any], int | str, int]] = [(value, root, 0, 0)]
    while stack:
        node, parent, slot, depth = stack.pop()
        if depth >= _SANITIZE_DEPTH and isinstance(node, dict | list):
            copy: Any = "..."
        elif isinstance(node, dict):
            copy = {}
            stack.extend((v, copy, str(k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            copy = [None] * len(node)
            stack.extend((v, copy, i, depth + 1) for i, v in enumerate(node))
        elif node is None or isinstance(node, bool | str | float):
            copy = node
        elif isinstance(node, int):
            copy = node if -(2**63) <= node < 2**64 else str(node)
        else:
            copy = type(node).__name__
        parent[slot] = copy  # type: ignore[index]
    return root[0]


@dataclass(frozen=True)
class LetterHeaders:
    """What a dead letter's own headers say; None where one is missing or not a number."""

    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    reason: str | None
    message: str | None
    exception: str | None
    index: int | None
    truncated: str | None

    @classmethod
    def parse(cls, headers: object) -> LetterHeaders:
        """Read the `dlq.*` headers of a dead-letter record. Never raises."""
        return cls(
            source_topic=header_value(headers, TOPIC_HEADER),
            source_partition=_int_or_none(header_value(headers, PARTITION_HEADER)),
            source_offset=_int_or_none(header_value(headers, OFFSET_HEADER)),
            reason=header_value(headers, REASON_HEADER),
            message=header_value(headers, MESSAGE_HEADER),
            exception=header_value(headers, EXCEPTION_HEADER),
            index=_int_or_none(header_value(headers, INDEX_HEADER)),
            truncated=header_value(headers, TRUNCATED_HEADER),
        )

    @property
    def place(self) -> tuple[str | None, int | None, int | None, int | None]:
        """What the letter refuses: source topic, partition, offset and index in a batch."""
        return (self.source_topic, self.source_partition, self.source_offset, self.index)


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def header_value(headers: object, name: str) -> str | None:
    """The decoded value of header `name` from a Kafka header list or mapping."""
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items or ():  # type: ignore[attr-defined]
        if key == name:
            return bytes(value).decode("utf-8", "replace") if value is not None else None
    return None
