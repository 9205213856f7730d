"""What `KafkaCluster` would run, checked without starting Java: ids, storage format, JVM."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from streams.kafka_broker import KafkaCluster, kafka_uuid
from streams.kafka_dist import LOG4J2_CONFIG, KafkaDist


@pytest.fixture
def dist(tmp_path: Path) -> KafkaDist:
    """A stand-in classpath whose broker jar holds only the storage tool (nothing is started)."""
    stand_in = KafkaDist(version="4.3.2", lib_dir=tmp_path / "lib")
    stand_in.lib_dir.mkdir()
    with zipfile.ZipFile(stand_in.broker_jar, "w") as jar:
        jar.writestr("kafka/tools/StorageTool.class", b"")
    return stand_in


def _prepared(
    tmp_path: Path, dist: KafkaDist, nodes: int, *, sasl_ssl: bool = False
) -> KafkaCluster:
    cluster = KafkaCluster(nodes, run_dir=tmp_path / "run", dist=dist, sasl_ssl=sasl_ssl)
    cluster.prepare(dist, "java")
    return cluster


def test_kafka_uuids_look_like_kafkas_own() -> None:
    """22 URL-safe base64 characters, never starting with "-" (a command-line flag)."""
    ids = {kafka_uuid() for _ in range(500)}
    assert len(ids) == 500
    for text in ids:
        assert len(text) == 22 and not text.startswith("-")
        assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_one_node_is_formatted_as_a_standalone_quorum(tmp_path: Path, dist: KafkaDist) -> None:
    """A single node's storage is formatted with `--standalone` and the cluster id."""
    cluster = _prepared(tmp_path, dist, 1)
    argv = cluster.format_argv(cluster.nodes[0], dist, "java")
    assert argv[argv.index("-cp") + 2 : argv.index("-cp") + 4] == [
        "kafka.tools.StorageTool",
        "format",
    ]
    assert argv[argv.index("--cluster-id") + 1] == cluster.cluster_id
    assert "--standalone" in argv and "--initial-controllers" not in argv


def test_three_nodes_are_formatted_with_the_same_three_initial_voters(
    tmp_path: Path, dist: KafkaDist
) -> None:
    """Each node gets the same `--initial-controllers id@host:port:dir-id` list of three."""
    cluster = _prepared(tmp_path, dist, 3)
    lists = set()
    for node in cluster.nodes:
        argv = cluster.format_argv(node, dist, "java")
        lists.add(argv[argv.index("--initial-controllers") + 1])
    (voters,) = lists
    expected = [
        f"{n.node_id}@127.0.0.1:{n.ports.controller}:{n.directory_id}" for n in cluster.nodes
    ]
    assert voters.split(",") == expected


def test_sasl_ssl_creates_the_scram_user_at_format_time(tmp_path: Path, dist: KafkaDist) -> None:
    """With SASL_SSL the storage tool adds the SCRAM-SHA-512 user the access details name."""
    cluster = _prepared(tmp_path, dist, 1, sasl_ssl=True)
    access = cluster.sasl_ssl
    assert access is not None
    argv = cluster.format_argv(cluster.nodes[0], dist, "java")
    assert argv[argv.index("--add-scram") + 1] == (
        f"SCRAM-SHA-512=[name={access.username},password={access.password}]"
    )
    assert access.ca_file.is_file()


def test_nodes_run_kafka_with_a_small_heap_and_the_shipped_logging(
    tmp_path: Path, dist: KafkaDist
) -> None:
    """`kafka.Kafka server.properties` with -Xmx512m, serial GC, our Log4j config, logs per node."""
    cluster = _prepared(tmp_path, dist, 1)
    node = cluster.nodes[0]
    argv = node.process.argv
    assert argv[-2:] == ["kafka.Kafka", str(node.properties_file)]
    assert "-Xmx512m" in argv and "-XX:+UseSerialGC" in argv
    assert f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}" in argv
    assert f"-Dkafka.logs.dir={node.logs_dir}" in argv
    assert node.properties_file.read_text().startswith("process.roles=broker,controller\n")


def test_the_password_stays_out_of_the_access_repr(tmp_path: Path, dist: KafkaDist) -> None:
    """Printing the SASL_SSL access details does not print the password."""
    cluster = _prepared(tmp_path, dist, 1, sasl_ssl=True)
    assert cluster.sasl_ssl is not None
    assert cluster.sasl_ssl.password not in repr(cluster.sasl_ssl)


@pytest.mark.parametrize("nodes", [0, 2, 4])
def test_only_one_or_three_nodes_are_offered(nodes: int) -> None:
    """Two nodes cannot keep a quorum through a failure; other sizes are refused."""
    with pytest.raises(ValueError, match="1 or 3 nodes"):
        KafkaCluster(nodes)
