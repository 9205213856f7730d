"""Dead-letter records: the original key and value plus headers that say why and where from."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.tracing import TRACEPARENT_HEADER

#: Header names on every dead-letter record.
REASON_HEADER = "dlq.reason"
MESSAGE_HEADER = "dlq.message"
EXCEPTION_HEADER = "dlq.exception"
TOPIC_HEADER = "dlq.topic"
PARTITION_HEADER = "dlq.partition"
OFFSET_HEADER = "dlq.offset"
INDEX_HEADER = "dlq.index"
MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True)
class DeadLetter:
    """One record for `<source topic>_dlq`."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    message: str
    exception: str = "EventRejected"
    index: int | None = None  # position of the fix inside a ping batch
    traceparent: bytes | None = None  # the source record's trace context header, as it was

    @property
    def topic(self) -> str:
        """The dead-letter topic of the source."""
        return f"{self.source_topic}_dlq"

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the failure."""
        headers = [
            (REASON_HEADER, self.reason.encode()),
            (MESSAGE_HEADER, self.message[:MAX_MESSAGE_CHARS].encode("utf-8", "replace")),
            (EXCEPTION_HEADER, self.exception.encode()),
            (TOPIC_HEADER, self.source_topic.encode()),
            (PARTITION_HEADER, str(self.source_partition).encode()),
            (OFFSET_HEADER, str(self.source_offset).encode()),
        ]
        if self.index is not None:
            headers.append((INDEX_HEADER, str(self.index).encode()))
        if self.traceparent is not None:
            headers.append((TRACEPARENT_HEADER, self.traceparent))
        return headers


def header_value(headers: object, name: str) -> str | None:
    """The decoded value of header `name` from a Kafka header list or mapping."""
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items or ():  # type: ignore[attr-defined]
        if key == name:
            return bytes(value).decode("utf-8", "replace") if value is not None else None
    return None
