"""Partition offsets: exact end offsets (from fetch responses) and a group's committed offsets."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.offset_fetch import install_offset_fetch_check


class OffsetsError(RuntimeError):
    """The broker did not report end offsets in time."""


async def exact_end_offsets(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    timeout_s: float = 30.0,
) -> dict[TopicPartition, int]:
    """End offset of each partition in `tps` as of this call, from fetch responses.

    ListOffsets answers may undercount on some brokers; a fetch response's high watermark is exact.
    `consumer` is assigned `tps` afresh, so a high watermark it saw before the call never counts
    (an older end would let a caller that read progress first miss records written since); its
    positions for `tps` are left anywhere, so callers seek afterwards.
    """
    _, ends = await offset_bounds(consumer, tps, timeout_s)
    return ends


async def offset_bounds(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    timeout_s: float = 30.0,
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Beginning and exact end offsets of each partition in `tps` (see `exact_end_offsets`)."""
    if not tps:
        return {}, {}
    consumer.assign(list(tps))  # a new assignment starts with no high watermarks
    reported = await consumer.end_offsets(list(tps))
    begin = {tp: int(v) for tp, v in (await consumer.beginning_offsets(list(tps))).items()}
    for tp in tps:
        consumer.seek(tp, max(int(reported[tp]) - 1, begin[tp]))
    deadline = time.monotonic() + timeout_s
    while True:
        ends = {tp: consumer.highwater(tp) for tp in tps}
        if all(v is not None for v in ends.values()):
            return begin, {tp: int(v) for tp, v in ends.items() if v is not None}
        if time.monotonic() > deadline:
            missing = sorted(f"{tp.topic}[{tp.partition}]" for tp, v in ends.items() if v is None)
            msg = f"no fetch response for {missing} within {timeout_s} s"
            raise OffsetsError(msg)
        await consumer.getmany(*tps, timeout_ms=100, max_records=1)


async def raise_to_committed(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], handled: dict[TopicPartition, int]
) -> None:
    """Raise `handled[tp]` to the committed offset of `consumer`'s group, for each `tp` in `tps`.

    A group commits only what its members have handled, so a committed offset is a lower bound
    on what was handled (including by members that have since left or forgotten it). The
    offsets are asked of the group's current coordinator (`streams.offset_fetch`).
    """
    install_offset_fetch_check()
    for tp in tps:
        committed = await consumer.committed(tp)
        if committed is not None:
            handled[tp] = max(handled.get(tp, 0), int(committed))
