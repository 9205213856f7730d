"""Bad input goes to the dead-letter topic with its reason; the valid records around it are used."""

from __future__ import annotations

import time

import orjson

from contracts.dead_letters import OFFSET_HEADER, PARTITION_HEADER, REASON_HEADER, TOPIC_HEADER
from contracts.geo import shard_of
from simulators.synthetic import Record
from tests.integration.conftest import Cluster

T0 = 1_795_000_000_000
SHARD = shard_of(40.7580, -73.9855, 4)


def created(order_id: str, ts_ms: int) -> Record:
    """A valid order_created record."""
    event = {
        "event_id": f"{order_id}-created",
        "type": "order_created",
        "v": 1,
        "ts_ms": ts_ms,
        "order_id": order_id,
        "merchant_id": "m1",
        "shard": SHARD,
        "pickup": {"lat": 40.7580, "lon": -73.9855},
        "dropoff": {"lat": 40.76, "lon": -73.98},
    }
    return Record("order_events", SHARD.encode(), orjson.dumps(event), ts_ms)


def test_poison_record_is_dead_lettered_and_its_neighbours_processed(cluster: Cluster) -> None:
    """Between two valid orders, undecodable bytes land in the DLQ with reason and origin."""
    worker = cluster.start_worker()
    poison = Record("order_events", SHARD.encode(), b"\x00\xffnot json at all", T0 + 1)
    cluster.produce([created("before", T0), poison, created("after", T0 + 2)])
    cluster.wait_caught_up(["order_events"])
    orders = worker.get_json("/state?detail=1")["orders"]
    assert set(orders) == {"before", "after"}
    letters = cluster.dead_letters()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["value"] == poison.value
    assert letter["key"] == poison.key
    assert letter["headers"][REASON_HEADER] == "undecodable"
    assert letter["headers"][TOPIC_HEADER] == "order_events"
    partition, offset = (
        int(letter["headers"][PARTITION_HEADER]),
        int(letter["headers"][OFFSET_HEADER]),
    )
    assert offset >= 1 and partition >= 0
    metrics = worker.request("/metrics")[1].decode()
    assert (
        'dispatchflow_dead_letters_total{reason="undecodable",topic="order_events"} 1.0' in metrics
    )


def test_every_kind_of_bad_input_gets_its_own_reason(cluster: Cluster) -> None:
    """The synthetic city's deliberately invalid records each get the reason they were made for."""
    from collections import Counter

    from simulators.synthetic import CityConfig, SyntheticCity

    cluster.start_worker()
    records = SyntheticCity(
        CityConfig(seed=5, n_couriers=20, n_orders=60, duration_s=900)
    ).records()
    cluster.produce(records)
    cluster.wait_caught_up()
    expected = Counter((r.topic, r.expect_reason) for r in records if r.expect_reason)
    observed = Counter((x["source_topic"], x["reason"]) for x in cluster.dead_letters())
    assert observed == expected


def test_an_event_whose_order_never_comes_is_dead_lettered_on_a_quiet_partition(
    cluster: Cluster,
) -> None:
    """With no further traffic, the worker's own ticks dead-letter the orphan after its ttl."""
    cluster.start_worker(ticker_enabled=True, tick_interval_s=0.5, orphan_ttl_s=2.0)
    now_ms = int(time.time() * 1000)
    ready = {
        "event_id": "o9-ready",
        "type": "order_ready",
        "v": 1,
        "ts_ms": now_ms,
        "order_id": "o9",
        "merchant_id": "m1",
        "shard": SHARD,
    }
    cluster.produce([Record("merchant_ready", SHARD.encode(), orjson.dumps(ready), now_ms)])
    deadline = time.monotonic() + 60
    letters: list[dict[str, object]] = []
    while not letters and time.monotonic() < deadline:
        letters = cluster.dead_letters()
        if not letters:
            time.sleep(0.5)
    assert [(x["source_topic"], x["reason"]) for x in letters] == [("merchant_ready", "unknown_id")]
