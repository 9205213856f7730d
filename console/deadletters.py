"""Dead letters in the read model: counts by reason, the latest few, the records they reject.

A dead-letter record carries its source record's key and value and headers that say why
(`dlq.reason`, `dlq.message`) and where from (`dlq.topic`, `dlq.partition`, `dlq.offset`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from console.orders import RecordRef
from contracts.dead_letters import LetterHeaders

#: Characters of a dead letter's key and value shown.
PREVIEW_CHARS = 300


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter record as ops sees it.

    Attributes:
        dlq_topic: the dead-letter topic it was read from.
        partition: its partition there.
        offset: its offset there.
        ts_ms: its record timestamp, epoch ms.
        source_topic: the input topic of the rejected record.
        source_ref: (topic, partition, offset) of the rejected record, when the headers say.
        reason: why it was rejected (`undecodable`, `schema_invalid`, ...).
        message: the worker's message.
        exception: the exception class name.
        index: position of the bad fix inside a ping batch, if any.
        key: the rejected record's key (decoded, cut to `PREVIEW_CHARS`).
        value: the rejected record's value (decoded, cut to `PREVIEW_CHARS`).
    """

    dlq_topic: str
    partition: int
    offset: int
    ts_ms: int
    source_topic: str
    source_ref: RecordRef | None
    reason: str
    message: str
    exception: str
    index: int | None
    key: str
    value: str


def _preview(raw: bytes | None) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def dead_letter_of(
    dlq_topic: str,
    partition: int,
    offset: int,
    ts_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> DeadLetter:
    """Read one dead-letter record (missing headers become empty or None)."""
    h = LetterHeaders.parse(headers)
    source_topic = h.source_topic or dlq_topic.removesuffix("_dlq")
    ref = (
        (source_topic, h.source_partition, h.source_offset)
        if h.source_partition is not None and h.source_offset is not None
        else None
    )
    return DeadLetter(
        dlq_topic=dlq_topic,
        partition=partition,
        offset=offset,
        ts_ms=ts_ms,
        source_topic=source_topic,
        source_ref=ref,
        reason=h.reason or "unknown",
        message=h.message or "",
        exception=h.exception or "",
        index=h.index,
        key=_preview(key),
        value=_preview(value),
    )


class DeadLetterTally:
    """Counts by (source topic, reason), the `keep` newest letters, and the rejected records.

    `latest` is newest first (by record timestamp, whatever order the letters were read in).

    A ping batch's bad fix rejects that fix only, not its record, so letters with an `index`
    reject nothing.
    """

    def __init__(self, keep: int = 20) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.counts: Counter[tuple[str, str]] = Counter()
        self.keep = keep
        self.latest: list[DeadLetter] = []
        self.rejected: set[RecordRef] = set()
        self._seen: set[tuple[str, int, int]] = set()

    def add(self, letter: DeadLetter) -> bool:
        """Count `letter`; False if this very record was already counted."""
        where = (letter.dlq_topic, letter.partition, letter.offset)
        if where in self._seen:
            return False
        self._seen.add(where)
        self.counts[(letter.source_topic, letter.reason)] += 1
        self.latest.append(letter)
        self.latest.sort(key=lambda x: (x.ts_ms, x.dlq_topic, x.partition, x.offset), reverse=True)
        del self.latest[self.keep :]
        if letter.source_ref is not None and letter.index is None:
            self.rejected.add(letter.source_ref)
        return True

    @property
    def total(self) -> int:
        """Dead letters counted."""
        return sum(self.counts.values())
