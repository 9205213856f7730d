"""Dead letters read back (`dispatchflow dlq list`) and put back on their source topic (`replay`).

A dead letter (`contracts.dead_letters`) keeps its source record's key, value and headers and
adds `dlq.*` headers; a source header whose name clashed with ours is kept as `original.<name>`.
Replaying a letter produces the source record again, to the source topic and partition the
letter names: the same key and value, its headers without any `dlq.*` one and with each
`original.<name>` renamed back to `<name>`, and the dead letter's record timestamp (the time it
was dead-lettered, close to the source record's). A letter that does not hold the whole source
record is refused: one whose key, value or headers were cut to fit (`dlq.truncated`), and one
that holds a single fix of a ping batch rather than the record (`dlq.index`).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.dead_letters import CLASH_PREFIX, LetterHeaders
from streams.reading import TopicRecord, read_topics

#: Prefix of the headers a dead letter adds.
DLQ_PREFIX = "dlq."
#: Suffix of every dead-letter topic.
DLQ_SUFFIX = "_dlq"
#: Characters of a value shown by `Letter.preview`.
PREVIEW_CHARS = 60


class Refusal(enum.StrEnum):
    """Why a dead letter cannot be replayed."""

    TRUNCATED = "truncated"  # key, value or headers were cut to fit (`dlq.truncated`)
    PER_FIX = "per_fix"  # one fix of a ping batch, not the source record (`dlq.index`)
    NO_SOURCE = "no_source"  # no readable `dlq.topic` / `dlq.partition` / `dlq.offset`


@dataclass(frozen=True)
class Letter:
    """One dead letter: where it is, where its source record was, why, and the record itself.

    Attributes:
        dlq_topic: the dead-letter topic.
        dlq_partition: its partition (the source record's partition).
        dlq_offset: its offset in the dead-letter topic.
        source_topic: `dlq.topic` (None when missing).
        source_partition: `dlq.partition` (None when missing or not a number).
        source_offset: `dlq.offset` (None when missing or not a number).
        reason: `dlq.reason`.
        message: `dlq.message`.
        exception: `dlq.exception`.
        index: `dlq.index`: the fix's index in its ping batch, for a per-fix letter.
        truncated: `dlq.truncated`: what was cut (`key`, `value`, `headers`), if anything.
        key: the record key (the source's).
        value: the record value (the source's, or one fix).
        headers: every header of the dead letter, in order.
        timestamp_ms: the dead letter's record timestamp (epoch ms).
    """

    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    reason: str | None
    message: str | None
    exception: str | None
    index: int | None
    truncated: str | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @classmethod
    def from_record(cls, record: TopicRecord) -> Letter:
        """The dead letter `record` (of a dead-letter topic) holds; never raises."""
        h = LetterHeaders.parse(record.headers)
        return cls(
            dlq_topic=record.topic,
            dlq_partition=record.partition,
            dlq_offset=record.offset,
            source_topic=h.source_topic,
            source_partition=h.source_partition,
            source_offset=h.source_offset,
            reason=h.reason,
            message=h.message,
            exception=h.exception,
            index=h.index,
            truncated=h.truncated,
            key=record.key,
            value=record.value,
            headers=record.headers,
            timestamp_ms=record.timestamp_ms,
        )

    def preview(self, chars: int = PREVIEW_CHARS) -> str:
        """The start of the value as text (`null` for no value), one line, at most `chars`."""
        if self.value is None:
            return "null"
        text = self.value[: chars * 4].decode("utf-8", "replace")
        text = " ".join(text.split())
        return text if len(text) <= chars else text[: chars - 1] + "…"

    def refusal(self) -> Refusal | None:
        """Why this letter cannot be replayed, or None when it can."""
        if self.truncated:
            return Refusal.TRUNCATED
        if self.index is not None or LetterHeaders.parse(self.headers).index is not None:
            return Refusal.PER_FIX
        if self.source_topic is None or self.source_partition is None:
            return Refusal.NO_SOURCE
        return None

    def as_json(self) -> dict[str, Any]:
        """The letter for `dlq list --json`: positions, reason, message and a value preview."""
        return {
            "dlq_topic": self.dlq_topic,
            "dlq_partition": self.dlq_partition,
            "dlq_offset": self.dlq_offset,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "reason": self.reason,
            "message": self.message,
            "exception": self.exception,
            "index": self.index,
            "truncated": self.truncated,
            "timestamp_ms": self.timestamp_ms,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "value_bytes": None if self.value is None else len(self.value),
            "value_preview": self.preview(),
            "replayable": self.refusal() is None,
        }


def original_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The source record's headers: `dlq.*` ones dropped, `original.<name>` renamed `<name>`.

    The inverse of how `contracts.dead_letters` keeps source headers.
    """
    out = []
    for name, value in headers:
        if name.startswith(DLQ_PREFIX):
            continue
        out.append((name.removeprefix(CLASH_PREFIX), value))
    return out


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters a command acts on; None leaves a criterion out.

    Attributes:
        reason: `dlq.reason` equals this.
        partition: the source partition equals this.
        offset_from: the source offset is at least this.
        offset_to: the source offset is at most this (inclusive).
    """

    reason: str | None = None
    partition: int | None = None
    offset_from: int | None = None
    offset_to: int | None = None

    def __post_init__(self) -> None:
        if (
            self.offset_from is not None
            and self.offset_to is not None
            and self.offset_from > self.offset_to
        ):
            msg = f"offset_from ({self.offset_from}) is after offset_to ({self.offset_to})"
            raise ValueError(msg)

    def matches(self, letter: Letter) -> bool:
        """Whether `letter` meets every criterion (an unknown offset meets no offset bound)."""
        if self.reason is not None and letter.reason != self.reason:
            return False
        if self.partition is not None and letter.source_partition != self.partition:
            return False
        bounded = self.offset_from is not None or self.offset_to is not None
        offset = letter.source_offset
        if bounded and offset is None:
            return False
        if self.offset_from is not None and offset is not None and offset < self.offset_from:
            return False
        return not (self.offset_to is not None and offset is not None and offset > self.offset_to)


def dlq_topic_of(topic: str) -> str:
    """The dead-letter topic of `topic`, given either the source or the dead-letter topic."""
    return topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"


async def read_letters(
    client_kwargs: Mapping[str, Any], dlq_topics: Sequence[str], timeout_s: float = 60.0
) -> list[Letter]:
    """Every dead letter of `dlq_topics` present now, partition by partition in offset order."""
    return [Letter.from_record(r) for r in await read_topics(client_kwargs, dlq_topics, timeout_s)]


@dataclass(frozen=True)
class ReplayPlan:
    """The letters to replay and, by reason, those refused."""

    replay: tuple[Letter, ...]
    refused: Counter[Refusal]


def plan_replay(letters: Iterable[Letter]) -> ReplayPlan:
    """Split `letters` into those that can be replayed and the refused ones, counted by reason."""
    replay: list[Letter] = []
    refused: Counter[Refusal] = Counter()
    for letter in letters:
        why = letter.refusal()
        if why is None:
            replay.append(letter)
        else:
            refused[why] += 1
    return ReplayPlan(tuple(replay), refused)


async def replay_letters(client_kwargs: Mapping[str, Any], letters: Sequence[Letter]) -> int:
    """Produce each letter's source record again (see the module docstring); return how many.

    Every letter must be replayable (`plan_replay`); all are acknowledged before returning.
    """
    producer = AIOKafkaProducer(**client_kwargs, acks="all", max_request_size=1_048_576 + 65_536)
    try:
        await producer.start()
        for letter in letters:
            if letter.refusal() is not None or letter.source_topic is None:
                msg = f"letter {letter.dlq_topic}@{letter.dlq_offset} is not replayable"
                raise ValueError(msg)
            await producer.send_and_wait(
                letter.source_topic,
                value=letter.value,
                key=letter.key,
                partition=letter.source_partition,
                timestamp_ms=letter.timestamp_ms,
                headers=original_headers(letter.headers) or None,
            )
    finally:
        await producer.stop()
    return len(letters)
