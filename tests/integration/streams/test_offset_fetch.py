"""A group's committed offsets are read from its current coordinator after the coordinator moved.

On three Apache Kafka nodes: a reader learns the group's coordinator, that node is killed (the
group moves to another node) and restarted (it answers again, as a non-coordinator). Without
`streams.offset_fetch`, the reader's next `committed()` asks the old node, which answers with a
group-level NOT_COORDINATOR and no partitions, and aiokafka reports "nothing committed".
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_broker import KafkaCluster
from streams.offset_fetch import install_offset_fetch_check
from tests.integration.streams.kafka_clients import client_of, create_topic, topic_name

pytestmark = pytest.mark.kafka

COMMITTED = 5


async def _coordinator(cluster: KafkaCluster, group: str, timeout_s: float = 60.0) -> int:
    """The node id the running nodes name as `group`'s coordinator (waits until one is named)."""
    running = [n.bootstrap for n in cluster.nodes if n.running()]
    admin = AIOKafkaAdminClient(bootstrap_servers=running)
    await admin.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return int(await admin.find_coordinator(group))
            except Exception:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _moved_away(cluster: KafkaCluster, group: str, old: int, timeout_s: float = 60.0) -> int:
    """Wait until `group`'s coordinator is a node other than `old`; return it."""
    deadline = time.monotonic() + timeout_s
    while (node := await _coordinator(cluster, group)) == old:
        if time.monotonic() > deadline:
            msg = f"the coordinator of {group} stayed on node {old} for {timeout_s} s"
            raise AssertionError(msg)
        await asyncio.sleep(0.2)
    return node


def test_committed_offsets_are_read_from_the_new_coordinator(healthy_kafka3: KafkaCluster) -> None:
    """After the coordinator moved and its old node is back, `committed()` returns the offset."""
    cluster = healthy_kafka3
    install_offset_fetch_check()
    topic, group = topic_name("offset-fetch"), topic_name("group")
    tp = TopicPartition(topic, 0)

    async def run() -> tuple[int, int, int | None]:
        await create_topic(client_of(cluster), topic, replication=3)
        writer = AIOKafkaConsumer(**client_of(cluster), group_id=group, enable_auto_commit=False)
        await writer.start()
        writer.assign([tp])
        await writer.commit({tp: COMMITTED})
        await writer.stop()
        reader = AIOKafkaConsumer(**client_of(cluster), group_id=group, enable_auto_commit=False)
        await reader.start()
        try:
            assert await reader.committed(tp) == COMMITTED
            old = reader._coordinator.coordinator_id
            assert old is not None
            cluster.kill_node(old)
            await _moved_away(cluster, group, old)
            await cluster.restart_node_async(old)
            new = await _moved_away(cluster, group, old)
            assert reader._coordinator.coordinator_id == old  # the reader has not noticed
            return old, new, await asyncio.wait_for(reader.committed(tp), timeout=60)
        finally:
            await reader.stop()

    old, new, committed = asyncio.run(run())
    assert new != old
    assert committed == COMMITTED
