"""Three Apache Kafka nodes: replication 3 with min ISR 2 survives a killed node, which rejoins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_broker import KafkaCluster
from tests.integration.streams.kafka_clients import (
    client_of,
    consume,
    create_topic,
    produce,
    topic_configs,
    topic_name,
)

pytestmark = pytest.mark.kafka


async def _partition(cluster: KafkaCluster, topic: str) -> dict[str, Any]:
    """Metadata of partition 0 of `topic` (leader, replicas, isr), from the running nodes."""
    running = [n.bootstrap for n in cluster.nodes if n.running()]
    admin = AIOKafkaAdminClient(bootstrap_servers=running)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partition: dict[str, Any] = described["partitions"][0]
    return partition


async def _broker_ports(cluster: KafkaCluster) -> dict[int, int]:
    """Node id to client port of every broker the cluster metadata lists."""
    admin = AIOKafkaAdminClient(**client_of(cluster))
    await admin.start()
    try:
        described = await admin.describe_cluster()
    finally:
        await admin.close()
    return {b["node_id"]: b["port"] for b in described["brokers"]}


def test_three_nodes_form_one_cluster(kafka3: KafkaCluster) -> None:
    """Every node is registered and unfenced: metadata lists brokers 0, 1 and 2 on their ports."""
    expected = {node.node_id: node.ports.client for node in kafka3.nodes}
    assert asyncio.run(_broker_ports(kafka3)) == expected


def test_topics_need_two_in_sync_replicas(kafka3: KafkaCluster) -> None:
    """A topic created without configs has min.insync.replicas=2 and three replicas."""
    topic = topic_name("minisr")

    async def run() -> tuple[str | None, int]:
        await create_topic(client_of(kafka3), topic, replication=3)
        configs = await topic_configs(client_of(kafka3), topic)
        return configs["min.insync.replicas"], len((await _partition(kafka3, topic))["replicas"])

    assert asyncio.run(run()) == ("2", 3)


def test_acks_all_produce_survives_killing_the_partition_leader(
    healthy_kafka3: KafkaCluster,
) -> None:
    """SIGKILL the leader: acks=all writes go on with two in sync, and none is lost."""
    cluster = healthy_kafka3
    topic = topic_name("survive")
    before = [b"before-%d" % i for i in range(5)]
    after = [b"after-%d" % i for i in range(5)]
    asyncio.run(create_topic(client_of(cluster), topic, replication=3))
    asyncio.run(produce(client_of(cluster), topic, before, acks="all"))
    leader = asyncio.run(_partition(cluster, topic))["leader"]

    cluster.kill_node(leader)
    asyncio.run(produce(client_of(cluster), topic, after, acks="all", request_timeout_ms=30_000))

    assert asyncio.run(consume(client_of(cluster), topic, 10)) == before + after


def test_a_killed_node_restarts_on_its_ports_and_rejoins_the_isr(
    healthy_kafka3: KafkaCluster,
) -> None:
    """After SIGKILL and `restart_node`, the node answers on the same port and is back in ISR."""
    cluster = healthy_kafka3
    topic = topic_name("rejoin")
    asyncio.run(create_topic(client_of(cluster), topic, replication=3))
    port = cluster.node(2).ports.client

    cluster.kill_node(2)
    asyncio.run(produce(client_of(cluster), topic, [b"while-down"], acks="all"))
    cluster.restart_node(2)
    cluster.wait_fully_replicated(timeout_s=60)

    assert asyncio.run(_broker_ports(cluster))[2] == port
    assert sorted(asyncio.run(_partition(cluster, topic))["isr"]) == [0, 1, 2]


def test_an_async_caller_restarts_a_killed_node_and_waits_until_in_sync(
    healthy_kafka3: KafkaCluster,
) -> None:
    """From inside an event loop: kill, `restart_node_async`, then all partitions in sync."""
    cluster = healthy_kafka3
    topic = topic_name("async-rejoin")

    async def run() -> dict[int, int]:
        await create_topic(client_of(cluster), topic, replication=3)
        cluster.kill_node(1)
        await cluster.restart_node_async(1)
        await cluster.wait_fully_replicated_async(timeout_s=60)
        return await _broker_ports(cluster)

    assert asyncio.run(run())[1] == cluster.node(1).ports.client
    assert asyncio.run(cluster.under_replicated()) == []
