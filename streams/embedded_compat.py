"""Workarounds for the embedded broker only; installed when `broker_kind` is `embedded`.

The embedded broker answers ListOffsets(latest) with the first offset of the newest record batch
plus one, which undercounts when that batch holds several records. Faust's table recovery reads
changelogs up to that answer, so it would stop short (or, with local state, refuse to start).
The fix asks a fetch response instead, whose high watermark is exact. Real Kafka never needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.offsets import exact_end_offsets

_installed = False


def install_highwater_fix(client_kwargs: Mapping[str, Any]) -> None:
    """Make Faust's consumer compute highwaters from fetch responses (process-wide, once)."""
    global _installed
    if _installed:
        return
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    kwargs = dict(client_kwargs)

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        tps = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        if not tps:
            return {}
        consumer = AIOKafkaConsumer(
            **kwargs, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=100
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            ends = await exact_end_offsets(consumer, tps)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in partitions}

    setattr(AIOKafkaConsumerThread, "_highwaters", _highwaters)  # noqa: B010
    _installed = True
