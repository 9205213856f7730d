import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.tracing import (
    TraceContext,
    TraceContextError,
    continue_trace,
    parse_traceparent,
    start_trace,
    trace_header_for,
    valid_traceparent,
)

EXAMPLE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
hex_ids = st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda s: set(s) != {"0"})


def test_the_specification_example_parses_into_its_fields() -> None:
    """The W3C example header reads as its trace id, parent id and flags."""
    assert parse_traceparent(EXAMPLE.encode()) == TraceContext(
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01"
    )


def test_a_parsed_context_writes_back_the_same_header() -> None:
    """Parsing then formatting a version-00 header gives it back unchanged."""
    assert parse_traceparent(EXAMPLE).header == EXAMPLE


def test_a_later_version_is_read_by_its_first_four_fields() -> None:
    """A future version with extra fields keeps its trace and parent ids."""
    ctx = parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever")
    assert (ctx.trace_id, ctx.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        EXAMPLE.upper(),  # upper-case hex is not allowed
        EXAMPLE + "-extra",  # version 00 has exactly four fields
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",  # short trace id
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero parent id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
    ],
)
def test_malformed_headers_are_rejected(value: str) -> None:
    """Anything but a valid trace context raises `TraceContextError`."""
    with pytest.raises(TraceContextError):
        parse_traceparent(value)


@given(hex_ids, st.text(min_size=1, max_size=40))
def test_continuing_keeps_the_trace_and_flags_and_writes_a_new_valid_span(
    trace_id: str, event_id: str
) -> None:
    """A continued context is valid, in the same trace, with its own parent id."""
    parent = TraceContext(trace_id, "b7ad6b7169203331", "01")
    child = continue_trace(parent, event_id)
    assert parse_traceparent(child.header) == child
    assert (child.trace_id, child.flags) == (parent.trace_id, parent.flags)
    assert child.parent_id != parent.parent_id


def test_continuing_is_deterministic_per_event_and_differs_between_events() -> None:
    """The same event gets the same span id; another event gets another."""
    parent = parse_traceparent(EXAMPLE)
    assert continue_trace(parent, "e1") == continue_trace(parent, "e1")
    assert continue_trace(parent, "e1").parent_id != continue_trace(parent, "e2").parent_id


def test_a_started_trace_is_valid_unsampled_and_derived_from_its_seed() -> None:
    """Starting a trace twice from one seed gives one trace; another seed another."""
    ctx = start_trace("o1")
    assert parse_traceparent(ctx.header) == ctx
    assert ctx.flags == "00"
    assert start_trace("o1") == ctx
    assert start_trace("o2").trace_id != ctx.trace_id


def test_a_record_continues_the_entity_s_trace_or_a_trace_started_from_its_id() -> None:
    """With a stored context the record joins its trace; without one, the seed's trace."""
    joined = parse_traceparent(trace_header_for(EXAMPLE, "o1", "committed:d1"))
    started = parse_traceparent(trace_header_for(None, "o1", "committed:d1"))
    assert joined.trace_id == parse_traceparent(EXAMPLE).trace_id
    assert started.trace_id == start_trace("o1").trace_id


def test_only_a_valid_header_passes_as_a_trace_context() -> None:
    """A valid header comes back in its version-00 form; a malformed or absent one is None."""
    assert valid_traceparent(EXAMPLE.encode()) == EXAMPLE
    assert valid_traceparent("00-bad") is None
    assert valid_traceparent(None) is None
