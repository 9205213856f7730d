"""Which broker the integration tests run on: Apache Kafka started by the fixtures, or another.

Set `DISPATCHFLOW_TEST_BROKER=host:port` to run the session-scoped tests against another
Kafka-compatible broker; tests that need a fresh broker always start an Apache Kafka node.
"""

from __future__ import annotations

import os

from streams.kafka_dist import pom_kafka_version

#: Set to host:port to run the session-scoped tests against another Kafka-compatible broker.
EXTERNAL_BROKER_ENV = "DISPATCHFLOW_TEST_BROKER"


def external_broker() -> str | None:
    """The bootstrap address from the environment, or None to start Apache Kafka."""
    return os.environ.get(EXTERNAL_BROKER_ENV) or None


def broker_description() -> str:
    """One line naming the integration tests' broker and, for Apache Kafka, its version."""
    external = external_broker()
    if external:
        return f"integration broker: {external} (from {EXTERNAL_BROKER_ENV})"
    return f"integration broker: Apache Kafka {pom_kafka_version()} (KRaft, started per test)"
