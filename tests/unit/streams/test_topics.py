import asyncio
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from contracts.topics import COPARTITION_KEYS, TopicsFileError, load_topics, rule_violations
from streams.topics import effective_configs, with_node_retries

EXPECTED_INPUTS = {
    "order_events",
    "merchant_ready",
    "courier_pings",
    "courier_events",
    "delivery_events",
    "assignment_responses",
    "dispatch_control",
}


def test_the_checked_in_file_breaks_no_rule() -> None:
    """topics.yaml passes every rule (names, keys, schemas, dead letters, co-partitioning)."""
    assert rule_violations(load_topics()) == []


def test_every_input_has_its_dead_letter_topic() -> None:
    """Each input topic names `<topic>_dlq`, which is declared and points back to it."""
    topics = load_topics()
    assert {t.name for t in topics.inputs()} == EXPECTED_INPUTS
    for topic in topics.inputs():
        assert topics[f"{topic.name}_dlq"].dead_letter_of == topic.name


def test_shard_and_courier_keyed_topics_share_one_partition_count() -> None:
    """Every co-partitioned topic (changelogs included) has the same number of partitions."""
    topics = load_topics()
    counts = {t.partitions for t in topics.topics if t.key in COPARTITION_KEYS}
    assert len(counts) == 1


def test_every_table_has_a_compacted_changelog() -> None:
    """The worker's tables each have a declared, compacted changelog topic."""
    topics = load_topics(app_id="myapp")
    for table in (
        "orders",
        "order_orphans",
        "couriers",
        "courier_directory",
        "decisions",
        "dispatch_controls",
    ):
        spec = topics[f"myapp-{table}-changelog"]
        assert spec.changelog_of == table
        assert spec.configs["cleanup.policy"] == "compact"


def test_rules_catch_a_broken_file(tmp_path: Path) -> None:
    """A file with a camelCase name and mismatched partitions fails the rules, naming both."""
    path = tmp_path / "topics.yaml"
    path.write_text(
        """
topics:
  - {name: orderEvents, partitions: 8, key: shard, value_schemas: [],
     configs: {cleanup.policy: compact}}
  - {name: courier_events, partitions: 4, key: courier_id, value_schemas: [],
     configs: {cleanup.policy: compact}}
"""
    )
    problems = rule_violations(load_topics(path))
    assert any("orderEvents: name is not snake_case" in p for p in problems)
    assert any("different partition counts" in p for p in problems)


def test_a_malformed_file_raises_a_clear_error(tmp_path: Path) -> None:
    """Malformed YAML is a TopicsFileError that names the file."""
    path = tmp_path / "topics.yaml"
    path.write_text("topics: [{name: x}]")
    with pytest.raises(TopicsFileError, match=r"topics\.yaml"):
        load_topics(path)


def test_min_insync_replicas_never_exceeds_replication() -> None:
    """On a one-broker cluster the effective min.insync.replicas is capped at 1."""
    spec = load_topics()["order_events"]
    assert spec.configs["min.insync.replicas"] == "2"
    assert effective_configs(spec, replication=1)["min.insync.replicas"] == "1"


def test_admin_work_is_retried_while_a_node_is_down() -> None:
    """A request that met a node that went down is sent again, and its answer returned."""
    failures = [NodeNotReadyError("node 2 not ready"), NodeNotReadyError("node 2 not ready")]

    async def work() -> str:
        if failures:
            raise failures.pop()
        return "answered"

    assert asyncio.run(with_node_retries(work, retry_s=5.0, backoff_s=0.0)) == "answered"


def test_admin_work_gives_up_on_a_node_after_the_retry_time() -> None:
    """A node that stays down ends in its error once the retry time has passed."""

    async def work() -> str:
        raise NodeNotReadyError("node 2 not ready")

    with pytest.raises(NodeNotReadyError):
        asyncio.run(with_node_retries(work, retry_s=0.0, backoff_s=0.0))


def test_admin_work_is_not_retried_on_other_errors() -> None:
    """Only errors of one node are retried; anything else is raised at the first attempt."""
    attempts: list[int] = []

    async def work() -> str:
        attempts.append(1)
        raise KafkaConnectionError("no broker")

    with pytest.raises(KafkaConnectionError):
        asyncio.run(with_node_retries(work, retry_s=5.0, backoff_s=0.0))
    assert len(attempts) == 1
