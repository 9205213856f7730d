import re

import pytest

from contracts.records import envelope as event
from contracts.topics import load_topics
from contracts.tracing import parse_traceparent
from simulators.city.events import TOPIC_OF, make_id, record

ID = re.compile(r"^[A-Za-z0-9_.:@-]+$")


@pytest.mark.parametrize("kind", sorted(TOPIC_OF))
def test_every_event_type_goes_to_a_topic_that_carries_it(kind: str) -> None:
    """Each event type the simulator makes is one of its topic's value schemas in topics.yaml."""
    assert kind in load_topics()[TOPIC_OF[kind]].value_schemas


def test_ping_batches_are_keyed_by_the_gateway() -> None:
    """A ping batch's record key is the gateway id, whatever the fixes."""
    body = event(
        "courier_ping_batch",
        "pb-1",
        1,
        pings=[{"courier_id": "c1", "lat": 0, "lon": 0, "ts_ms": 1}],
    )
    assert record(body, "gateway-9").key == b"gateway-9"


def test_shard_keyed_events_carry_their_shard_as_key() -> None:
    """Records of shard-keyed topics are keyed by the event's shard."""
    body = event("order_ready", "o1-ready", 5, order_id="o1", merchant_id="m1", shard="dr5r")
    rec = record(body)
    assert (rec.topic, rec.key) == ("merchant_ready", b"dr5r")


def test_long_ids_are_shortened_deterministically() -> None:
    """Ids over 128 characters are cut with a digest: valid, stable and still distinct."""
    a = make_id("resp", "x" * 200)
    b = make_id("resp", "x" * 199 + "y")
    assert len(a) <= 128 and ID.match(a)
    assert a == make_id("resp", "x" * 200)
    assert a != b


def test_an_order_created_record_carries_a_sampled_trace_of_its_order() -> None:
    """The ordering app starts a sampled trace per order; other records carry none."""
    created = record(event("order_created", "o1-created", 5, order_id="o1", shard="dr5r"))
    again = record(event("order_created", "o1-created", 5, order_id="o1", shard="dr5r"))
    other = record(event("order_created", "o2-created", 5, order_id="o2", shard="dr5r"))
    ready = record(event("order_ready", "o1-ready", 5, order_id="o1", shard="dr5r"))
    assert created.traceparent is not None and other.traceparent is not None
    ctx = parse_traceparent(created.traceparent)
    assert ctx.flags == "01"
    assert again.traceparent == created.traceparent
    assert parse_traceparent(other.traceparent).trace_id != ctx.trace_id
    assert ready.traceparent is None
