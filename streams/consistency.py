"""`dispatchflow check`: the decision invariants, checked over what is on the topics now."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from contracts.dead_letters import header_value
from contracts.rejections import EventRejected
from contracts.topics import load_topics
from contracts.tracing import TRACEPARENT_HEADER
from contracts.validation import validate_schema
from dispatch.live.invariants import InvariantReport, check_invariants
from streams.reading import TopicRecord, read_topics

#: Topics the invariants are checked over.
CHECKED_TOPICS = (
    "order_events",
    "delivery_events",
    "courier_events",
    "assignment_committed",
    "assignment_released",
)


@dataclass
class UsableEvents:
    """The events of some records that the invariants can be checked over, and what was not.

    Attributes:
        events: decoded events, each valid against the schema of its type and of a type its
            topic carries.
        traceparents: each event's `traceparent` header by its `event_id` (None: no header).
        skipped_records: records that are not such an event, by topic (the worker dead-letters
            them, so they took no part in any decision).
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    traceparents: dict[str, str | None] = field(default_factory=dict)
    skipped_records: Counter[str] = field(default_factory=Counter)


@dataclass
class TopicsCheck(InvariantReport):
    """An invariant report over topics, with the records skipped by topic."""

    skipped_records: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The invariant summary plus `skipped_records` (topic → count), JSON-able."""
        return {**super().summary(), "skipped_records": dict(sorted(self.skipped_records.items()))}


def accepted_types(topics: Iterable[str] = CHECKED_TOPICS) -> dict[str, frozenset[str]]:
    """The event types each of `topics` carries, from topics.yaml."""
    declared = load_topics()
    return {name: frozenset(declared[name].value_schemas) for name in topics}


def usable_events(
    records: Iterable[TopicRecord], accepted: Mapping[str, frozenset[str]]
) -> UsableEvents:
    """Decode `records`; keep the schema-valid events of accepted types, count the others.

    Never raises for a record's content: a null or non-JSON value, a value that is not an
    object, an unknown type, a type its topic does not carry, or anything the type's schema
    refuses (a string `ts_ms`, a missing field) is counted in `skipped_records` under its topic.
    """
    out = UsableEvents()
    for record in records:
        try:
            event = validate_schema(orjson.loads(record.value or b""), accepted.get(record.topic))
        except (orjson.JSONDecodeError, EventRejected):
            out.skipped_records[record.topic] += 1
            continue
        out.events.append(event)
        traceparent = header_value(record.headers, TRACEPARENT_HEADER)
        out.traceparents.setdefault(str(event["event_id"]), traceparent)
    return out


async def check_topics(
    client_kwargs: Mapping[str, Any], *, require_terminal: bool = False
) -> TopicsCheck:
    """Read every record of the checked topics and check the invariants over them.

    Records that are not usable events are skipped and counted by topic (`usable_events`). The
    records' `traceparent` headers are checked too: each commit continues one of its orders'
    traces.
    """
    records = await read_topics(client_kwargs, CHECKED_TOPICS)
    usable = usable_events(records, accepted_types())
    report = check_invariants(
        usable.events, require_terminal=require_terminal, traceparents=usable.traceparents
    )
    values = {f.name: getattr(report, f.name) for f in fields(report)}
    return TopicsCheck(**values, skipped_records=dict(usable.skipped_records))
