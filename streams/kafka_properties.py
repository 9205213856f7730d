"""`server.properties` of the Apache Kafka test nodes: pure rendering, no files, no processes.

Every node is a combined broker and controller (KRaft) on loopback ports. One node gives
replication 1; three give replication 3 with `min.insync.replicas=2`, as topics.yaml asks for in
production. The quorum is dynamic (KIP-853): nodes find it through
`controller.quorum.bootstrap.servers` and the storage tool writes the initial voters at format
time (`--standalone` for one node, `--initial-controllers` for three).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.broker import LOOPBACK

SCRAM_MECHANISM = "SCRAM-SHA-512"

#: Broker settings that make a small test cluster quick and quiet, whatever its size.
TEST_TUNING: Mapping[str, str] = {
    # A missing topic must fail loudly instead of appearing with defaults.
    "auto.create.topics.enable": "false",
    # The 3 s default delays every first join of a consumer group.
    "group.initial.rebalance.delay.ms": "0",
    # Lets tests use short consumer sessions (Kafka's default floor is 6 s).
    "group.min.session.timeout.ms": "1000",
    # Fewer internal partitions: the first group or transaction of a run waits for all of them.
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.num.partitions": "10",
    # A killed node is fenced (and leaves the ISRs) after 3 s instead of 9 s.
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    # Retention, deletion and compaction act within seconds rather than minutes.
    "log.retention.check.interval.ms": "5000",
    "log.segment.delete.delay.ms": "1000",
    "log.cleaner.backoff.ms": "1000",
    # The cleaner's 128 MiB default buffer would take a quarter of a 512 MiB heap.
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    # Fewer threads on a small machine.
    "num.network.threads": "2",
    "num.io.threads": "4",
    "background.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
    "num.replica.fetchers": "1",
}


@dataclass(frozen=True)
class NodePorts:
    """The loopback ports of one node.

    Attributes:
        client: PLAINTEXT listener for clients and replication.
        controller: KRaft controller listener.
        sasl_ssl: SASL_SSL client listener, or None when the cluster offers none.
    """

    client: int
    controller: int
    sasl_ssl: int | None = None


@dataclass(frozen=True)
class SaslSslListener:
    """The broker side of the optional SASL_SSL listener (SCRAM-SHA-512 over TLS).

    Attributes:
        keystore_file: PEM file with the broker's private key and certificate chain.
    """

    keystore_file: Path


def replication_settings(node_count: int) -> dict[str, str]:
    """Replication defaults for a cluster of `node_count` nodes (min ISR 2 from three nodes)."""
    if node_count < 1:
        msg = "a cluster needs at least one node"
        raise ValueError(msg)
    min_isr = str(min(2, node_count))
    replicas = str(node_count)
    return {
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
    }


def server_properties(
    node_id: int,
    nodes: Sequence[NodePorts],
    log_dir: Path,
    *,
    sasl_ssl: SaslSslListener | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings of node `node_id` (an index into `nodes`) of a combined KRaft cluster.

    Args:
        node_id: this node's id and its index in `nodes`.
        nodes: every node's ports, in node-id order.
        log_dir: this node's data folder (`log.dirs`; the metadata log lives there too).
        sasl_ssl: offer a SASL_SSL listener with this keystore (each node's `sasl_ssl` port
            must then be set).
        overrides: settings that replace the computed ones (applied last).

    Returns:
        Property name to value, in a stable order.
    """
    if not 0 <= node_id < len(nodes):
        msg = f"node_id {node_id} is not one of the {len(nodes)} nodes"
        raise ValueError(msg)
    me = nodes[node_id]
    listeners = [f"PLAINTEXT://{LOOPBACK}:{me.client}", f"CONTROLLER://{LOOPBACK}:{me.controller}"]
    protocol_map = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": ",".join(
            f"{LOOPBACK}:{n.controller}" for n in nodes
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        **replication_settings(len(nodes)),
        **TEST_TUNING,
    }
    if sasl_ssl is not None:
        if me.sasl_ssl is None:
            msg = f"node {node_id} has no SASL_SSL port"
            raise ValueError(msg)
        listeners.append(f"SASL_SSL://{LOOPBACK}:{me.sasl_ssl}")
        protocol_map.append("SASL_SSL:SASL_SSL")
        scram = SCRAM_MECHANISM.lower()
        props.update(
            {
                "sasl.enabled.mechanisms": SCRAM_MECHANISM,
                f"listener.name.sasl_ssl.{scram}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
                "listener.name.sasl_ssl.ssl.keystore.location": str(sasl_ssl.keystore_file),
                "listener.name.sasl_ssl.ssl.client.auth": "none",
            }
        )
    props["listeners"] = ",".join(listeners)
    props["listener.security.protocol.map"] = ",".join(protocol_map)
    props.update(overrides or {})
    return props


def _escape(text: str, *, key: bool) -> str:
    """Escape `text` the way `java.util.Properties.load` reads it back."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = out.replace("\t", "\\t").replace("\f", "\\f")
    if key:
        for char in " =:#!":
            out = out.replace(char, "\\" + char)
    elif out.startswith(" "):
        out = "\\" + out
    # The broker reads the file as ISO 8859-1; anything beyond ASCII goes as \uXXXX escapes.
    return "".join(char if ord(char) < 0x7F else _unicode_escape(char) for char in out)


def _unicode_escape(char: str) -> str:
    data = char.encode("utf-16-be")
    units = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return "".join(f"\\u{unit:04x}" for unit in units)


def render_properties(props: Mapping[str, str]) -> str:
    """`props` as a Java properties file, one `name=value` line each, in the given order."""
    return "".join(
        f"{_escape(name, key=True)}={_escape(value, key=False)}\n" for name, value in props.items()
    )
