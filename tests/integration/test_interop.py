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

from contracts.geo import shard_of
from contracts.partitioning import partition_for_key
from contracts.tracing import TRACEPARENT_HEADER, parse_traceparent
from contracts.validation import validate_schema
from tests.integration.conftest import Cluster

LAT, LON = 40.7580, -73.9855
SHARD = shard_of(LAT, LON, 4)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _event(event_type: str, event_id: str, ts_ms: int, **fields: Any) -> bytes:
    return orjson.dumps(
        {"event_id": event_id, "type": event_type, "v": 1, "ts_ms": ts_ms, **fields}
    )


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
    online = _event(
        "courier_online",
        "c1-online",
        now_ms,
        courier_id="c1",
        lat=LAT,
        lon=LON,
        capacity=2,
        vehicle="bike",
    )
    pings = _event(
        "courier_ping_batch",
        "gw-1",
        now_ms,
        pings=[{"courier_id": "c1", "lat": LAT, "lon": LON, "ts_ms": now_ms}],
    )
    created = _event(
        "order_created",
        "o1-created",
        now_ms,
        order_id="o1",
        merchant_id="m1",
        shard=SHARD,
        pickup={"lat": LAT, "lon": LON},
        dropoff={"lat": LAT + 0.01, "lon": LON},
        prep_estimate_s=0.0,
    )
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
        answer = _event(
            "assignment_response",
            "c1-accept",
            int(time.time() * 1000),
            decision_id=offer["decision_id"],
            courier_id="c1",
            shard=SHARD,
            response="accept",
        )
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
