"""Apache Kafka clusters for the runner's own tests: one node, three nodes, one with SASL_SSL.

Each is started once per module and stopped at its end. Starting needs Java 17+; the first use
on a machine also runs Maven once to fill the broker cache (see streams.kafka_dist).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka_broker import KafkaCluster


@pytest.fixture(scope="module")
def kafka1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka node (replication 1), its run folder under pytest's temp dir."""
    with KafkaCluster(1, run_dir=tmp_path_factory.mktemp("kafka1")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def kafka3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes (replication 3, min ISR 2)."""
    with KafkaCluster(3, run_dir=tmp_path_factory.mktemp("kafka3")) as cluster:
        yield cluster


@pytest.fixture
def healthy_kafka3(kafka3: KafkaCluster) -> Iterator[KafkaCluster]:
    """The three-node cluster; any node a test killed is restarted and caught up afterwards."""
    yield kafka3
    for node in kafka3.nodes:
        if not node.running():
            kafka3.restart_node(node.node_id)
    kafka3.wait_fully_replicated(timeout_s=60)


@pytest.fixture(scope="module")
def kafka_sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka node that also offers SASL_SSL (SCRAM-SHA-512, a CA made for the run)."""
    with KafkaCluster(1, sasl_ssl=True, run_dir=tmp_path_factory.mktemp("kafka-sasl")) as cluster:
        yield cluster


def server_log(cluster: KafkaCluster, node: int = 0) -> Path:
    """The Log4j log file of one node."""
    return cluster.log_dirs[node] / "server.log"
