"""server.properties of the Apache Kafka test nodes, rendered without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.kafka_properties import (
    NodePorts,
    SaslSslListener,
    render_properties,
    server_properties,
)

ONE = [NodePorts(client=9092, controller=9093)]
THREE = [
    NodePorts(client=9092, controller=9093, sasl_ssl=9094),
    NodePorts(client=9192, controller=9193, sasl_ssl=9194),
    NodePorts(client=9292, controller=9293, sasl_ssl=9294),
]
DATA = Path("/run/node/data")
REPLICATION_FACTORS = (
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
)
MIN_IN_SYNC = ("min.insync.replicas", "transaction.state.log.min.isr")


def test_a_single_node_is_broker_and_controller_on_its_loopback_ports() -> None:
    """One node: both roles, PLAINTEXT and CONTROLLER listeners on 127.0.0.1, itself as quorum."""
    props = server_properties(0, ONE, DATA)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "0"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(DATA)


@pytest.mark.parametrize(
    ("nodes", "replicas", "in_sync"), [(ONE, "1", "1"), (THREE, "3", "2")], ids=["one", "three"]
)
def test_replication_and_min_isr_follow_the_number_of_nodes(
    nodes: list[NodePorts], replicas: str, in_sync: str
) -> None:
    """One node: one replica, one in sync; three: three replicas, two in sync.

    For new topics and for the offsets and transaction logs alike.
    """
    props = server_properties(0, nodes, DATA)
    assert {name: props[name] for name in (*REPLICATION_FACTORS, *MIN_IN_SYNC)} == {
        **dict.fromkeys(REPLICATION_FACTORS, replicas),
        **dict.fromkeys(MIN_IN_SYNC, in_sync),
    }


def test_each_of_three_nodes_listens_on_its_own_ports_and_knows_all_controllers() -> None:
    """Node 2 binds its own ports; every node's quorum bootstrap lists the three controllers."""
    props = server_properties(2, THREE, DATA)
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9292,CONTROLLER://127.0.0.1:9293"
    assert props["controller.quorum.bootstrap.servers"] == (
        "127.0.0.1:9093,127.0.0.1:9193,127.0.0.1:9293"
    )


def test_test_tuning_fails_on_missing_topics_and_joins_groups_without_delay() -> None:
    """Auto-creation is off and the first group join is not delayed."""
    props = server_properties(0, ONE, DATA)
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_sasl_ssl_adds_a_scram_listener_with_a_pem_keystore() -> None:
    """With SASL_SSL on, each node adds its SASL_SSL port, SCRAM-SHA-512 and its PEM keystore."""
    keystore = Path("/run/tls/broker-keystore.pem")
    props = server_properties(1, THREE, DATA, sasl_ssl=SaslSslListener(keystore))
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:9194")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"].split(",")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert (
        "ScramLoginModule required"
        in (props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"])
    )
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(keystore)
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_sasl_ssl_needs_a_port_on_the_node() -> None:
    """Asking for SASL_SSL on a node without a SASL_SSL port is refused."""
    with pytest.raises(ValueError, match="no SASL_SSL port"):
        server_properties(0, ONE, DATA, sasl_ssl=SaslSslListener(Path("/k.pem")))


def test_overrides_replace_computed_settings() -> None:
    """Caller overrides win over both replication defaults and test tuning."""
    props = server_properties(
        0, ONE, DATA, overrides={"min.insync.replicas": "1", "num.io.threads": "8"}
    )
    assert props["min.insync.replicas"] == "1"
    assert props["num.io.threads"] == "8"


def test_a_node_id_outside_the_cluster_is_refused() -> None:
    """Node ids index the node list; one past its end is an error."""
    with pytest.raises(ValueError, match="node_id 3"):
        server_properties(3, THREE, DATA)


def test_rendering_writes_one_line_per_setting_in_order() -> None:
    """Each setting is one `name=value` line, in the order given."""
    assert render_properties({"b": "2", "a": "x y"}) == "b=2\na=x y\n"


def test_rendering_escapes_what_java_properties_would_misread() -> None:
    """Backslashes, separators in keys, newlines and non-ASCII are escaped for Properties.load."""
    text = render_properties({"k=1": "C:\\data\nnext", "path": "/tmp/café"})
    assert text == "k\\=1=C:\\\\data\\nnext\npath=/tmp/caf\\u00e9\n"
