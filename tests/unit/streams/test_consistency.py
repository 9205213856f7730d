from __future__ import annotations

import orjson

from streams.consistency import accepted_types, usable_events
from streams.reading import TopicRecord

T0_MS = 1_795_000_000_000


def record(topic: str, value: bytes | None, offset: int = 0) -> TopicRecord:
    """A record of `topic` as `read_topics` returns it."""
    return TopicRecord(topic, 0, offset, b"k", value, (), T0_MS)


def capacity(courier_id: str, capacity: object, ts_ms: object = T0_MS) -> bytes:
    """A courier_capacity event with the given fields, however wrong."""
    return orjson.dumps(
        {
            "event_id": f"cap-{courier_id}",
            "type": "courier_capacity",
            "v": 1,
            "ts_ms": ts_ms,
            "courier_id": courier_id,
            "capacity": capacity,
        }
    )


def test_a_string_timestamp_is_skipped_and_counted_under_its_topic() -> None:
    """`ts_ms: "yesterday"` (what crashed the check) is a skipped record, not an error."""
    usable = usable_events(
        [record("courier_events", capacity("c1", 2, ts_ms="yesterday"))], accepted_types()
    )
    assert usable.events == []
    assert usable.skipped_records == {"courier_events": 1}


def test_valid_events_are_kept_with_their_trace_headers() -> None:
    """A schema-valid event of a type its topic carries is kept; its traceparent is noted."""
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    valid = TopicRecord(
        "courier_events", 0, 0, b"c1", capacity("c1", 2), (("traceparent", header.encode()),), 0
    )
    usable = usable_events([valid], accepted_types())
    assert [e["courier_id"] for e in usable.events] == ["c1"]
    assert usable.traceparents == {"cap-c1": header}


def test_records_that_are_not_events_are_counted_by_topic() -> None:
    """Null, non-JSON, non-object and wrong-topic values are skipped, per topic."""
    records = [
        record("order_events", None),
        record("order_events", b"{not json"),
        record("delivery_events", b"[1, 2]"),
        record("assignment_committed", capacity("c1", 2)),
    ]
    usable = usable_events(records, accepted_types())
    assert usable.events == []
    assert usable.skipped_records == {
        "order_events": 2,
        "delivery_events": 1,
        "assignment_committed": 1,
    }


def test_a_field_of_the_wrong_type_is_skipped() -> None:
    """A capacity that is not an integer never reaches the invariant checker."""
    usable = usable_events([record("courier_events", capacity("c1", "two"))], accepted_types())
    assert usable.skipped_records == {"courier_events": 1}
