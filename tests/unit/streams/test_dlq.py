from __future__ import annotations

import pytest

from contracts.dead_letters import DeadLetter, DeadLetterLimits, DeadLetterRecord
from streams.dlq import (
    Letter,
    LetterFilter,
    Refusal,
    dlq_topic_of,
    original_headers,
    plan_replay,
)
from streams.reading import TopicRecord

SOURCE_HEADERS = (
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("dlq.reason", b"set upstream"),
    ("original.note", b"also upstream"),
    ("tenant", b"eu"),
)


def as_read(record: DeadLetterRecord, offset: int = 5, timestamp_ms: int = 1_000) -> TopicRecord:
    """A produced dead letter as `read_topics` returns it."""
    return TopicRecord(
        record.topic,
        record.partition,
        offset,
        record.key,
        record.value,
        tuple(record.headers),
        timestamp_ms,
    )


def letter(
    value: bytes | None = b'{"type": "order_created"}',
    *,
    index: int | None = None,
    limits: DeadLetterLimits | None = None,
    source_offset: int = 17,
    reason: str = "schema_invalid",
) -> Letter:
    """A dead letter of an order_events record (partition 3) built as the worker builds it."""
    dead = DeadLetter(
        source_topic="order_events",
        source_partition=3,
        source_offset=source_offset,
        key=b"dr5r",
        value=value,
        reason=reason,
        message="'event_id' is a required property",
        index=index,
        headers=SOURCE_HEADERS,
    )
    return Letter.from_record(as_read(dead.record(limits)))


def test_the_source_position_and_reason_are_read_from_the_headers() -> None:
    """A letter names its source topic, partition, offset and its reason."""
    read = letter()
    said = read.dlq
    assert (said.source_topic, said.source_partition, said.source_offset) == ("order_events", 3, 17)
    assert said.reason == "schema_invalid"
    assert read.dlq_topic == "order_events_dlq"


def test_original_headers_undo_what_the_dead_letter_added() -> None:
    """dlq.* headers go; clashing source headers get their own names back, in order."""
    assert original_headers(letter().headers) == list(SOURCE_HEADERS)


def test_a_whole_record_can_be_replayed() -> None:
    """A letter that holds its whole source record has no refusal."""
    assert letter().refusal() is None


def test_a_null_value_can_be_replayed() -> None:
    """A dead-lettered tombstone is still the whole record."""
    assert letter(None).refusal() is None


def test_a_truncated_letter_is_refused() -> None:
    """A value cut to fit is not the source record."""
    cut = letter(b"x" * 100, limits=DeadLetterLimits(max_value_bytes=10))
    assert cut.refusal() is Refusal.TRUNCATED


def test_a_per_fix_letter_is_refused() -> None:
    """One fix of a ping batch is not the source record."""
    assert letter(b'{"lat": 91}', index=4).refusal() is Refusal.PER_FIX


def test_a_record_without_dead_letter_headers_is_refused() -> None:
    """A record on a dead-letter topic that names no source cannot be replayed."""
    stray = Letter.from_record(TopicRecord("order_events_dlq", 0, 0, None, b"x", (), 0))
    assert stray.refusal() is Refusal.NO_SOURCE


def test_a_replay_plan_counts_refusals_by_reason() -> None:
    """Replayable letters are kept in order; refused ones are counted per reason."""
    good, fix = letter(source_offset=1), letter(b"{}", index=0)
    cut = letter(b"y" * 50, limits=DeadLetterLimits(max_value_bytes=8))
    plan = plan_replay([good, fix, cut, fix])
    assert plan.replay == (good,)
    assert plan.refused == {Refusal.PER_FIX: 2, Refusal.TRUNCATED: 1}


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (LetterFilter(), [10, 20, 30]),
        (LetterFilter(offset_from=20), [20, 30]),
        (LetterFilter(offset_to=20), [10, 20]),
        (LetterFilter(offset_from=15, offset_to=25), [20]),
        (LetterFilter(partition=4), []),
        (LetterFilter(reason="unknown_id"), [30]),
    ],
    ids=["all", "from", "to", "range", "partition", "reason"],
)
def test_filters_select_by_source_offset_partition_and_reason(
    chosen: LetterFilter, expected: list[int]
) -> None:
    """Offset bounds are inclusive source offsets; partition and reason must match exactly."""
    letters = [
        letter(source_offset=10),
        letter(source_offset=20),
        letter(source_offset=30, reason="unknown_id"),
    ]
    assert [x.dlq.source_offset for x in letters if chosen.matches(x)] == expected


def test_an_inverted_offset_range_is_refused() -> None:
    """`offset_from` after `offset_to` is an error, not an empty selection."""
    with pytest.raises(ValueError, match="offset_from"):
        LetterFilter(offset_from=9, offset_to=3)


def test_the_preview_is_one_short_line() -> None:
    """The value preview is cut and keeps to one line."""
    preview = letter(b'{"a":\n' + b"1" * 500 + b"}").preview(chars=20)
    assert len(preview) == 20 and "\n" not in preview


@pytest.mark.parametrize("topic", ["order_events", "order_events_dlq"])
def test_a_topic_names_its_dead_letter_topic_either_way(topic: str) -> None:
    """The source name and the _dlq name both mean the dead-letter topic."""
    assert dlq_topic_of(topic) == "order_events_dlq"
