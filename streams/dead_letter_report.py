"""Count the records of every dead-letter topic by source topic and reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.dead_letters import INDEX_HEADER, REASON_HEADER, TOPIC_HEADER, header_value
from streams.reading import read_topics


async def read_dead_letters(
    client_kwargs: Mapping[str, Any], dlq_topics: Sequence[str], timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every record of `dlq_topics` (from the beginning to the current end) with its headers."""
    letters = []
    for r in await read_topics(client_kwargs, dlq_topics, timeout_s):
        letters.append(
            {
                "topic": r.topic,
                "source_topic": header_value(r.headers, TOPIC_HEADER),
                "reason": header_value(r.headers, REASON_HEADER),
                "index": header_value(r.headers, INDEX_HEADER),
                "key": r.key,
                "value": r.value,
                "headers": {k: v.decode("utf-8", "replace") for k, v in r.headers},
            }
        )
    return letters


def count_by_reason(letters: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(source topic, reason) → number of dead letters."""
    return Counter((str(x["source_topic"]), str(x["reason"])) for x in letters)
