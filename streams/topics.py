"""Applying `topics.yaml` to a cluster and reporting how a cluster differs from it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import LeaderNotAvailableError, NodeNotReadyError, NotControllerError

from contracts.topics import TopicSpec


@dataclass(frozen=True)
class Drift:
    """How a cluster differs from topics.yaml."""

    missing: tuple[str, ...] = ()
    partition_mismatch: tuple[tuple[str, int, int], ...] = ()  # (topic, declared, actual)
    config_mismatch: tuple[tuple[str, str, str, str | None], ...] = ()  # (topic, key, want, got)

    @property
    def clean(self) -> bool:
        """True when the cluster matches the file."""
        return not (self.missing or self.partition_mismatch or self.config_mismatch)

    def lines(self) -> list[str]:
        """Human-readable description, one line per difference."""
        out = [f"missing topic: {name}" for name in self.missing]
        out += [
            f"{n}: {want} partitions declared, {got} on cluster"
            for n, want, got in self.partition_mismatch
        ]
        out += [
            f"{n}: {k}={want!r} declared, {got!r} on cluster"
            for n, k, want, got in self.config_mismatch
        ]
        return out


def effective_configs(
    spec: TopicSpec, replication: int, *, keep_forever: bool = False
) -> dict[str, str]:
    """The configs to create `spec` with at `replication` (min.insync.replicas capped by it).

    With `keep_forever`, topics with the delete policy keep their records without a time limit
    (`retention.ms=-1`); see `TopicAdmin`.
    """
    configs = dict(spec.configs)
    if "min.insync.replicas" in configs:
        configs["min.insync.replicas"] = str(min(int(configs["min.insync.replicas"]), replication))
    if keep_forever and configs.get("cleanup.policy") == "delete":
        configs["retention.ms"] = "-1"
    return configs


class TopicAdmin:
    """Creates and checks topics.yaml topics on a cluster via an aiokafka admin client.

    `keep_forever` is for runs that replay event times from the past (the demo, simulations,
    tests): records carry their event time as timestamp, and Kafka's time retention would
    delete records of a past day at its next check (the first comes 30 s after a broker
    starts), so such runs create their topics without a time limit. Production uses the
    retention of topics.yaml.
    """

    def __init__(
        self,
        client_kwargs: Mapping[str, Any],
        replication: int | None = None,
        *,
        keep_forever: bool = False,
    ) -> None:
        self._client_kwargs = dict(client_kwargs)
        self._replication = replication
        self._keep_forever = keep_forever

    def _replication_of(self, spec: TopicSpec) -> int:
        return self._replication if self._replication is not None else spec.replication

    async def apply(self, specs: Iterable[TopicSpec]) -> list[str]:
        """Create every missing topic with its explicit configs; return the names created.

        Retried while a node of the cluster is down (`with_node_retries`).
        """
        specs = list(specs)
        return await with_node_retries(lambda: self._apply(specs))

    async def _apply(self, specs: list[TopicSpec]) -> list[str]:
        admin = AIOKafkaAdminClient(**self._client_kwargs)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            new = [
                NewTopic(
                    s.name,
                    s.partitions,
                    self._replication_of(s),
                    topic_configs=effective_configs(
                        s, self._replication_of(s), keep_forever=self._keep_forever
                    ),
                )
                for s in specs
                if s.name not in existing
            ]
            if new:
                await admin.create_topics(new)
            return [t.name for t in new]
        finally:
            await admin.close()

    async def verify(self, specs: Iterable[TopicSpec]) -> Drift:
        """Compare the cluster with the specs: missing topics, partition counts, configs.

        Retried while a node of the cluster is down (`with_node_retries`).
        """
        specs = list(specs)
        return await with_node_retries(lambda: self._verify(specs))

    async def _verify(self, specs: list[TopicSpec]) -> Drift:
        admin = AIOKafkaAdminClient(**self._client_kwargs)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            present = [s for s in specs if s.name in existing]
            missing = tuple(s.name for s in specs if s.name not in existing)
            partitions_of: dict[str, int] = {}
            if present:
                for md in await admin.describe_topics([s.name for s in present]):
                    partitions_of[md["topic"]] = len(md["partitions"])
            actual_configs: dict[str, dict[str, str | None]] = {}
            if present:
                resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in present]
                for response in await admin.describe_configs(resources):
                    for resource in response.resources:
                        name, entries = resource[3], resource[4]
                        actual_configs[name] = {e[0]: e[1] for e in entries}
            partition_mismatch = tuple(
                (s.name, s.partitions, partitions_of[s.name])
                for s in present
                if partitions_of.get(s.name) != s.partitions
            )
            config_mismatch = tuple(
                (s.name, key, want, actual_configs.get(s.name, {}).get(key))
                for s in present
                for key, want in effective_configs(s, self._replication_of(s)).items()
                if actual_configs.get(s.name, {}).get(key) != want
            )
            return Drift(missing, partition_mismatch, config_mismatch)
        finally:
            await admin.close()


T = TypeVar("T")

#: How long admin work is retried while a node of the cluster does not answer.
NODE_RETRY_S = 30.0


async def with_node_retries(
    work: Callable[[], Awaitable[T]], retry_s: float = NODE_RETRY_S, backoff_s: float = 0.5
) -> T:
    """Run `work` again while it fails because one node of the cluster is down.

    The admin client sends each request to a node of its choosing, which may be a node that
    went down after the client read the cluster's metadata (`NodeNotReadyError`), or one that
    is no longer the controller or leader; another attempt picks another node. A cluster that
    cannot be reached at all fails at once (the client's start raises), and so does any other
    error. After `retry_s` the last error is raised.
    """
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return await work()
        except (NodeNotReadyError, NotControllerError, LeaderNotAvailableError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(backoff_s)
