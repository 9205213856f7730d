"""The worker's consumer on Apache Kafka: no record skipped and no commit stuck after an assignment.

Faust resumes the stream partitions before it seeks them to their committed offsets and empties the
agents' queues after; records read in between were skipped and the partition stopped committing
(see `streams.consumer`). The test widens that window with a fault (each committed-offset read
answers a second late) and makes sure records are queued for the agent when it closes (a handler
that awaits 20 ms per record behind a buffer of 4): with Faust's own consumer
(`SEEK_APP_SEEK_SAFE=0`) the worker skips the queued records and its committed offset stops
within the first 50 records, every time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import free_loopback_ports
from streams.consumer import ActivePartitions
from tests.integration.polling import wait_for

REPO = Path(__file__).resolve().parents[3]
RECORDS = 600
COMMITTED_AT_START = 200


async def prepare(bootstrap: str, topic: str, group: str) -> None:
    """Fill `topic` with `RECORDS` records, commit `COMMITTED_AT_START` for `group`.

    The app's table changelog gets one entry, so that the worker restores its table at start
    (its fetcher then runs while the stream partitions wait for their seek, as after any restart
    of a worker with state).
    """
    changelog = f"{group}-{topic}-counts-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topic, 1, 1),
                NewTopic(changelog, 1, 1, topic_configs={"cleanup.policy": "compact"}),
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        await producer.send(changelog, key=b'"0"', value=b"1", partition=0)
        for i in range(RECORDS):
            await producer.send(topic, key=b"k", value=str(i).encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    await commit(bootstrap, topic, group, COMMITTED_AT_START)


async def commit(bootstrap: str, topic: str, group: str, offset: int) -> None:
    """Commit `offset` for partition 0 of `topic` in `group`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): offset})
    finally:
        await consumer.stop()


async def committed(bootstrap: str, topic: str, group: str) -> int | None:
    """The committed offset of partition 0 of `topic` in `group`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


def test_a_worker_handles_every_record_from_its_committed_offset_and_commits_to_the_end(
    broker: str, tmp_path: Path
) -> None:
    """After a slow seek, records are handled once each, in order, and all of them committed."""
    topic = f"seek-{uuid.uuid4().hex[:8]}"
    group = f"seek-app-{uuid.uuid4().hex[:8]}"
    asyncio.run(prepare(broker, topic, group))
    handled_file = tmp_path / "handled.txt"
    (port,) = free_loopback_ports(1)
    env = {
        **os.environ,
        "SEEK_APP_SEEK_SAFE": os.environ.get("SEEK_APP_SEEK_SAFE", "1"),
        "SEEK_APP_BROKER": broker,
        "SEEK_APP_TOPIC": topic,
        "SEEK_APP_GROUP": group,
        "SEEK_APP_PORT": str(port),
        "SEEK_APP_DATADIR": str(tmp_path / "data"),
        "SEEK_APP_HANDLED": str(handled_file),
        "SEEK_APP_SLOW_COMMITTED_S": "1.0",
        "SEEK_APP_BUFFER": "4",
        "SEEK_APP_HANDLE_S": "0.02",
    }
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.streams.seek_app", "worker", "-l", "info"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            final = wait_for(
                lambda: asyncio.run(committed(broker, topic, group)),
                lambda offset: offset == RECORDS,
                timeout_s=60,
                every_s=0.5,
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    handled = [int(line) for line in handled_file.read_text().split()]
    assert final == RECORDS
    assert handled == list(range(COMMITTED_AT_START, RECORDS))


async def fetch_twice(bootstrap: str) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """Records per partition handed over by three fetches of a client with two full partitions.

    First through `ActivePartitions({partition 0})`, then through `ActivePartitions(set())` (an
    active set that emptied), then through the client's own empty set.
    """
    topic = f"fetch-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition in (0, 1):
            for i in range(10):
                await producer.send(topic, str(i).encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        fetcher = consumer._fetcher

        async def fetch(partitions: Any) -> dict[int, int]:
            records = await fetcher.fetched_records(partitions, timeout=1.0)
            return {tp.partition: len(batch) for tp, batch in records.items()}

        return (
            await fetch(ActivePartitions({tps[0]})),
            await fetch(ActivePartitions(set())),
            await fetch(set()),
        )
    finally:
        await consumer.stop()


def test_a_fetch_through_an_emptied_active_set_hands_over_nothing(broker: str) -> None:
    """The worker's active-partition view never reads as "every partition" to the client."""
    only_active, emptied, clients_own_empty = asyncio.run(fetch_twice(broker))
    assert only_active == {0: 10}
    assert emptied == {}
    assert clients_own_empty == {1: 10}
