"""Hostile records: each one drawn during a city run reaches its dead-letter reason, nothing else.

A small town runs through the worker core in-process while hostile records of every kind are
handed to the same core between its steps (the harness's interleaving, without Kafka).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contracts.rejections import EventRejected, PartRejected
from dispatch.lifecycle import Source
from dispatch.live.worker import Record
from simulators.city import SimRecord, run_simulation, small_town
from simulators.hostile import INPUT_TOPICS, KINDS, HostileInput, HostileRecord
from simulators.inprocess import InProcessDispatch

#: Offsets of hostile records, far above those of the run's own records.
HOSTILE_OFFSET = 10**9
PER_STEP = 25


@dataclass
class HostileRun:
    """What one run did: the hostile records by place, and every dead letter by place."""

    sent: dict[tuple[str, int], HostileRecord] = field(default_factory=dict)
    letters: dict[tuple[str, int], list[tuple[str, int | None]]] = field(default_factory=dict)

    def note(self, rejections: Sequence[tuple[Source, EventRejected]]) -> None:
        """Remember the dead letters of some effects."""
        for source, error in rejections:
            index = error.index if isinstance(error, PartRejected) else None
            place = (source.topic, source.offset)
            self.letters.setdefault(place, []).append((error.reason.value, index))


class Interleaved:
    """The in-process core with hostile records handed to it before each step's inputs."""

    def __init__(self, root: Path, seed: int, cutoff_ms: int) -> None:
        self.inner = InProcessDispatch(workdir=root)
        self.hostile = HostileInput(seed, ("dr5r", "dr72"))
        self.cutoff_ms = cutoff_ms
        self.run = HostileRun()

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """Hostile records first, then the step itself."""
        unknown = until_ts_ms < self.cutoff_ms
        for record in self.hostile.records(PER_STEP, until_ts_ms, unknown_orders=unknown):
            offset = HOSTILE_OFFSET + len(self.run.sent)
            self.run.sent[(record.topic, offset)] = record
            effects = self.inner.core.handle(
                Record(
                    record.topic,
                    0,
                    offset,
                    record.key,
                    record.value,
                    record.ts_ms,
                    record.headers,
                )
            )
            assert effects.outputs == [], f"{record.kind} on {record.topic} was used"
            self.run.note(effects.rejections)
        outputs = self.inner.run_until(inputs, until_ts_ms)
        self.hostile.observe(inputs)
        return outputs


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    """A small town with hostile records interleaved, run once for the module."""
    config = small_town(seed=3)
    # Events about unknown orders wait 300 s for their order: none in the last 10 minutes.
    driver = Interleaved(
        tmp_path_factory.mktemp("hostile"), 11, config.scenario_end_ts_ms - 600_000
    )
    run_simulation(config, driver, progress=False)
    driver.run.note(driver.inner.dead_letters)
    driver.inner.close()
    yield driver.run


def test_every_hostile_record_is_dead_lettered_with_its_reason(hostile_run: HostileRun) -> None:
    """Each hostile record has a dead letter, the first with the expected reason and index."""
    wrong = {
        place: (record.kind, record.reason, record.index, hostile_run.letters.get(place))
        for place, record in hostile_run.sent.items()
        if hostile_run.letters.get(place, [("", None)])[0] != (record.reason, record.index)
    }
    assert wrong == {}


def test_no_record_of_the_run_itself_is_dead_lettered(hostile_run: HostileRun) -> None:
    """Hostile records change nothing for valid ones: none of them reaches a dead-letter topic."""
    assert [p for p in hostile_run.letters if p[1] < HOSTILE_OFFSET] == []


def test_every_kind_reaches_the_run(hostile_run: HostileRun) -> None:
    """Every hostile kind is drawn at least once in a small town."""
    assert set(KINDS) <= {r.kind for r in hostile_run.sent.values()}


def test_every_input_topic_gets_hostile_records(hostile_run: HostileRun) -> None:
    """Every input topic gets at least 5 % of the hostile records."""
    counts = Counter(r.topic for r in hostile_run.sent.values())
    assert min(counts[t] for t in INPUT_TOPICS) >= 0.05 * len(hostile_run.sent)


def test_the_same_seed_draws_the_same_records() -> None:
    """Two generators with one seed draw identical records."""
    a = HostileInput(5, ("dr5r",)).records(200, 1_781_625_600_000)
    b = HostileInput(5, ("dr5r",)).records(200, 1_781_625_600_000)
    assert a == b
