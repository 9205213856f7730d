"""A broker on this machine of either kind, for the demo, benchmarks and harnesses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from dispatchflow.settings import BrokerKind
from streams.broker import EmbeddedBroker
from streams.kafka_broker import KafkaCluster


@contextlib.contextmanager
def local_broker(kind: BrokerKind, run_dir: Path | None = None, nodes: int = 1) -> Iterator[str]:
    """Start a broker of `kind` on free loopback ports; yield its bootstrap address; stop it.

    `embedded` is the Tansu binary (memory storage, no Java); `kafka` is Apache Kafka from the
    Maven cache (`nodes` 1 or 3, logs under `run_dir` when given).
    """
    if kind is BrokerKind.EMBEDDED:
        with EmbeddedBroker() as embedded:
            yield embedded.bootstrap
        return
    with KafkaCluster(nodes, run_dir=run_dir) as kafka:
        yield kafka.bootstrap
