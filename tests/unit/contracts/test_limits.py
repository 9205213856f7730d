import pytest

from contracts.limits import DecodeLimits, bounded_loads, check_bounds, check_record_size
from contracts.rejections import EventRejected, RejectReason

LIMITS = DecodeLimits(
    max_record_bytes=1_000, max_header_bytes=100, max_depth=4, max_string_chars=10, max_items=5
)


def reason(value: bytes, limits: DecodeLimits = LIMITS) -> RejectReason:
    """The reason `bounded_loads` refuses `value` for."""
    with pytest.raises(EventRejected) as caught:
        bounded_loads(value, limits)
    return caught.value.reason


def test_a_value_within_every_limit_parses() -> None:
    """JSON inside all limits comes back as parsed."""
    assert bounded_loads(b'{"a": [1, {"b": "short"}]}', LIMITS) == {"a": [1, {"b": "short"}]}


def test_a_record_larger_than_allowed_is_too_large() -> None:
    """More bytes than `max_record_bytes` is `record_too_large`, before parsing."""
    assert reason(b" " * 1_001) is RejectReason.RECORD_TOO_LARGE


def test_headers_larger_than_allowed_are_too_large() -> None:
    """Headers beyond `max_header_bytes` make the record `record_too_large`."""
    with pytest.raises(EventRejected) as caught:
        check_record_size(b"{}", [("h", b"x" * 200)], LIMITS)
    assert caught.value.reason is RejectReason.RECORD_TOO_LARGE


def test_no_value_is_undecodable() -> None:
    """A record without a value is `undecodable`."""
    with pytest.raises(EventRejected) as caught:
        bounded_loads(None, LIMITS)
    assert caught.value.reason is RejectReason.UNDECODABLE


def test_bytes_that_are_not_json_are_undecodable() -> None:
    """Garbage is `undecodable`."""
    assert reason(b"\xff{") is RejectReason.UNDECODABLE


def test_nesting_beyond_the_limit_is_too_deep() -> None:
    """Five levels against a limit of four is `too_deep`."""
    assert reason(b"[[[[[1]]]]]") is RejectReason.TOO_DEEP


def test_nesting_beyond_the_parser_is_too_deep_too() -> None:
    """Nesting deeper than the JSON parser itself takes is `too_deep`, not `undecodable`."""
    assert reason(b"[" * 2_000 + b"]" * 2_000, DecodeLimits(max_record_bytes=10_000)) is (
        RejectReason.TOO_DEEP
    )


def test_a_long_string_is_too_long() -> None:
    """A string value beyond `max_string_chars` is `string_too_long`."""
    assert reason(b'{"a": "eleven chars"}') is RejectReason.STRING_TOO_LONG


def test_a_long_object_key_is_too_long() -> None:
    """An object key beyond `max_string_chars` is `string_too_long`."""
    assert reason(b'{"eleven chars": 1}') is RejectReason.STRING_TOO_LONG


def test_an_integer_beyond_64_bits_is_out_of_range() -> None:
    """2^63 is `number_out_of_range`; 2^63 - 1 is fine."""
    assert reason(b"[9223372036854775808]") is RejectReason.NUMBER_OUT_OF_RANGE
    assert bounded_loads(b"[9223372036854775807]", LIMITS) == [2**63 - 1]


def test_too_many_entries_are_refused() -> None:
    """An array of six entries against a limit of five is `too_many_items`."""
    assert reason(b"[1, 2, 3, 4, 5, 6]") is RejectReason.TOO_MANY_ITEMS


def test_a_skipped_array_is_checked_for_length_only() -> None:
    """Items of the skipped array are left to the caller; its length is still bounded."""
    check_bounds({"pings": [[[[["deep"]]]]]}, LIMITS, skip="pings")
    with pytest.raises(EventRejected):
        check_bounds({"pings": list(range(6))}, LIMITS, skip="pings")


def test_limits_must_be_positive() -> None:
    """A zero limit is a configuration error."""
    with pytest.raises(ValueError, match="max_depth"):
        DecodeLimits(max_depth=0)
