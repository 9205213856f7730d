"""W3C trace context (`traceparent`) on Kafka records: parse, continue, start.

Upstream apps may put a `traceparent` header (W3C Trace Context, version `00`) on the records
they produce. The workers carry an order's trace through its whole dispatch: every record the
shard engine writes about the order (`assignment_proposed`, `assignment_committed`,
`assignment_released`, `order_expired`, `eta_updates`) has a `traceparent` with the trace id of
the order's `order_created` record and a parent id of its own. A record about several orders (a
bundle) continues the trace of the first order it assigns or releases.

Span ids are derived from the trace id and the emitted event's id, so a replay of the same
input writes the same headers. An order that arrived without a valid header gets a trace id
derived from its order id, not sampled (flags `00`), so its records still share one trace id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

#: The Kafka header that carries the trace context.
TRACEPARENT_HEADER: Final = "traceparent"

_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# A later version may append fields after the flags; its first four fields read like version 00.
_LATER_VERSION = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class TraceContextError(ValueError):
    """A `traceparent` value that is not a valid W3C trace context."""


@dataclass(frozen=True)
class TraceContext:
    """One W3C trace context: a trace, the span that wrote the record, and the trace flags.

    Attributes:
        trace_id: 32 lowercase hex digits, not all zero.
        parent_id: 16 lowercase hex digits, not all zero: the span that produced the record.
        flags: 2 lowercase hex digits (`01` = sampled).
    """

    trace_id: str
    parent_id: str
    flags: str

    @property
    def header(self) -> str:
        """The `traceparent` header value (version `00`)."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def parse_traceparent(value: bytes | str) -> TraceContext:
    """The trace context of a `traceparent` header value.

    Version `00` must match exactly; a later version is read by its first four fields, as the
    specification asks.

    Raises:
        TraceContextError: the value is malformed, version `ff`, or has an all-zero id.
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if text.startswith("00-"):
        match = _VERSION_00.fullmatch(text)
        fields = match.groups() if match else None
    else:
        later = _LATER_VERSION.fullmatch(text)
        fields = later.groups()[1:4] if later and later.group(1) != "ff" else None
    if fields is None:
        raise TraceContextError(f"not a W3C traceparent: {text[:80]!r}")
    trace_id, parent_id, flags = fields
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        raise TraceContextError(f"traceparent with an all-zero id: {text[:80]!r}")
    return TraceContext(trace_id, parent_id, flags)


def valid_traceparent(value: bytes | str | None) -> str | None:
    """The header value (version `00` form) if `value` is a valid trace context, else None."""
    if value is None:
        return None
    try:
        return parse_traceparent(value).header
    except TraceContextError:
        return None


def _hex(seed: str, n_bytes: int) -> str:
    digest = hashlib.blake2b(seed.encode(), digest_size=n_bytes).hexdigest()
    return digest if int(digest, 16) else "0" * (2 * n_bytes - 1) + "1"


def continue_trace(parent: TraceContext, event_id: str) -> TraceContext:
    """The context of a record written by the span handling `event_id`, in `parent`'s trace.

    Same trace id and flags; the parent id is derived from the trace id and `event_id`.
    """
    return TraceContext(parent.trace_id, _hex(f"{parent.trace_id}|{event_id}", 8), parent.flags)


def start_trace(seed: str, sampled: bool = False) -> TraceContext:
    """A new trace whose ids are derived from `seed` (e.g. an order id); unsampled by default."""
    trace_id = _hex(f"trace|{seed}", 16)
    return TraceContext(trace_id, _hex(f"{trace_id}|{seed}", 8), "01" if sampled else "00")


def trace_header_for(traceparent: str | None, seed: str, event_id: str) -> str:
    """The `traceparent` of a record caused by an entity whose trace is `traceparent`.

    Args:
        traceparent: the entity's stored trace context, or None.
        seed: what a new trace is derived from when there is none or it is malformed (the
            entity's id).
        event_id: the id of the event the header goes on.
    """
    return continue_trace(entity_trace(traceparent, seed), event_id).header


def entity_trace(traceparent: str | None, seed: str) -> TraceContext:
    """The trace an entity's records continue: its stored context, or one derived from `seed`.

    Args:
        traceparent: the entity's stored trace context, or None.
        seed: what the trace is derived from when there is none or it is malformed (the
            entity's id).
    """
    try:
        return parse_traceparent(traceparent) if traceparent is not None else start_trace(seed)
    except TraceContextError:
        return start_trace(seed)
