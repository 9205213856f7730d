"""Fixtures for tests against a real Kafka-compatible broker (the embedded one by default)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.topics import load_topics
from dispatchflow.settings import Settings
from features.from_contracts import to_feature_event
from features.store import OnlineFeatureStore
from streams.broker import EmbeddedBroker
from streams.dead_letter_report import read_dead_letters
from streams.demo import CONSUMED_TOPICS, embedded_settings
from streams.kafka_config import aiokafka_kwargs
from streams.produce import ProducibleRecord, produce_records, wait_processed
from streams.reading import read_topics
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

#: Set to host:port to run the session-scoped tests against another Kafka-compatible broker.
EXTERNAL_BROKER_ENV = "DISPATCHFLOW_TEST_BROKER"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A broker for the whole session: a fresh embedded one, or $DISPATCHFLOW_TEST_BROKER."""
    external = os.environ.get(EXTERNAL_BROKER_ENV)
    if external:
        yield external
        return
    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap


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
        return embedded_settings(
            self.bootstrap, self.workdir / name / "data", app_id=self.app_id, **values
        )

    def apply_topics(self) -> None:
        """Create every topic of topics.yaml."""
        topics = load_topics(app_id=self.app_id).topics
        asyncio.run(TopicAdmin(self.client, replication=1).apply(topics))

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
        running = [
            w.url for w in self.workers if w.process is not None and w.process.poll() is None
        ]
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


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh embedded broker with all topics, for tests that need a clean slate."""
    with EmbeddedBroker() as embedded:
        c = Cluster(embedded.bootstrap, tmp_path)
        c.apply_topics()
        try:
            yield c
        finally:
            for worker in c.workers:
                worker.stop(timeout_s=20)
