from contracts.tracing import TRACEPARENT_HEADER
from streams.dead_letters import (
    INDEX_HEADER,
    MAX_MESSAGE_CHARS,
    OFFSET_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
    DeadLetter,
    header_value,
)


def letter(**overrides: object) -> DeadLetter:
    """A dead letter from order_events[3]@42."""
    values: dict[str, object] = {
        "source_topic": "order_events",
        "source_partition": 3,
        "source_offset": 42,
        "key": b"dr5r",
        "value": b"{bad",
        "reason": "undecodable",
        "message": "not JSON",
    }
    values.update(overrides)
    return DeadLetter(**values)  # type: ignore[arg-type]


def test_dead_letter_goes_to_the_sources_dlq_topic() -> None:
    """A letter from `order_events` belongs in `order_events_dlq`."""
    assert letter().topic == "order_events_dlq"


def test_headers_say_why_and_where_from() -> None:
    """Reason, source topic and offset are readable back from the headers."""
    headers = letter().headers()
    assert header_value(headers, REASON_HEADER) == "undecodable"
    assert header_value(headers, TOPIC_HEADER) == "order_events"
    assert header_value(headers, OFFSET_HEADER) == "42"
    assert header_value(headers, INDEX_HEADER) is None


def test_batch_index_is_a_header_when_given() -> None:
    """A fix rejected inside a batch carries its index."""
    assert header_value(letter(index=7).headers(), INDEX_HEADER) == "7"


def test_long_messages_are_truncated() -> None:
    """The message header is bounded in size."""
    headers = dict(letter(message="x" * 5000).headers())
    assert len(headers["dlq.message"]) == MAX_MESSAGE_CHARS


def test_a_dead_letter_keeps_its_source_s_trace_context() -> None:
    """The source record's `traceparent` goes on the letter as it was; none if it had none."""
    raw = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert header_value(letter(traceparent=raw).headers(), TRACEPARENT_HEADER) == raw.decode()
    assert header_value(letter().headers(), TRACEPARENT_HEADER) is None
