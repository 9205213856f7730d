"""What a live handler asks its caller to do: records to produce and inputs to dead-letter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.rejections import EventRejected
from dispatch.lifecycle import Source


@dataclass(frozen=True)
class Output:
    """A record to produce: an event (JSON) or raw bytes, to `topic` under `key`.

    `partition` is set only when the record must go to a given partition (batched sightings).
    `traceparent` is the W3C trace context header the record carries, if any.
    """

    topic: str
    key: bytes
    value: dict[str, Any] | bytes
    partition: int | None = None
    traceparent: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The event, for JSON outputs."""
        if not isinstance(self.value, dict):
            msg = f"output to {self.topic} is binary"
            raise TypeError(msg)
        return self.value


@dataclass
class Effects:
    """Outputs and rejections of one handled input, in the order they arose.

    `applied` is True when the input itself (an order event or an assignment response) changed
    state for the first time (not a redelivery, not rejected, not parked to wait for its order,
    not an answer to a proposal that is no longer open). `adopted` lists the events that had been
    parked waiting for the order this input created and were accepted with it, in the order
    applied (they were read from the input's partition: orphans are kept in their order's).
    """

    outputs: list[Output] = field(default_factory=list)
    rejections: list[tuple[Source, EventRejected]] = field(default_factory=list)
    applied: bool = False
    adopted: list[dict[str, Any]] = field(default_factory=list)

    def emit(
        self,
        topic: str,
        key: str | bytes,
        value: dict[str, Any] | bytes,
        traceparent: str | None = None,
    ) -> None:
        """Add an output record (with its trace context header, if given)."""
        raw_key = key.encode() if isinstance(key, str) else key
        self.outputs.append(Output(topic, raw_key, value, traceparent=traceparent))

    def reject(self, source: Source, error: EventRejected) -> None:
        """Dead-letter the record at `source` for `error`."""
        self.rejections.append((source, error))

    def extend(self, other: Effects) -> None:
        """Append another handler's effects."""
        self.outputs.extend(other.outputs)
        self.rejections.extend(other.rejections)
