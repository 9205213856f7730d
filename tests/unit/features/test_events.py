import pytest

from features.events import EventError, validate_event

PING = {
    "type": "courier_ping",
    "event_id": "e1",
    "ts_ms": 1,
    "courier_id": "c1",
    "lat": 1.0,
    "lon": 2.0,
    "speed_mps": None,
}


def test_valid_event_returns_its_type() -> None:
    """A well-formed ping validates (null speed allowed)."""
    assert validate_event(PING) == "courier_ping"


@pytest.mark.parametrize(
    ("field", "value"),
    [("lat", 95.0), ("ts_ms", -1), ("speed_mps", float("nan")), ("courier_id", ""), ("type", "x")],
)
def test_malformed_event_raises_event_error(field: str, value: object) -> None:
    """Each malformed field gives an EventError naming the problem."""
    with pytest.raises(EventError):
        validate_event({**PING, field: value})


def test_missing_field_is_named_in_the_error() -> None:
    """A missing field is named in the message."""
    bad = dict(PING)
    del bad["lon"]
    with pytest.raises(EventError, match="lon"):
        validate_event(bad)
