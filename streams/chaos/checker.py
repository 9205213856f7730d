"""The chaos checker: every figure of a run, from what is on the topics after it.

`check_run(records, truth)` is pure: it takes every record of the checked topics and what the
harness knows for certain (the orders the simulator created, the hostile records it sent and
where they landed, the workers it paused and the group generations the workers logged) and
returns the figures. Reading the topics is `read_run`.

Definitions (records are at-least-once: copies of one record count once):

* a record the worker dead-lettered took no part in any decision, so inputs at a place that has
  a dead letter are left out of the invariant check;
* `lost_orders`: orders the simulator created that end neither delivered nor cancelled (an
  accepted input) nor expired (an `order_expired` output);
* `double_assignments`, `capacity_violations`, `commits_after_end`: the invariant checker's
  `double_commit`, `over_capacity` and `commit_after_terminal` (`dispatch.live.invariants`);
* `fenced_commits`: distinct commits written by a worker whose generation was already
  superseded (copies of a commit sent before count as that commit, see `_first_copies`): in
  offset order of one `assignment_committed` partition, a commit of a lower
  generation than one before it; and on the partitions a paused worker owned, a commit written
  after the pause (at or past the end offset read then) of a generation lower than the first
  one another worker joined the group with while it was paused (none: it was not evicted);
* `eta_after_delivery`: distinct `eta_update`s of an order at or after its delivery;
* `fuzz_dead_lettered`: hostile records whose first dead letter carries the expected reason
  (and, for one fix of a batch, the expected `dlq.index`); `fuzz_wrong_reason` counts the ones
  dead-lettered with another; `valid_in_dlq`: dead letters of any record that was not hostile.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from contracts.dead_letters import (
    INDEX_HEADER,
    MESSAGE_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
    header_value,
)
from contracts.topics import load_topics
from dispatch.live.invariants import check_invariants
from dispatch.live.topic_names import ASSIGNMENT_COMMITTED, ASSIGNMENT_PROPOSED, ETA_UPDATES
from simulators.hostile import HostileRecord
from streams.chaos.faults import ZombieWindow
from streams.consistency import CHECKED_TOPICS, accepted_types, usable_events
from streams.reading import TopicRecord, read_topics

#: Where a record was: topic, partition, offset.
Place = tuple[str, int, int]
#: Output topics read besides the invariant check's.
_EXTRA_TOPICS = (ASSIGNMENT_PROPOSED, ETA_UPDATES)
#: How many examples of each violation a report keeps.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Joined:
    """A worker joined the consumer group at `wall_s` (epoch seconds) with `generation`."""

    wall_s: float
    worker: int
    generation: int


@dataclass
class RunTruth:
    """What the harness knows for certain about a run.

    Attributes:
        orders: ids of the orders the simulator created.
        hostile: the hostile records sent, by the place they landed at.
        zombies: the workers paused past their session timeout.
        joins: every group join the workers logged.
    """

    orders: set[str] = field(default_factory=set)
    hostile: dict[Place, HostileRecord] = field(default_factory=dict)
    zombies: list[ZombieWindow] = field(default_factory=list)
    joins: list[Joined] = field(default_factory=list)


@dataclass
class Figures:
    """What the checker found (see the module docstring for each definition)."""

    orders: int = 0
    lost_orders: int = 0
    double_assignments: int = 0
    capacity_violations: int = 0
    commits_after_end: int = 0
    fenced_commits: int = 0
    eta_after_delivery: int = 0
    trace_mismatches: int = 0
    fuzz_sent: int = 0
    fuzz_dead_lettered: int = 0
    fuzz_wrong_reason: int = 0
    valid_in_dlq: int = 0
    commits: int = 0
    duplicate_commit_records: int = 0
    duplicate_dead_letters: int = 0
    delivered: int = 0
    cancelled: int = 0
    expired: int = 0
    fuzz_by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    fuzz_by_topic: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def example(self, kind: str, text: str) -> None:
        """Keep `text` as an example of `kind` (the first few only)."""
        kept = self.examples.setdefault(kind, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(text)


def checked_topics() -> tuple[str, ...]:
    """Every topic `check_run` needs: inputs, assignment outputs, ETAs and every dead-letter."""
    dlq = load_topics().dead_letter_topics()
    return (*CHECKED_TOPICS, *_EXTRA_TOPICS, *dlq)


async def read_run(client: Mapping[str, Any], timeout_s: float = 600.0) -> list[TopicRecord]:
    """Every record of `checked_topics()` present now."""
    return await read_topics(client, checked_topics(), timeout_s)


def check_run(records: Sequence[TopicRecord], truth: RunTruth) -> Figures:
    """The figures of one run; see the module docstring."""
    figures = Figures(orders=len(truth.orders))
    dlq_topics = {t for t in checked_topics() if t.endswith("_dlq")}
    letters = [r for r in records if r.topic in dlq_topics]
    refused = _dead_letters(letters, truth, figures)
    kept = [r for r in records if r.topic not in dlq_topics]
    inputs = [r for r in kept if (r.topic, r.partition, r.offset) not in refused]
    usable = usable_events(inputs, accepted_types())
    report = check_invariants(
        usable.events, require_terminal=False, traceparents=usable.traceparents
    )
    figures.double_assignments = len(report.violations["double_commit"])
    figures.capacity_violations = len(report.violations["over_capacity"])
    figures.commits_after_end = len(report.violations["commit_after_terminal"])
    figures.trace_mismatches = len(report.violations["trace_mismatch"])
    for kind in ("double_commit", "over_capacity", "commit_after_terminal", "trace_mismatch"):
        for text in report.violations[kind]:
            figures.example(kind, text)
    figures.commits = report.commits
    figures.duplicate_commit_records = report.duplicate_commit_records
    figures.delivered, figures.cancelled, figures.expired = (
        report.delivered,
        report.cancelled,
        report.expired,
    )
    terminal = _terminal_orders(usable.events)
    lost = sorted(truth.orders - set(terminal))
    figures.lost_orders = len(lost)
    for order_id in lost:
        figures.example("lost_order", f"{order_id} never delivered, cancelled or expired")
    delivered = {o: ts for o, (kind, ts) in terminal.items() if kind == "delivery_delivered"}
    _eta_after_delivery(kept, delivered, figures)
    _fenced_commits(kept, truth, figures)
    return figures


def _place_of(letter: TopicRecord) -> tuple[Place, str | None, str | None] | None:
    """The place a dead letter refuses, its reason and its `dlq.index` (None if unreadable)."""
    topic = header_value(letter.headers, TOPIC_HEADER)
    partition = header_value(letter.headers, PARTITION_HEADER)
    offset = header_value(letter.headers, OFFSET_HEADER)
    if topic is None or partition is None or offset is None:
        return None
    try:
        place = (topic, int(partition), int(offset))
    except ValueError:
        return None
    return (
        place,
        header_value(letter.headers, REASON_HEADER),
        header_value(letter.headers, INDEX_HEADER),
    )


def _dead_letters(letters: Sequence[TopicRecord], truth: RunTruth, figures: Figures) -> set[Place]:
    """Count the hostile records' letters and the others; return every refused place."""
    first: dict[Place, tuple[str | None, str | None]] = {}
    said: dict[Place, str] = {}
    copies = Counter[tuple[Place, str | None]]()
    for letter in letters:
        found = _place_of(letter)
        if found is None:
            figures.valid_in_dlq += 1
            figures.example("valid_in_dlq", f"{letter.topic} letter without its source's place")
            continue
        place, reason, index = found
        copies[(place, index)] += 1
        if place not in first:
            first[place] = (reason, index)
            message = header_value(letter.headers, MESSAGE_HEADER) or ""
            said[place] = f"{message[:200]}; value {(letter.value or b'')[:200]!r}"
    figures.duplicate_dead_letters = sum(n - 1 for n in copies.values())
    by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    by_topic: Counter[str] = Counter()
    for place, record in truth.hostile.items():
        figures.fuzz_sent += 1
        by_topic[record.topic] += 1
        by_reason[record.reason]["sent"] += 1
        got = first.get(place)
        expected_index = None if record.index is None else str(record.index)
        if got is None:
            figures.example("fuzz_missing", f"{record.kind} on {place}: no dead letter")
            continue
        reason, index = got
        if reason == record.reason and (expected_index is None or index == expected_index):
            figures.fuzz_dead_lettered += 1
            by_reason[record.reason]["dead_lettered"] += 1
        else:
            figures.fuzz_wrong_reason += 1
            figures.example(
                "fuzz_wrong_reason",
                f"{record.kind} on {place}: {reason} (index {index}), expected {record.reason}",
            )
    for place, (reason, _) in first.items():
        if place not in truth.hostile:
            figures.valid_in_dlq += 1
            figures.example("valid_in_dlq", f"{place}: {reason}: {said[place]}")
    figures.fuzz_by_reason = {
        reason: {"sent": c["sent"], "dead_lettered": c["dead_lettered"]}
        for reason, c in sorted(by_reason.items())
    }
    figures.fuzz_by_topic = dict(sorted(by_topic.items()))
    return set(first)


def _terminal_orders(events: Iterable[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """Each ended order's first end (kind, event time): delivered, cancelled or expired."""
    ends = [
        e
        for e in events
        if e.get("type") in ("delivery_delivered", "order_cancelled", "order_expired")
    ]
    terminal: dict[str, tuple[str, int]] = {}
    for event in sorted(ends, key=lambda e: int(e["ts_ms"])):
        terminal.setdefault(str(event["order_id"]), (str(event["type"]), int(event["ts_ms"])))
    return terminal


def _decoded(records: Iterable[TopicRecord], topic: str) -> Iterable[tuple[TopicRecord, Any]]:
    for record in records:
        if record.topic != topic or record.value is None:
            continue
        try:
            yield record, orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue


def _eta_after_delivery(
    records: Sequence[TopicRecord], delivered: Mapping[str, int], figures: Figures
) -> None:
    late: set[str] = set()
    for _, event in _decoded(records, ETA_UPDATES):
        order_id = str(event.get("order_id"))
        at = delivered.get(order_id)
        if at is not None and int(event.get("ts_ms", 0)) >= at:
            if str(event.get("event_id")) not in late:
                figures.example(
                    "eta_after_delivery", f"{event.get('event_id')}: {order_id} delivered at {at}"
                )
            late.add(str(event.get("event_id")))
    figures.eta_after_delivery = len(late)


def _first_copies(
    decoded: Sequence[tuple[TopicRecord, dict[str, Any]]],
) -> list[tuple[TopicRecord, dict[str, Any]]]:
    """`decoded` (in offset order) without the later copies of each event id.

    A commit sent again (its input read again after a restart) is the same commitment,
    whoever wrote the copy.
    """
    seen: set[str] = set()
    out = []
    for record, event in decoded:
        event_id = str(event.get("event_id"))
        if event_id not in seen:
            seen.add(event_id)
            out.append((record, event))
    return out


def _fenced_commits(records: Sequence[TopicRecord], truth: RunTruth, figures: Figures) -> None:
    fenced: set[str] = set()
    newest: dict[int, int] = {}
    commits = _first_copies(
        sorted(_decoded(records, ASSIGNMENT_COMMITTED), key=lambda x: x[0].offset)
    )
    for record, event in commits:
        generation = int(event.get("shard_generation", 0))
        before = newest.get(record.partition, generation)
        if generation < before:
            fenced.add(str(event.get("decision_id")))
            figures.example(
                "fenced_commit",
                f"{event.get('decision_id')} of generation {generation} after generation "
                f"{before} in {ASSIGNMENT_COMMITTED}[{record.partition}]",
            )
        newest[record.partition] = max(before, generation)
    for window in truth.zombies:
        later = [
            j.generation
            for j in truth.joins
            if j.worker != window.worker
            and window.paused_wall_s <= j.wall_s <= window.resumed_wall_s
        ]
        if not later:
            continue  # not evicted while paused: what it wrote after was its own to write
        superseded_below = min(later)
        for record, event in commits:
            end = window.committed_end.get(record.partition)
            generation = int(event.get("shard_generation", 0))
            if end is None or record.offset < end or generation >= superseded_below:
                continue
            if str(event.get("decision_id")) not in fenced:
                figures.example(
                    "fenced_commit",
                    f"{event.get('decision_id')} of generation {generation} written by worker "
                    f"{window.worker} after its pause (group at {superseded_below})",
                )
            fenced.add(str(event.get("decision_id")))
    figures.fenced_commits = len(fenced)
