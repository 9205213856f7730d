"""Exact end offsets of partitions, from the high watermark of fetch responses."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition


class OffsetsError(RuntimeError):
    """The broker did not report end offsets in time."""


async def exact_end_offsets(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    timeout_s: float = 30.0,
    *,
    reposition: bool = True,
) -> dict[TopicPartition, int]:
    """End offset of each assigned partition in `tps`, from fetch responses.

    ListOffsets answers may undercount on some brokers; a fetch response's high watermark is exact.
    The consumer's positions for `tps` are moved (seek afterwards) unless `reposition` is False,
    in which case they are restored.
    """
    if not tps:
        return {}
    if not reposition:
        saved = {tp: await consumer.position(tp) for tp in tps}
        try:
            return await exact_end_offsets(consumer, tps, timeout_s)
        finally:
            for tp, offset in saved.items():
                consumer.seek(tp, offset)
    reported = await consumer.end_offsets(list(tps))
    begin = await consumer.beginning_offsets(list(tps))
    for tp in tps:
        consumer.seek(tp, max(int(reported[tp]) - 1, int(begin[tp])))
    deadline = time.monotonic() + timeout_s
    while True:
        ends = {tp: consumer.highwater(tp) for tp in tps}
        if all(v is not None for v in ends.values()):
            return {tp: int(v) for tp, v in ends.items() if v is not None}
        if time.monotonic() > deadline:
            missing = sorted(f"{tp.topic}[{tp.partition}]" for tp, v in ends.items() if v is None)
            msg = f"no fetch response for {missing} within {timeout_s} s"
            raise OffsetsError(msg)
        await consumer.getmany(*tps, timeout_ms=100, max_records=1)
