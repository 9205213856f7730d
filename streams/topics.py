"""`topics.yaml`: loading it, checking its own rules, applying and verifying it on a cluster."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.schemas import schema_names

#: topics.yaml at the root of the source tree.
DEFAULT_TOPICS_FILE = Path(__file__).resolve().parent.parent / "topics.yaml"

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_INTERNAL_NAME = re.compile(r"^[a-z][a-z0-9_.-]*-(__assignor-__leader|[a-z_]+-changelog)$")
#: Keys that put a record in a shard's partition, or a courier's; each group is co-partitioned.
COPARTITION_KEYS = ("shard", "courier_id", "order_id", "decision_id")


class TopicsFileError(ValueError):
    """topics.yaml is malformed or breaks one of its rules."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as declared in topics.yaml."""

    name: str
    partitions: int
    replication: int
    key: str
    value_schemas: tuple[str, ...]
    configs: Mapping[str, str]
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    internal: bool = False
    dead_letter: str | None = None
    dead_letter_of: str | None = None
    changelog_of: str | None = None


@dataclass(frozen=True)
class TopicsFile:
    """All topic specs of one topics.yaml, with `${app_id}` expanded."""

    topics: tuple[TopicSpec, ...]
    by_name: Mapping[str, TopicSpec] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {t.name: t for t in self.topics})

    def __getitem__(self, name: str) -> TopicSpec:
        try:
            return self.by_name[name]
        except KeyError:
            msg = f"topic {name!r} is not declared in topics.yaml"
            raise KeyError(msg) from None

    def inputs(self) -> list[TopicSpec]:
        """Topics that upstream apps produce to (those with a dead-letter topic)."""
        return [t for t in self.topics if t.dead_letter]


def load_topics(path: Path = DEFAULT_TOPICS_FILE, *, app_id: str = "dispatchflow") -> TopicsFile:
    """Parse topics.yaml, expand `${app_id}`, and raise `TopicsFileError` if malformed."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8").replace("${app_id}", app_id))
    except (OSError, yaml.YAMLError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise TopicsFileError(msg) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("topics"), list):
        msg = f"{path}: expected a mapping with a `topics` list"
        raise TopicsFileError(msg)
    defaults = raw.get("defaults") or {}
    default_configs = {str(k): str(v) for k, v in (defaults.get("configs") or {}).items()}
    specs = []
    for entry in raw["topics"]:
        try:
            configs = dict(default_configs)
            configs.update({str(k): str(v) for k, v in (entry.get("configs") or {}).items()})
            specs.append(
                TopicSpec(
                    name=str(entry["name"]),
                    partitions=int(entry["partitions"]),
                    replication=int(entry.get("replication", defaults.get("replication", 1))),
                    key=str(entry["key"]),
                    value_schemas=tuple(entry.get("value_schemas") or ()),
                    configs=configs,
                    producers=tuple(entry.get("producers") or ()),
                    consumers=tuple(entry.get("consumers") or ()),
                    internal=bool(entry.get("internal", False)),
                    dead_letter=entry.get("dead_letter"),
                    dead_letter_of=entry.get("dead_letter_of"),
                    changelog_of=entry.get("changelog_of"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{path}: bad topic entry {entry!r}: {exc!r}"
            raise TopicsFileError(msg) from exc
    return TopicsFile(tuple(specs))


def rule_violations(topics: TopicsFile) -> list[str]:
    """Every broken rule of the file: names, keys, schemas, dead letters and co-partitioning."""
    problems: list[str] = []
    seen: set[str] = set()
    known_schemas = set(schema_names())
    for t in topics.topics:
        if t.name in seen:
            problems.append(f"{t.name}: declared twice")
        seen.add(t.name)
        if not (_SNAKE.match(t.name) or (t.internal and _INTERNAL_NAME.match(t.name))):
            problems.append(f"{t.name}: name is not snake_case")
        if t.partitions < 1 or t.replication < 1:
            problems.append(f"{t.name}: partitions and replication must be >= 1")
        if not t.key:
            problems.append(f"{t.name}: no key declared")
        policy = t.configs.get("cleanup.policy")
        if policy not in ("delete", "compact", "compact,delete"):
            problems.append(f"{t.name}: cleanup.policy must be delete, compact or compact,delete")
        if policy == "delete" and "retention.ms" not in t.configs:
            problems.append(f"{t.name}: delete policy without retention.ms")
        unknown = [s for s in t.value_schemas if s not in known_schemas]
        problems.extend(f"{t.name}: unknown value schema {s!r}" for s in unknown)
        if t.dead_letter:
            dlq = topics.by_name.get(t.dead_letter)
            if dlq is None:
                problems.append(f"{t.name}: dead-letter topic {t.dead_letter} is not declared")
            elif dlq.dead_letter_of != t.name:
                problems.append(f"{t.dead_letter}: must say dead_letter_of: {t.name}")
            if t.dead_letter != f"{t.name}_dlq":
                problems.append(f"{t.name}: dead-letter topic must be named {t.name}_dlq")
        if t.changelog_of and policy != "compact":
            problems.append(f"{t.name}: changelogs must be compacted")
    groups = {t.partitions for t in topics.topics if t.key in COPARTITION_KEYS}
    if len(groups) > 1:
        detail = ", ".join(
            f"{t.name}={t.partitions}" for t in topics.topics if t.key in COPARTITION_KEYS
        )
        problems.append(f"co-partitioned topics have different partition counts: {detail}")
    return problems


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


def effective_configs(spec: TopicSpec, replication: int) -> dict[str, str]:
    """The configs to create `spec` with at `replication` (min.insync.replicas capped by it)."""
    configs = dict(spec.configs)
    if "min.insync.replicas" in configs:
        configs["min.insync.replicas"] = str(min(int(configs["min.insync.replicas"]), replication))
    return configs


class TopicAdmin:
    """Creates and checks topics.yaml topics on a cluster via an aiokafka admin client."""

    def __init__(self, client_kwargs: Mapping[str, Any], replication: int | None = None) -> None:
        self._client_kwargs = dict(client_kwargs)
        self._replication = replication

    def _replication_of(self, spec: TopicSpec) -> int:
        return self._replication if self._replication is not None else spec.replication

    async def apply(self, specs: Iterable[TopicSpec]) -> list[str]:
        """Create every missing topic with its explicit configs; return the names created."""
        admin = AIOKafkaAdminClient(**self._client_kwargs)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            new = [
                NewTopic(
                    s.name,
                    s.partitions,
                    self._replication_of(s),
                    topic_configs=effective_configs(s, self._replication_of(s)),
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
        """Compare the cluster with the specs: missing topics, partition counts, configs."""
        specs = list(specs)
        admin = AIOKafkaAdminClient(**self._client_kwargs)
        await admin.start()
        try:
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
