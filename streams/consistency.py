"""`dispatchflow check`: the decision invariants, checked over what is on the topics now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from contracts.dead_letters import header_value
from contracts.tracing import TRACEPARENT_HEADER
from dispatch.live.invariants import InvariantReport, check_invariants
from streams.reading import read_topics

#: Topics the invariants are checked over.
CHECKED_TOPICS = (
    "order_events",
    "delivery_events",
    "courier_events",
    "assignment_committed",
    "assignment_released",
)


async def check_topics(
    client_kwargs: Mapping[str, Any], *, require_terminal: bool = False
) -> InvariantReport:
    """Read every record of the checked topics and check the invariants over them.

    Records that are not JSON objects are skipped: the worker dead-lettered them. The records'
    `traceparent` headers are checked too: each commit continues one of its orders' traces.
    """
    events = []
    traceparents: dict[str, str | None] = {}
    for record in await read_topics(client_kwargs, CHECKED_TOPICS):
        try:
            event = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and "type" in event and "ts_ms" in event:
            events.append(event)
            if "event_id" in event:
                traceparent = header_value(record.headers, TRACEPARENT_HEADER)
                traceparents.setdefault(str(event["event_id"]), traceparent)
    return check_invariants(events, require_terminal=require_terminal, traceparents=traceparents)
