"""One Apache Kafka node from the runner: what clients rely on, logs, start failures and stop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from streams.broker import BrokerStartError
from streams.kafka_broker import KafkaCluster
from streams.kafka_dist import pom_kafka_version
from tests.integration.streams.conftest import server_log
from tests.integration.streams.kafka_clients import (
    client_of,
    consume,
    create_topic,
    produce,
    topic_configs,
    topic_name,
)
from tests.processes import process_gone

pytestmark = pytest.mark.kafka


def test_the_node_runs_the_pinned_kafka_version(kafka1: KafkaCluster) -> None:
    """The broker reports the version tools/kafka/pom.xml pins."""
    assert kafka1.version == pom_kafka_version()
    assert f"Kafka version: {kafka1.version}" in server_log(kafka1).read_text()


def test_a_topic_round_trips_through_a_consumer_group(kafka1: KafkaCluster) -> None:
    """Created topic, records acknowledged by all replicas, read back in order by a group."""
    topic = topic_name("roundtrip")
    values = [b"a", b"b", b"c"]

    async def run() -> list[bytes]:
        await create_topic(client_of(kafka1), topic)
        await produce(client_of(kafka1), topic, values, acks="all")
        return await consume(client_of(kafka1), topic, len(values), group_id="roundtrip")

    assert asyncio.run(run()) == values


def test_an_idempotent_producer_is_accepted(kafka1: KafkaCluster) -> None:
    """The idempotent aiokafka producer gets a producer id and its records arrive once."""
    topic = topic_name("idempotent")
    values = [b"%d" % i for i in range(5)]

    async def run() -> list[bytes]:
        await create_topic(client_of(kafka1), topic)
        await produce(client_of(kafka1), topic, values, enable_idempotence=True)
        return await consume(client_of(kafka1), topic, len(values))

    assert asyncio.run(run()) == values


def test_read_committed_consumers_see_only_committed_transactions(kafka1: KafkaCluster) -> None:
    """Transactional aiokafka producer: committed records are read, aborted ones are not."""
    topic = topic_name("txn")

    async def run() -> list[bytes]:
        await create_topic(client_of(kafka1), topic)
        producer = AIOKafkaProducer(**client_of(kafka1), transactional_id=topic)
        await producer.start()
        try:
            for value, commit in ((b"c1", True), (b"a1", False), (b"c2", True)):
                await producer.begin_transaction()
                await producer.send_and_wait(topic, value, partition=0)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        return await consume(client_of(kafka1), topic, 2, isolation_level="read_committed")

    assert asyncio.run(run()) == [b"c1", b"c2"]


def test_topic_configs_include_defaults_not_set_at_creation(kafka1: KafkaCluster) -> None:
    """describe_configs returns the effective value of configs the creator never set."""
    topic = topic_name("configs")

    async def run() -> dict[str, str | None]:
        await create_topic(client_of(kafka1), topic)
        return await topic_configs(client_of(kafka1), topic)

    configs = asyncio.run(run())
    assert configs["cleanup.policy"] == "delete"
    assert configs["min.insync.replicas"] == "1"


def test_a_missing_topic_is_not_created_by_producing_to_it(kafka1: KafkaCluster) -> None:
    """With auto-creation off, producing to an unknown topic fails after the request timeout."""
    topic = topic_name("missing")

    async def run() -> list[str]:
        with pytest.raises(UnknownTopicOrPartitionError):
            await produce(client_of(kafka1), topic, [b"x"], request_timeout_ms=2000)
        admin = AIOKafkaAdminClient(**client_of(kafka1))
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    assert topic not in asyncio.run(run())


def test_broker_logs_at_info_into_the_run_folder(kafka1: KafkaCluster) -> None:
    """Each node's Log4j output lands in <run_dir>/node-<i>/logs/server.log at INFO."""
    assert kafka1.run_dir is not None
    log = kafka1.run_dir / "node-0" / "logs" / "server.log"
    assert log == server_log(kafka1)
    assert "INFO [KafkaRaftServer nodeId=0] Kafka Server started" in log.read_text()


def test_stop_leaves_no_process_and_no_temporary_folder() -> None:
    """After `stop()` the node's process is gone and a temporary run folder is removed."""
    cluster = KafkaCluster(1).start()
    pids = [node.pid for node in cluster.nodes]
    run_dir = cluster.run_dir
    cluster.stop()
    assert all(pid is not None and process_gone(pid) for pid in pids)
    assert run_dir is not None and not run_dir.exists()


def test_a_failed_start_names_the_cause_and_carries_the_log_tail(tmp_path: Path) -> None:
    """A client port already taken: BrokerStartError says so and includes the broker's log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = KafkaCluster(1, client_port=port, run_dir=tmp_path / "run")
        with pytest.raises(BrokerStartError) as caught:
            cluster.start()
    assert "Address already in use" in caught.value.reason
    assert "\n" not in caught.value.reason
    assert "[server.log]" in caught.value.log_tail
