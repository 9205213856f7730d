"""What a live handler asks its caller to do: outputs and dead letters."""

from __future__ import annotations

import pytest

from contracts.rejections import EventRejected, RejectReason
from dispatch.lifecycle import Source
from dispatch.live.effects import Effects, Output


def test_emit_encodes_a_text_key_and_keeps_a_bytes_key() -> None:
    """Keys given as text are UTF-8 encoded; bytes keys are used as they are."""
    effects = Effects()
    effects.emit("t", "dr5r", {"type": "x"})
    effects.emit("t", b"\x00raw", b"payload")
    assert [o.key for o in effects.outputs] == [b"dr5r", b"\x00raw"]


def test_the_event_of_a_json_output_is_its_value() -> None:
    """`Output.event` returns the JSON value of an event output."""
    value = {"type": "eta_update"}
    assert Output("eta_updates", b"k", value).event is value


def test_the_event_of_a_binary_output_is_a_type_error() -> None:
    """Asking a binary output for its event raises TypeError naming the topic."""
    with pytest.raises(TypeError, match="courier_positions"):
        _ = Output("courier_positions", b"k", b"\x01\x02").event


def test_extend_appends_outputs_and_rejections_in_order() -> None:
    """`extend` keeps the order in which effects arose: this one's first, then the other's."""
    source = Source("order_events", 0, 7)
    first, second = Effects(), Effects()
    first.emit("a", "k", {"n": 1})
    second.emit("b", "k", {"n": 2})
    second.reject(source, EventRejected(RejectReason.UNKNOWN_ID, "no such order"))
    first.extend(second)
    assert [o.topic for o in first.outputs] == ["a", "b"]
    assert [(s, e.reason) for s, e in first.rejections] == [(source, RejectReason.UNKNOWN_ID)]
