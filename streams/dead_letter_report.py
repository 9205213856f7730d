"""Count the records of every dead-letter topic by source topic and reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.dead_letters import LetterHeaders
from streams.reading import read_topics


async def read_dead_letters(
    client_kwargs: Mapping[str, Any], dlq_topics: Sequence[str], timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every dead letter of `dlq_topics` (from the beginning to the current end), once each.

    Dead letters are at-least-once like every output: a worker that handles a record again
    after a rebalance or a restart sends its letter again. A letter is identified by the place
    of what it refuses (source topic, partition, offset, and index within a batch); only its
    first copy is returned.
    """
    letters = []
    seen: set[tuple[str | None, int | None, int | None, int | None]] = set()
    for r in await read_topics(client_kwargs, dlq_topics, timeout_s):
        h = LetterHeaders.parse(r.headers)
        if h.place in seen:
            continue
        seen.add(h.place)
        letters.append(
            {
                "topic": r.topic,
                "source_topic": h.source_topic,
                "reason": h.reason,
                "index": None if h.index is None else str(h.index),
                "key": r.key,
                "value": r.value,
                "headers": {k: v.decode("utf-8", "replace") for k, v in r.headers},
            }
        )
    return letters


def count_by_reason(letters: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(source topic, reason) → number of dead letters."""
    return Counter((str(x["source_topic"]), str(x["reason"])) for x in letters)
