"""A client no one here wrote: librdkafka (confluent-kafka) produces orders and reads decisions.

Most non-Python upstream apps use librdkafka. This drives one order from placement to commit
with nothing but confluent-kafka on the client side: keys, headers and JSON must interoperate
with the workers (which use aiokafka). librdkafka's default partitioner is not Kafka's, so
producers of shard-keyed topics set `partitioner: murmur2_random` (see the README); the test
checks that the partitions then agree with `contracts.partitioning`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from contracts.partitioning import partition_for_key
from contracts.tracing import TRACEPARENT_HEADER, parse_traceparent
from contracts.validation import validate_schema
from tests import events
from tests.integration.conftest import Cluster

SHARD = events.SHARD
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _consumer(cluster: Cluster, topics: list[str]) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": "interop-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(topics)
    return consumer


def _next(consumer: Consumer, event_type: str, timeout_s: float) -> Any:
    """The next record whose JSON value is of `event_type`, within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        if orjson.loads(message.value() or b"{}").get("type") == event_type:
            return message
    raise AssertionError(f"no {event_type} within {timeout_s} s")


def test_librdkafka_clients_place_an_order_and_read_its_commit(cluster: Cluster) -> None:
    """Orders, pings and answers from confluent-kafka; the commit read back with its trace."""
    cluster.start_worker(ticker_enabled=True, tick_interval_s=1.0)
    producer = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
        }
    )
    now_ms = int(time.time() * 1000)
    online = orjson.dumps(events.courier_online("c1", now_ms))
    pings = orjson.dumps(events.ping_batch("gw-1", now_ms, [events.fix("c1", now_ms)]))
    created = orjson.dumps(events.order_created("o1", now_ms, prep_estimate_s=0.0))
    delivered: list[int] = []

    def on_delivery(err: Any, message: Any) -> None:
        assert err is None, err
        if message.topic() == "order_events":
            delivered.append(message.partition())

    producer.produce("courier_events", key=b"c1", value=online, on_delivery=on_delivery)
    producer.produce("courier_pings", key=b"gw", value=pings, on_delivery=on_delivery)
    producer.produce(
        "order_events",
        key=SHARD.encode(),
        value=created,
        headers=[(TRACEPARENT_HEADER, TRACEPARENT.encode())],
        on_delivery=on_delivery,
    )
    assert producer.flush(30) == 0
    assert delivered == [partition_for_key(SHARD.encode(), 8)]

    consumer = _consumer(cluster, ["assignment_proposed", "assignment_committed"])
    try:
        offer = orjson.loads(_next(consumer, "assignment_proposed", 60).value() or b"{}")
        answer = orjson.dumps(events.response(offer["decision_id"], "c1", int(time.time() * 1000)))
        producer.produce("assignment_responses", key=SHARD.encode(), value=answer)
        assert producer.flush(30) == 0
        commit = _next(consumer, "assignment_committed", 60)
    finally:
        consumer.close()
    event = validate_schema(orjson.loads(commit.value() or b"{}"))
    assert commit.key() == SHARD.encode()
    assert event["order_ids"] == ["o1"] and event["courier_id"] == "c1"
    headers = dict(commit.headers() or [])
    assert parse_traceparent(headers[TRACEPARENT_HEADER]).trace_id == TRACE_ID
