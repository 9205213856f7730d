"""Producing prepared records (demo, tests, benchmarks) and waiting for a group to catch up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.offsets import exact_end_offsets


class ProducibleRecord(Protocol):
    """What `produce_records` needs of a record."""

    @property
    def topic(self) -> str: ...  # noqa: D102

    @property
    def key(self) -> bytes | None: ...  # noqa: D102

    @property
    def value(self) -> bytes: ...  # noqa: D102

    @property
    def ts_ms(self) -> int: ...  # noqa: D102


async def produce_records(
    client_kwargs: Mapping[str, Any],
    records: Iterable[ProducibleRecord],
    linger_ms: int = 5,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> int:
    """Send every record (key, value, timestamp) and wait until all are acknowledged."""
    producer = AIOKafkaProducer(**client_kwargs, linger_ms=linger_ms, acks="all")
    await producer.start()
    sent = 0
    try:
        pending = []
        for record in records:
            pending.append(
                await producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    timestamp_ms=record.ts_ms,
                    headers=list(headers) if headers else None,
                )
            )
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def group_lag(
    client_kwargs: Mapping[str, Any], group_id: str, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    """Records of `topics` not yet committed by `group_id`, per partition (exact end offsets)."""
    consumer = AIOKafkaConsumer(
        **client_kwargs, group_id=group_id, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return {}
        consumer.assign(tps)
        ends = await exact_end_offsets(consumer, tps)
        lag = {}
        for tp in tps:
            committed = await consumer.committed(tp)
            lag[tp] = ends[tp] - (committed or 0)
        return lag
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def wait_caught_up(
    client_kwargs: Mapping[str, Any],
    group_id: str,
    topics: Sequence[str],
    timeout_s: float = 60.0,
    poll_s: float = 0.5,
) -> None:
    """Return once `group_id` has committed every record of `topics`; TimeoutError otherwise.

    Polls the committed offsets (the condition), not a fixed sleep.
    """
    deadline = time.monotonic() + timeout_s
    lag: dict[TopicPartition, int] = {}
    while time.monotonic() < deadline:
        # Topics may be unknown to a fresh client's metadata for a moment; ask again.
        lag = await group_lag(client_kwargs, group_id, topics)
        if lag and all(v <= 0 for v in lag.values()) and {tp.topic for tp in lag} == set(topics):
            return
        await asyncio.sleep(poll_s)
    behind = {f"{tp.topic}[{tp.partition}]": v for tp, v in lag.items() if v > 0}
    msg = f"group {group_id} still behind after {timeout_s} s: {behind}"
    raise TimeoutError(msg)
