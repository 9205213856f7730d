"""`topics.yaml`: the declaration of every topic, loaded and checked against its own rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from contracts.schemas import schema_names

#: topics.yaml as shipped in this package (package data, so it is in the wheel and the image;
#: the repository's root `topics.yaml` is a link to it).
DEFAULT_TOPICS_FILE = Path(__file__).resolve().parent / "topics.yaml"

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
        """Topics that upstream apps produce to: those with a dead-letter topic, not internal."""
        return [t for t in self.topics if t.dead_letter and not t.internal]

    def dead_letter_topics(self) -> list[str]:
        """Every dead-letter topic: one per input topic and per internal topic the worker reads."""
        return [t.dead_letter for t in self.topics if t.dead_letter]


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
