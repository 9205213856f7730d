"""How the simulator talks to a dispatcher: records in event time, outputs back.

The simulator speaks only through the event contracts (`contracts/schemas`). A `Dispatch` is
anything that can take a batch of input records up to an event time and return what it
produced: the core in-process, or the full worker through Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SimRecord:
    """One record of a topic: its key and its decoded, schema-valid event.

    Attributes:
        topic: topic name as in `topics.yaml`.
        key: record key bytes (shard, courier id or gateway id, as `topics.yaml` says).
        event: the decoded event; `event["ts_ms"]` is its event time.
        traceparent: the record's W3C trace context header (`contracts.tracing`), if any.
    """

    topic: str
    key: bytes | None
    event: dict[str, Any]
    traceparent: str | None = None

    @property
    def ts_ms(self) -> int:
        """The event time of the record's event."""
        return int(self.event["ts_ms"])


class Dispatch(Protocol):
    """A dispatcher driven in event time by the simulator."""

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """Deliver `inputs`, let the dispatcher process them, and return what it produced.

        `inputs` are event-time ordered, every ts_ms <= until_ts_ms, the shards' ticks at
        until_ts_ms last. Returns every output record (assignment_proposed /
        assignment_committed / assignment_released / order_expired / eta_update /
        surge_update ...) the dispatcher produced in response, in the order produced.
        """
        ...
