"""Count the records of every dead-letter topic by source topic and reason."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.dead_letters import INDEX_HEADER, REASON_HEADER, TOPIC_HEADER, header_value
from streams.offsets import exact_end_offsets


async def read_dead_letters(
    client_kwargs: Mapping[str, Any], dlq_topics: Sequence[str], timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every record of `dlq_topics` (from the beginning to the current end) with its headers."""
    consumer = AIOKafkaConsumer(
        **client_kwargs, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in dlq_topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await exact_end_offsets(consumer, tps)
        begin = await consumer.beginning_offsets(tps)
        pending = [tp for tp in tps if begin[tp] < ends[tp]]
        for tp in pending:
            consumer.seek(tp, begin[tp])
        letters: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < ends[tp]:
                        letters.append(
                            {
                                "topic": tp.topic,
                                "source_topic": header_value(r.headers, TOPIC_HEADER),
                                "reason": header_value(r.headers, REASON_HEADER),
                                "index": header_value(r.headers, INDEX_HEADER),
                                "key": r.key,
                                "value": r.value,
                                "headers": {
                                    k: bytes(v).decode("utf-8", "replace") for k, v in r.headers
                                },
                            }
                        )
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        return letters
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


def count_by_reason(letters: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(source topic, reason) → number of dead letters."""
    return Counter((str(x["source_topic"]), str(x["reason"])) for x in letters)
