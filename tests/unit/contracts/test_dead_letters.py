import hashlib

import orjson
from hypothesis import given
from hypothesis import strategies as st

from contracts.dead_letters import (
    INDEX_HEADER,
    MAX_MESSAGE_CHARS,
    OFFSET_HEADER,
    ORIGINAL_SIZE_HEADER,
    REASON_HEADER,
    SHA256_HEADER,
    TOPIC_HEADER,
    TRUNCATED_HEADER,
    VALUE_ENCODING_HEADER,
    DeadLetter,
    DeadLetterLimits,
    encode_fix,
    header_value,
)
from contracts.tracing import TRACEPARENT_HEADER


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


def test_dead_letter_goes_to_the_sources_dlq_topic_and_partition() -> None:
    """A letter from `order_events[3]` belongs in partition 3 of `order_events_dlq`."""
    record = letter().record()
    assert (record.topic, record.partition) == ("order_events_dlq", 3)


def test_headers_say_why_and_where_from() -> None:
    """Reason, source topic and offset are readable back from the headers."""
    headers = letter().record().headers
    assert header_value(headers, REASON_HEADER) == "undecodable"
    assert header_value(headers, TOPIC_HEADER) == "order_events"
    assert header_value(headers, OFFSET_HEADER) == "42"
    assert header_value(headers, INDEX_HEADER) is None


def test_batch_index_is_a_header_when_given() -> None:
    """A fix rejected inside a batch carries its index."""
    assert header_value(letter(index=7).record().headers, INDEX_HEADER) == "7"


def test_long_messages_are_truncated() -> None:
    """The message header is bounded in size."""
    headers = dict(letter(message="x" * 5000).record().headers)
    assert len(headers["dlq.message"]) == MAX_MESSAGE_CHARS


def test_a_dead_letter_keeps_its_source_s_headers_and_trace_context() -> None:
    """Every source header goes on the letter as it was, `traceparent` included."""
    raw = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = letter(headers=((TRACEPARENT_HEADER, raw), ("app", b"x"))).record().headers
    assert header_value(headers, TRACEPARENT_HEADER) == raw.decode()
    assert header_value(headers, "app") == "x"


def test_a_source_header_named_like_ours_is_kept_under_a_prefix() -> None:
    """A source `dlq.reason` header does not hide the letter's own reason."""
    headers = letter(headers=((REASON_HEADER, b"forged"),)).record().headers
    assert header_value(headers, REASON_HEADER) == "undecodable"
    assert header_value(headers, f"original.{REASON_HEADER}") == "forged"


def test_key_and_value_are_the_originals_when_they_fit() -> None:
    """Nothing is cut from a record that fits: key and value are the source's bytes."""
    record = letter().record()
    assert (record.key, record.value) == (b"dr5r", b"{bad")
    assert header_value(record.headers, TRUNCATED_HEADER) is None


def test_a_null_value_stays_null() -> None:
    """A record without a value is dead-lettered without one (not as empty bytes)."""
    assert letter(value=None).record().value is None


def test_a_value_too_large_is_cut_with_its_size_and_hash() -> None:
    """A value beyond the limit is cut to it; headers give its size and SHA-256."""
    value = b"a" * 5000
    record = letter(value=value).record(DeadLetterLimits(max_value_bytes=1000))
    assert record.value == value[:1000]
    assert header_value(record.headers, TRUNCATED_HEADER) == "value"
    assert header_value(record.headers, ORIGINAL_SIZE_HEADER) == "5000"
    assert header_value(record.headers, SHA256_HEADER) == hashlib.sha256(value).hexdigest()


def test_source_headers_beyond_the_limit_are_dropped_and_said_so() -> None:
    """Oversized source headers are not copied; `dlq.truncated` names them."""
    record = letter(headers=(("big", b"x" * 100),)).record(DeadLetterLimits(max_header_bytes=50))
    assert header_value(record.headers, "big") is None
    assert header_value(record.headers, TRUNCATED_HEADER) == "headers"


@given(
    key=st.binary(max_size=3000),
    value=st.one_of(st.none(), st.binary(max_size=3000)),
    headers=st.lists(st.tuples(st.text(max_size=30), st.binary(max_size=300)), max_size=8),
    message=st.text(max_size=2000),
)
def test_a_dead_letter_always_fits_its_limits(
    key: bytes, value: bytes | None, headers: list[tuple[str, bytes]], message: str
) -> None:
    """Whatever the source record, the letter's key, value and headers stay within the limits."""
    limits = DeadLetterLimits(max_value_bytes=1000, max_key_bytes=100, max_header_bytes=500)
    record = letter(key=key, value=value, headers=tuple(headers), message=message).record(limits)
    assert len(record.key or b"") <= 100
    assert len(record.value or b"") <= 1000
    ours = sum(len(k) + len(v) for k, v in record.headers if k.startswith("dlq."))
    assert sum(len(k) + len(v) for k, v in record.headers) - ours <= 500


def test_a_fix_is_encoded_as_json() -> None:
    """An ordinary rejected fix is its JSON, with no encoding header."""
    fix = {"courier_id": "c1", "lat": 95.0}
    assert encode_fix(fix) == (orjson.dumps(fix), None)


def test_a_fix_nested_beyond_the_encoder_is_sanitized() -> None:
    """A fix JSON cannot encode (500 levels deep) becomes a sanitized copy, never an error."""
    fix: list[object] = []
    node = fix
    for _ in range(500):
        child: list[object] = []
        node.append(child)
        node = child
    value, encoding = encode_fix({"courier_id": "c1", "lat": fix})
    assert encoding == "sanitized"
    assert orjson.loads(value)["courier_id"] == "c1"


def test_the_encoding_header_says_a_value_was_sanitized() -> None:
    """A letter made from a sanitized fix says so."""
    headers = letter(value_encoding="sanitized").record().headers
    assert header_value(headers, VALUE_ENCODING_HEADER) == "sanitized"
