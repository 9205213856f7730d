"""`dispatchflow dlq list|replay` on a real broker, against letters a worker dead-lettered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.dead_letters import DeadLetter, DeadLetterLimits
from simulators.synthetic import Record
from streams.produce import produce_records
from streams.reading import TopicRecord, read_topics
from tests.integration.conftest import Cluster, embedded_cluster
from tests.integration.polling import wait_for
from tests.unit.dispatchflow.cli_process import run_cli

T0_MS = 1_795_000_000_000
BAD_VALUE = b'{"type": "order_created", "v": 1}'
BAD_HEADERS = (
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("dlq.reason", b"a header of the producer's own"),
)


@dataclass(frozen=True)
class BadRecord(Record):
    """A record with headers."""

    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Setup:
    """The broker, its worker, and where the worker's dead letter's source record is."""

    cluster: Cluster
    partition: int
    offset: int


def source_records(cluster: Cluster, topic: str, partition: int) -> list[TopicRecord]:
    """Every record of one partition of `topic` now."""
    return [
        r for r in asyncio.run(read_topics(cluster.client, [topic])) if r.partition == partition
    ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A worker that dead-lettered one schema-invalid order_events record with headers."""
    with embedded_cluster(Path(tmp_path_factory.mktemp("dlq"))) as cluster:
        cluster.start_worker()
        cluster.produce([BadRecord("order_events", b"dr5r", BAD_VALUE, T0_MS, None, BAD_HEADERS)])
        (source,) = [r for r in asyncio.run(read_topics(cluster.client, ["order_events"]))]
        wait_for(
            lambda: [x for x in cluster.dead_letters() if x["source_topic"] == "order_events"],
            lambda letters: len(letters) >= 1,
            timeout_s=60,
        )
        yield Setup(cluster, source.partition, source.offset)


def ping_letter(offset: int, value: bytes, reason: str, index: int | None = None) -> DeadLetter:
    """A dead letter of a courier_pings record (partition 2, offset `offset`)."""
    return DeadLetter(
        source_topic="courier_pings",
        source_partition=2,
        source_offset=offset,
        key=b"gw-1",
        value=value,
        reason=reason,
        message="m",
        index=index,
    )


def list_json(setup: Setup, *args: str) -> dict:
    """`dlq list --json` output."""
    result = run_cli("dlq", "list", "--broker", setup.cluster.bootstrap, "--json", *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_letter_the_worker_dead_lettered_is_listed_with_its_source(setup: Setup) -> None:
    """`dlq list` names the source topic, partition, offset and the reason."""
    letters = list_json(setup, "--topic", "order_events")["letters"]
    found = [x for x in letters if x["source_offset"] == setup.offset]
    assert len(found) == 1
    assert found[0]["source_topic"] == "order_events"
    assert found[0]["source_partition"] == setup.partition
    assert found[0]["reason"] == "schema_invalid"
    assert found[0]["value_preview"] == BAD_VALUE.decode()


def test_the_list_table_shows_position_reason_and_value(setup: Setup) -> None:
    """The table line has the source position, the reason and the start of the value."""
    result = run_cli(
        "dlq", "list", "--broker", setup.cluster.bootstrap, "--reason", "schema_invalid"
    )
    line = next(
        x for x in result.stdout.splitlines() if f"[{setup.partition}]@{setup.offset} " in x
    )
    assert line.startswith("order_events[") and "schema_invalid" in line
    assert BAD_VALUE.decode() in line


def test_a_reason_filter_leaves_other_reasons_out(setup: Setup) -> None:
    """`--reason` that no letter has lists nothing."""
    assert list_json(setup, "--reason", "duplicate_event")["total"] == 0


def test_a_dry_run_produces_nothing(setup: Setup) -> None:
    """`replay --dry-run` says what it would replay and leaves the source topic as it was."""
    before = len(source_records(setup.cluster, "order_events", setup.partition))
    window = ("--offset-from", str(setup.offset), "--offset-to", str(setup.offset))
    result = run_cli(
        "dlq",
        "replay",
        "--topic",
        "order_events",
        "--dry-run",
        *window,
        "--broker",
        setup.cluster.bootstrap,
    )
    assert result.returncode == 0, result.stderr
    assert "would replay 1 dead letters" in result.stdout
    assert len(source_records(setup.cluster, "order_events", setup.partition)) == before


def test_replay_puts_the_original_record_back_on_its_source_partition(setup: Setup) -> None:
    """The replayed record has the original key, value and headers (dlq.* renamed back)."""
    before = {r.offset for r in source_records(setup.cluster, "order_events", setup.partition)}
    window = ("--offset-from", str(setup.offset), "--offset-to", str(setup.offset))
    result = run_cli(
        "dlq", "replay", "--topic", "order_events", *window, "--broker", setup.cluster.bootstrap
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 1 dead letters" in result.stdout
    after = source_records(setup.cluster, "order_events", setup.partition)
    (replayed,) = [r for r in after if r.offset not in before]
    assert (replayed.key, replayed.value, replayed.headers) == (b"dr5r", BAD_VALUE, BAD_HEADERS)


def test_truncated_and_per_fix_letters_are_refused_and_counted(setup: Setup) -> None:
    """Replay refuses a letter cut to fit and a single fix, says how many, exits 1."""
    letters = [
        ping_letter(1, b"x" * 64, "undecodable"),
        ping_letter(2, b"{}", "schema_invalid", index=3),
        ping_letter(3, b"{}", "undecodable"),
    ]
    cut = [letters[0].record(DeadLetterLimits(max_value_bytes=16))]
    records = cut + [letter.record() for letter in letters[1:]]
    asyncio.run(
        produce_records(
            setup.cluster.client,
            [
                BadRecord(r.topic, r.key, r.value or b"", T0_MS, None, tuple(r.headers))
                for r in records
            ],
        )
    )
    result = run_cli(
        "dlq", "replay", "--topic", "courier_pings", "--broker", setup.cluster.bootstrap
    )
    assert result.returncode == 1, result.stderr
    assert "replayed 1 dead letters of courier_pings_dlq to courier_pings" in result.stdout
    assert "refused 1 truncated" in result.stdout
    assert "refused 1 per-fix" in result.stdout
