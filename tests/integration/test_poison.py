"""No record stops a worker: hostile records are dead-lettered with their reason and headers.

Each record class that once crashed a worker for good is sent alone (between valid records),
then all together; the worker stays up, `/healthz` answers 200, and each record is in its
dead-letter topic with the expected reason, its own key and its own headers. A worker that died
while handling a record passes that record when it is restarted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts.dead_letters import TRUNCATED_HEADER
from contracts.partitioning import partition_for_key
from contracts.records import envelope
from contracts.tracing import TRACEPARENT_HEADER
from tests import events
from tests.integration.conftest import Cluster

T0 = 1_795_000_000_000
SHARD = events.SHARD
TRACE = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADERS = ((TRACEPARENT_HEADER, TRACE), ("app", b"upstream"))


@dataclass(frozen=True)
class Sent:
    """A record to produce, with headers and the dead-letter reason it must get (if any)."""

    topic: str
    key: bytes | None
    value: bytes | None
    ts_ms: int
    headers: tuple[tuple[str, bytes], ...] = HEADERS
    expect_reason: str | None = None


def ev(event_type: str, event_id: str, **fields: object) -> dict[str, object]:
    """An event stamped T0."""
    return envelope(event_type, event_id, T0, **fields)


def created(order_id: str, event_id: str | None = None, **extra: Any) -> dict[str, object]:
    """A valid `order_created` in SHARD."""
    return events.order_created(order_id, T0, event_id=event_id, **extra)


def order(event: dict[str, object], reason: str | None = None) -> Sent:
    """An `order_events` record keyed by SHARD."""
    return Sent("order_events", SHARD.encode(), orjson.dumps(event), T0, expect_reason=reason)


def fix(courier_id: str, **extra: Any) -> dict[str, object]:
    """One fix of a ping batch (at T0 unless `ts_ms` is given)."""
    ts_ms = extra.pop("ts_ms", T0)
    return events.fix(courier_id, ts_ms, **extra)


def pings(event_id: str, fixes: bytes, reason: str | None = None) -> Sent:
    """A `courier_ping_batch` record whose `pings` array is the raw JSON `fixes`."""
    head = orjson.dumps(ev("courier_ping_batch", event_id, pings=[]))[:-3]
    return Sent("courier_pings", b"gw", head + b"[" + fixes + b"]}", T0, expect_reason=reason)


def huge_order(tag: str = "") -> Sent:
    """A record close to the broker's limit: a 1 MB string field."""
    return order(created(f"o-huge{tag}", merchant_id="m" * 1_000_000), "record_too_large")


def deep_fix(tag: str = "") -> Sent:
    """A batch whose second fix is nested 300 levels deep."""
    deep = b"[" * 300 + b"1" + b"]" * 300
    bad = b'{"courier_id":"c2","lat":' + deep + b',"lon":0,"ts_ms":%d}' % T0
    return pings(f"deep-batch{tag}", orjson.dumps(fix("c1")) + b"," + bad, "too_deep")


def overflowing_fix(tag: str = "") -> Sent:
    """A batch whose second fix has `ts_ms` = 2^63."""
    fixes = orjson.dumps(fix("c3")) + b"," + orjson.dumps(fix("c4", ts_ms=2**63))
    return pings(f"overflow-batch{tag}", fixes, "number_out_of_range")


def huge_control(tag: str = "") -> Sent:
    """A schema-shaped `dispatch_control` whose weight name is about 1 MB."""
    control = ev(
        "dispatch_control",
        f"ctl-huge{tag}",
        shard=SHARD,
        policy_version="p",
        weights={"w_" * 500_000: 1},
    )
    return Sent(
        "dispatch_control", SHARD.encode(), orjson.dumps(control), T0, HEADERS, "record_too_large"
    )


CRASH_CLASSES = (huge_order, deep_fix, overflowing_fix, huge_control)


def letters_by_reason(cluster: Cluster) -> Counter[tuple[str, str]]:
    """(source topic, reason) of every dead letter so far."""
    return Counter((str(x["source_topic"]), str(x["reason"])) for x in cluster.dead_letters())


def test_each_crash_class_alone_then_together_leaves_the_worker_up(cluster: Cluster) -> None:
    """Each of the four former crash records, alone and then all at once: dead-lettered, up."""
    worker = cluster.start_worker()
    expected: Counter[tuple[str, str]] = Counter()
    for i, make in enumerate(CRASH_CLASSES):
        poison = make()
        cluster.produce([poison, order(created(f"ok-{i}"))])
        cluster.wait_caught_up()
        expected[(poison.topic, str(poison.expect_reason))] += 1
        assert worker.request("/healthz")[0] == 200, worker.log_tail()
        assert letters_by_reason(cluster) == expected
    together = [make("-again") for make in CRASH_CLASSES]
    cluster.produce(together)
    cluster.wait_caught_up()
    expected.update((p.topic, str(p.expect_reason)) for p in together)
    assert worker.request("/healthz")[0] == 200
    assert letters_by_reason(cluster) == expected
    orders = worker.get_json("/state?detail=1")["orders"]
    assert {f"ok-{i}" for i in range(len(CRASH_CLASSES))} <= set(orders)


def test_dead_letters_keep_key_value_and_headers_on_every_topic(cluster: Cluster) -> None:
    """Refused records of several topics keep their key, value and headers; big ones are cut."""
    worker = cluster.start_worker()
    courier_bad = Sent(
        "courier_events",
        b"c9",
        orjson.dumps(ev("courier_online", "c9-on", courier_id="c9", capacity=-1)),
        T0,
        expect_reason="schema_invalid",
    )
    null_value = Sent("merchant_ready", SHARD.encode(), None, T0, expect_reason="undecodable")
    null_field = pings("null-batch", orjson.dumps(fix("c5", accuracy_m=None)), "schema_invalid")
    sent = [courier_bad, null_value, null_field, huge_order()]
    cluster.produce(sent)
    cluster.wait_caught_up()
    assert worker.request("/healthz")[0] == 200
    letters = {str(x["source_topic"]): x for x in cluster.dead_letters()}
    for record in sent:
        letter = letters[record.topic]
        assert letter["reason"] == record.expect_reason
        assert letter["key"] == record.key
        assert letter["headers"][TRACEPARENT_HEADER] == TRACE.decode()
        assert letter["headers"]["app"] == "upstream"
    assert letters["courier_events"]["value"] == courier_bad.value
    assert letters["merchant_ready"]["value"] is None
    assert orjson.loads(letters["courier_pings"]["value"]) == fix("c5", accuracy_m=None)
    assert letters["order_events"]["headers"][TRUNCATED_HEADER] == "value"


def test_an_event_id_reused_by_another_order_is_dead_lettered(cluster: Cluster) -> None:
    """Two orders created with one event id: the second is a `duplicate_event` dead letter."""
    worker = cluster.start_worker()
    cluster.produce([order(created("o1", "shared-id")), order(created("o2", "shared-id"))])
    cluster.wait_caught_up()
    assert letters_by_reason(cluster) == Counter({("order_events", "duplicate_event"): 1})
    assert set(worker.get_json("/state?detail=1")["orders"]) == {"o1"}


def _corrupt_order_state(cluster: Cluster, order_id: str) -> None:
    """Write an unreadable value for `order_id` into the orders table's changelog."""

    async def write() -> None:
        producer = AIOKafkaProducer(**cluster.client, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                f"{cluster.app_id}-orders-changelog",
                key=order_id.encode(),
                value=b"\x00 not an order",
                partition=partition_for_key(SHARD.encode(), 8),
            )
        finally:
            await producer.stop()

    asyncio.run(write())


def _wait_exit(cluster: Cluster, timeout_s: float) -> int:
    code = cluster.workers[-1].wait(timeout_s)
    assert code is not None, "the worker did not stop"
    return code


def test_a_worker_restarted_on_a_poisoned_offset_passes_it(cluster: Cluster) -> None:
    """State that cannot be read stops the worker; restarted, it dead-letters that record."""
    _corrupt_order_state(cluster, "o1")
    worker = cluster.start_worker("w1")
    ready = ev("order_ready", "o1-ready", order_id="o1", merchant_id="m1", shard=SHARD)
    cluster.produce([Sent("merchant_ready", SHARD.encode(), orjson.dumps(ready), T0)])
    assert _wait_exit(cluster, 90) != 0
    assert "StateError" in worker.log_tail(200_000)
    restarted = cluster.start_worker("w1")
    cluster.wait_caught_up()
    assert restarted.request("/healthz")[0] == 200
    letters = cluster.dead_letters()
    assert [(x["source_topic"], x["reason"]) for x in letters] == [
        ("merchant_ready", "internal_error")
    ]
    assert letters[0]["headers"]["dlq.exception"] == "StateError"
    metrics = restarted.request("/metrics")[1].decode()
    assert 'dispatchflow_suspect_records_total{outcome="handled"} 1.0' in metrics
