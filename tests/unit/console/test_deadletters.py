"""Dead letters as the console reads them: headers, counts, the latest, the records rejected."""

from __future__ import annotations

from console.deadletters import DeadLetter, DeadLetterTally, dead_letter_of
from contracts.dead_letters import DeadLetter as WorkerDeadLetter


def _letter(
    offset: int, ts_ms: int, reason: str = "undecodable", index: int | None = None
) -> DeadLetter:
    worker_side = WorkerDeadLetter(
        "order_events", 3, 40 + offset, b"dr5r", b"{not json", reason, "not JSON", index=index
    )
    return dead_letter_of(
        worker_side.topic,
        3,
        offset,
        ts_ms,
        worker_side.key,
        worker_side.value,
        worker_side.record().headers,
    )


def test_a_worker_dead_letter_reads_back_with_its_source_record() -> None:
    """The headers the worker writes give reason, message and the rejected record's place."""
    letter = _letter(0, 1000)
    assert (letter.source_topic, letter.reason, letter.message, letter.source_ref) == (
        "order_events",
        "undecodable",
        "not JSON",
        ("order_events", 3, 40),
    )


def test_letters_are_counted_by_source_topic_and_reason() -> None:
    """Counts are kept per (source topic, reason)."""
    tally = DeadLetterTally()
    for offset, reason in enumerate(["undecodable", "undecodable", "wrong_key"]):
        tally.add(_letter(offset, 1000, reason))
    assert dict(tally.counts) == {
        ("order_events", "undecodable"): 2,
        ("order_events", "wrong_key"): 1,
    }


def test_the_latest_letters_are_the_newest_by_time_whatever_the_read_order() -> None:
    """`latest` keeps the `keep` newest letters, newest first."""
    tally = DeadLetterTally(keep=2)
    for offset, ts_ms in enumerate([3000, 1000, 5000, 2000]):
        tally.add(_letter(offset, ts_ms))
    assert [x.ts_ms for x in tally.latest] == [5000, 3000]


def test_a_letter_read_twice_counts_once() -> None:
    """The same dead-letter record (topic, partition, offset) is counted once."""
    tally = DeadLetterTally()
    assert tally.add(_letter(0, 1000)) and not tally.add(_letter(0, 1000))
    assert tally.total == 1


def test_a_bad_fix_in_a_ping_batch_rejects_no_record() -> None:
    """A letter for one fix of a batch (`dlq.index`) leaves its record counting."""
    tally = DeadLetterTally()
    tally.add(_letter(0, 1000, "schema_invalid", index=4))
    assert tally.rejected == set()
