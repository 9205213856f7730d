"""Rebuild positions of newly assigned partitions by re-reading `courier_positions`.

Reads from just after the last offset the local database applied (or, without local state, from
`window_ms` of event time before the newest record) up to the partition's current end, as reported
by fetch responses (their high watermark is exact on every broker we know).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.positions import PositionBatchError, decode_position_batch
from dispatch.live.positions import PositionStore
from streams.offsets import offset_bounds

logger = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """Positions could not be rebuilt in time."""


async def _read_one(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> Any:
    """The record at `offset` (or the first after it), or None if there is none."""
    consumer.seek(tp, offset)
    batches = await consumer.getmany(tp, timeout_ms=2000, max_records=1)
    records = batches.get(tp, [])
    return records[0] if records else None


async def _start_offset_for_window(
    consumer: AIOKafkaConsumer, tp: TopicPartition, begin: int, end: int, window_ms: int
) -> int:
    """First offset whose record lies within `window_ms` of the newest; `begin` if unsure."""
    if end - begin <= 1:
        return begin
    newest = await _read_one(consumer, tp, end - 1)
    if newest is None:
        return begin
    target_ms = int(newest.timestamp) - window_ms
    try:
        found = (await consumer.offsets_for_times({tp: target_ms})).get(tp)
    except Exception:
        return begin
    if found is None or found.offset <= begin:
        return begin
    # Trust the broker's answer only if it is consistent with the records around it.
    at = await _read_one(consumer, tp, found.offset)
    before = await _read_one(consumer, tp, found.offset - 1)
    if at is None or before is None or at.timestamp < target_ms or before.timestamp >= target_ms:
        return begin
    return int(found.offset)


async def replay_positions(
    store: PositionStore,
    topic: str,
    partitions: Iterable[int],
    client_kwargs: Mapping[str, Any],
    window_ms: int,
    timeout_s: float = 120.0,
) -> int:
    """Apply every record of `partitions` not yet in `store`; return how many were read."""
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    if not tps:
        return 0
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        begin, ends = await offset_bounds(consumer, tps)
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            last = store.last_offset(tp.partition)
            if last is not None:
                starts[tp] = max(last + 1, begin[tp])
            else:
                starts[tp] = await _start_offset_for_window(
                    consumer, tp, begin[tp], ends[tp], window_ms
                )
        pending = [tp for tp in tps if starts[tp] < ends[tp]]
        for tp in pending:
            consumer.seek(tp, starts[tp])
        return await _read_to_end(consumer, store, pending, ends, timeout_s)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    store: PositionStore,
    tps: list[TopicPartition],
    ends: Mapping[TopicPartition, int],
    timeout_s: float,
) -> int:
    deadline = time.monotonic() + timeout_s
    pending = set(tps)
    read = 0
    while pending:
        if time.monotonic() > deadline:
            msg = (
                f"position replay of {sorted(tp.partition for tp in pending)} took > {timeout_s} s"
            )
            raise ReplayError(msg)
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                try:
                    batch = decode_position_batch(record.value or b"")
                except PositionBatchError as exc:
                    # Dead-lettered when the positions agent first read it; skipped here.
                    logger.debug(
                        "skipped %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, exc
                    )
                    continue
                if batch.left:
                    store.apply_left(tp.partition, record.offset, batch.shard, batch.fixes)
                else:
                    store.apply(tp.partition, record.offset, batch.shard, batch.fixes)
                read += 1
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    logger.info(
        "rebuilt positions of partitions %s from %d records",
        sorted(tp.partition for tp in tps),
        read,
    )
    return read
