"""Reading whole topics (from the beginning to their current end) for reports and checks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.offsets import offset_bounds


@dataclass(frozen=True)
class TopicRecord:
    """One record read back: where it was, its key, value, headers and timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


async def read_topics(
    client_kwargs: Mapping[str, Any], topics: Sequence[str], timeout_s: float = 60.0
) -> list[TopicRecord]:
    """Every record of `topics` present now, partition by partition in offset order."""
    consumer = AIOKafkaConsumer(
        **client_kwargs, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    try:
        await consumer.start()
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            return []
        begin, ends = await offset_bounds(consumer, tps)
        pending = [tp for tp in tps if begin[tp] < ends[tp]]
        for tp in pending:
            consumer.seek(tp, begin[tp])
        records: list[TopicRecord] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                msg = f"reading {sorted({tp.topic for tp in pending})} took more than {timeout_s} s"
                raise TimeoutError(msg)
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, batch in batches.items():
                records.extend(
                    TopicRecord(
                        tp.topic,
                        tp.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple((k, bytes(v)) for k, v in (r.headers or ())),
                        int(r.timestamp),
                    )
                    for r in batch
                    if r.offset < ends[tp]
                )
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        return records
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
