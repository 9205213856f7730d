"""Ingress validation: bytes off a topic → a schema-valid event, or a rejection with a reason.

Stateless checks only (decoding, schema, key, event-time skew). Checks that need state (unknown
ids, duplicates, invalid transitions) raise the same `EventRejected` from the state machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from contracts.geo import shard_of
from contracts.limits import DecodeLimits, bounded_loads, check_record_size
from contracts.rejections import EventRejected, RejectReason
from contracts.schemas import compiled_validator

Event = dict[str, Any]


@dataclass(frozen=True)
class TopicRule:
    """What one input topic accepts: event types and what its record key must equal."""

    event_types: frozenset[str]
    key_field: str | None  # event field the record key must equal; None: any key


@dataclass(frozen=True)
class TimeBounds:
    """Allowed skew between an event's `ts_ms` and its record timestamp."""

    max_age_ms: int
    max_lead_ms: int

    def check(self, ts_ms: int, record_ts_ms: int | None, what: str = "ts_ms") -> None:
        """Raise `EventRejected` when `ts_ms` is too far before or after `record_ts_ms`."""
        if record_ts_ms is None or record_ts_ms < 0:
            return
        if ts_ms < record_ts_ms - self.max_age_ms:
            msg = f"{what}={ts_ms} is {(record_ts_ms - ts_ms) / 1000:.0f} s before record time"
            raise EventRejected(RejectReason.TIMESTAMP_OUT_OF_RANGE, msg)
        if ts_ms > record_ts_ms + self.max_lead_ms:
            msg = f"{what}={ts_ms} is {(ts_ms - record_ts_ms) / 1000:.0f} s after record time"
            raise EventRejected(RejectReason.TIMESTAMP_OUT_OF_RANGE, msg)


def validate_schema(event: Any, allowed_types: frozenset[str] | None = None) -> Event:
    """Check `event` against the schema of its `type`; return it as a dict."""
    if not isinstance(event, dict):
        raise EventRejected(RejectReason.SCHEMA_INVALID, "event is not a JSON object")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise EventRejected(RejectReason.SCHEMA_INVALID, "event has no string `type`")
    if allowed_types is not None and event_type not in allowed_types:
        msg = f"type {event_type!r} is not accepted here (accepted: {sorted(allowed_types)})"
        raise EventRejected(RejectReason.WRONG_TOPIC, msg)
    try:
        validator = compiled_validator(event_type)
    except KeyError as exc:
        raise EventRejected(RejectReason.SCHEMA_INVALID, f"unknown type {event_type!r}") from exc
    try:
        validator(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise EventRejected(RejectReason.SCHEMA_INVALID, str(exc.message)) from exc
    return event


class IngressValidator:
    """Stateless checks of input records, per topic rules; raises `EventRejected`."""

    def __init__(
        self,
        rules: Mapping[str, TopicRule],
        time_bounds: TimeBounds,
        shard_precision: int,
        limits: DecodeLimits | None = None,
    ) -> None:
        self.rules = dict(rules)
        self.time_bounds = time_bounds
        self.shard_precision = shard_precision
        self.limits = limits or DecodeLimits()

    def check(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        record_ts_ms: int | None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> Event:
        """Decode and validate one record of `topic`; return the event or raise EventRejected.

        Record size and header size come first, then bounded parsing (`contracts.limits`), the
        event's schema, its key, its event time against the record time and, for a new order,
        its shard.
        """
        rule = self.rules.get(topic)
        if rule is None:
            msg = f"no ingress rule for topic {topic!r}"
            raise KeyError(msg)
        check_record_size(value, headers, self.limits)
        event = validate_schema(bounded_loads(value, self.limits), rule.event_types)
        if rule.key_field is not None:
            expected = str(event[rule.key_field])
            got = key.decode("utf-8", "replace") if key is not None else None
            if got != expected:
                msg = f"record key {got!r} must equal the event's {rule.key_field} {expected!r}"
                raise EventRejected(RejectReason.WRONG_KEY, msg)
        self.time_bounds.check(event["ts_ms"], record_ts_ms)
        if event["type"] == "order_created":
            pickup = event["pickup"]
            shard = shard_of(pickup["lat"], pickup["lon"], self.shard_precision)
            if event["shard"] != shard:
                msg = f"shard {event['shard']!r} is not the pickup's shard {shard!r}"
                raise EventRejected(RejectReason.WRONG_SHARD, msg)
        return event


def default_rules(topic_types: Mapping[str, Sequence[str]]) -> dict[str, TopicRule]:
    """Ingress rules for the input topics given their accepted event types (from topics.yaml)."""
    key_field = {
        "order_events": "shard",
        "merchant_ready": "shard",
        "delivery_events": "shard",
        "assignment_responses": "shard",
        "dispatch_control": "shard",
        "courier_events": "courier_id",
        "courier_pings": None,
    }
    return {
        topic: TopicRule(frozenset(types), key_field.get(topic))
        for topic, types in topic_types.items()
    }
