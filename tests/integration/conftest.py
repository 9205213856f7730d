"""Fixtures for tests against a real broker: Apache Kafka, started by the fixtures themselves.

Every test that needs a clean slate gets its own one-node Apache Kafka (KRaft) on free loopback
ports, with every topic of topics.yaml; tests that only need some broker share one for the
session. The broker comes from the pinned Maven artifact (`streams.kafka_dist`): Java 17+ and
Maven must be installed, and the first run fills the cache. `DISPATCHFLOW_TEST_BROKER=host:port`
points the session broker at another Kafka-compatible cluster instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.topics import load_topics
from dispatch.live.topic_names import CONSUMED_TOPICS
from dispatchflow.settings import BrokerKind, Settings
from features.from_contracts import to_feature_event
from features.store import OnlineFeatureStore
from streams.dead_letter_report import read_dead_letters
from streams.demo import local_settings
from streams.kafka_broker import KafkaCluster
from streams.kafka_config import aiokafka_kwargs
from streams.produce import ProducibleRecord, produce_records, wait_processed
from streams.reading import read_topics
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess
from tests.integration.broker_choice import external_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker for the whole session: one Apache Kafka node, or $DISPATCHFLOW_TEST_BROKER."""
    external = external_broker()
    if external:
        yield external
        return
    with KafkaCluster(1, run_dir=tmp_path_factory.mktemp("kafka-session")) as kafka:
        yield kafka.bootstrap


@dataclass
class Cluster:
    """A broker with every topic of topics.yaml, plus helpers to run workers against it."""

    bootstrap: str
    workdir: Path
    app_id: str = "dispatchflow"
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def client(self) -> dict[str, Any]:
        """Aiokafka client options."""
        return aiokafka_kwargs(Settings(broker_url=self.bootstrap))

    def settings(self, name: str = "w1", **overrides: Any) -> Settings:
        """Worker settings with their own data dir and port; no wall-clock ticks unless asked."""
        values: dict[str, Any] = {"ticker_enabled": False, **overrides}
        return local_settings(
            self.bootstrap,
            self.workdir / name / "data",
            BrokerKind.KAFKA,
            app_id=self.app_id,
            **values,
        )

    def apply_topics(self) -> None:
        """Create every topic of topics.yaml (keeping records of past days: see TopicAdmin)."""
        topics = load_topics(app_id=self.app_id).topics
        asyncio.run(TopicAdmin(self.client, replication=1, keep_forever=True).apply(topics))

    def start_worker(self, name: str = "w1", **overrides: Any) -> WorkerProcess:
        """Start a worker and wait until it is ready; it is stopped at teardown."""
        worker = WorkerProcess(self.settings(name, **overrides), self.workdir / f"{name}.log")
        self.workers.append(worker)
        return worker.start(ready_timeout_s=90)

    def produce(self, records: Sequence[ProducibleRecord]) -> None:
        """Produce records and wait for their acknowledgement."""
        asyncio.run(produce_records(self.client, records))

    def wait_caught_up(
        self, topics: Sequence[str] = CONSUMED_TOPICS, timeout_s: float = 90
    ) -> None:
        """Wait until every record of `topics` is handled by the running workers (or committed)."""
        running = [w.url for w in self.workers if w.running()]
        asyncio.run(wait_processed(self.client, self.app_id, running, topics, timeout_s=timeout_s))

    def online_features(self) -> dict[bytes, bytes]:
        """The online feature table as its changelog holds it now, partition prefixes removed."""
        topic = f"{self.app_id}-online_features-changelog"
        state: dict[bytes, bytes] = {}
        for r in asyncio.run(read_topics(self.client, [topic])):
            key = bytes(r.key or b"").split(b"|", 1)[1]
            if r.value is None:
                state.pop(key, None)
            else:
                state[key] = bytes(r.value)
        return state

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter of every input topic so far."""
        dlq = load_topics(app_id=self.app_id).dead_letter_topics()
        return asyncio.run(read_dead_letters(self.client, dlq))


def features_fed(events: Sequence[dict[str, Any]], merchant_id: str = "m1") -> dict[bytes, bytes]:
    """The online feature table a worker should hold after applying `events` in order.

    Events that name only their order get `merchant_id`; every event must map to a feature event.
    """
    table: dict[bytes, bytes] = {}
    store = OnlineFeatureStore(table)
    for event in events:
        feature_event = to_feature_event(event, lambda _order_id: merchant_id)
        assert feature_event is not None, event["type"]
        store.apply(feature_event)
    return table


class BrokerPool:
    """Fresh one-node Kafka clusters, the next one starting while a test uses the current one.

    Starting a node takes seconds of wall time, most of it the JVM waking up; overlapping that
    with the previous test keeps a broker per test affordable. Every cluster is used by one
    test only and stopped after it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._next: concurrent.futures.Future[KafkaCluster] | None = None

    def _start(self) -> concurrent.futures.Future[KafkaCluster]:
        self._count += 1
        run_dir = self.root / f"kafka-{self._count}"
        return self._pool.submit(lambda: KafkaCluster(1, run_dir=run_dir).start())

    def take(self) -> KafkaCluster:
        """A started cluster of its own; the next one starts in the background."""
        current = self._next if self._next is not None else self._start()
        self._next = self._start()
        return current.result()

    def close(self) -> None:
        """Stop the spare cluster, if one was started."""
        if self._next is not None:
            with contextlib.suppress(Exception):
                self._next.result().stop()
        self._pool.shutdown()


@pytest.fixture(scope="session")
def broker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerPool]:
    """The session's source of fresh Kafka nodes."""
    pool = BrokerPool(tmp_path_factory.mktemp("kafka-pool"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def cluster(tmp_path: Path, broker_pool: BrokerPool) -> Iterator[Cluster]:
    """A fresh Apache Kafka node with all topics, for tests that need a clean slate.

    Workers a test leaves running are killed at its end (a test that cares how a worker
    stops stops it itself), at the same time as the broker.
    """
    kafka = broker_pool.take()
    c = Cluster(kafka.bootstrap, tmp_path)
    try:
        c.apply_topics()
        yield c
    finally:
        for worker in c.workers:
            worker.kill()
        kafka.stop()
