import orjson
import pytest

from contracts.geo import shard_of
from contracts.records import envelope
from contracts.rejections import EventRejected, RejectReason
from contracts.validation import IngressValidator, TimeBounds, default_rules

NOW_MS = 1_795_000_000_000
SHARD = shard_of(40.758, -73.9855, 4)


def validator() -> IngressValidator:
    """A validator for two input topics with tight time bounds."""
    rules = default_rules(
        {
            "order_events": ["order_created", "order_cancelled"],
            "courier_events": ["courier_online", "courier_offline"],
        }
    )
    return IngressValidator(rules, TimeBounds(max_age_ms=60_000, max_lead_ms=10_000), 4)


def created(**overrides: object) -> dict[str, object]:
    """A valid order_created event, with overrides."""
    fields: dict[str, object] = {
        "order_id": "o1",
        "merchant_id": "m1",
        "shard": SHARD,
        "pickup": {"lat": 40.758, "lon": -73.9855},
        "dropoff": {"lat": 40.76, "lon": -73.98},
    }
    return {**envelope("order_created", "e1", NOW_MS, **fields), **overrides}


def reason_of(
    value: bytes, key: bytes | None = SHARD.encode(), topic: str = "order_events"
) -> RejectReason:
    """The reason the validator rejects `value` (fails the test if it accepts it)."""
    with pytest.raises(EventRejected) as info:
        validator().check(topic, key, value, NOW_MS)
    return info.value.reason


def test_a_valid_event_is_returned_decoded() -> None:
    """A valid record comes back as its event."""
    event = validator().check("order_events", SHARD.encode(), orjson.dumps(created()), NOW_MS)
    assert event["order_id"] == "o1"


def test_bytes_that_are_not_json_are_undecodable() -> None:
    """Garbage bytes are rejected as undecodable."""
    assert reason_of(b"\x00{oops") is RejectReason.UNDECODABLE


def test_missing_required_field_is_schema_invalid() -> None:
    """An event without a required field is schema-invalid."""
    event = created()
    del event["merchant_id"]
    assert reason_of(orjson.dumps(event)) is RejectReason.SCHEMA_INVALID


def test_out_of_range_latitude_is_schema_invalid() -> None:
    """A pickup latitude beyond 90 degrees is schema-invalid."""
    assert (
        reason_of(orjson.dumps(created(pickup={"lat": 95.0, "lon": 0.0})))
        is RejectReason.SCHEMA_INVALID
    )


def test_event_type_of_another_topic_is_rejected() -> None:
    """A courier event on the order topic is rejected as wrong topic."""
    event = envelope("courier_offline", "x", NOW_MS, courier_id="c1")
    assert reason_of(orjson.dumps(event)) is RejectReason.WRONG_TOPIC


def test_record_key_must_equal_the_shard() -> None:
    """A record keyed by anything but its event's shard is rejected."""
    assert reason_of(orjson.dumps(created()), key=b"o1") is RejectReason.WRONG_KEY


def test_shard_must_be_the_pickup_geohash() -> None:
    """An order whose declared shard is not its pickup's is rejected."""
    event = created(shard="dr72")
    assert reason_of(orjson.dumps(event), key=b"dr72") is RejectReason.WRONG_SHARD


@pytest.mark.parametrize("skew_ms", [-61_000, 11_000])
def test_event_time_far_from_record_time_is_rejected(skew_ms: int) -> None:
    """Events stamped too far before or after their record time are rejected."""
    assert (
        reason_of(orjson.dumps(created(ts_ms=NOW_MS + skew_ms)))
        is RejectReason.TIMESTAMP_OUT_OF_RANGE
    )


def test_skew_within_bounds_is_accepted() -> None:
    """Events within the allowed skew pass."""
    for skew_ms in (-59_000, 9_000):
        validator().check(
            "order_events", SHARD.encode(), orjson.dumps(created(ts_ms=NOW_MS + skew_ms)), NOW_MS
        )
