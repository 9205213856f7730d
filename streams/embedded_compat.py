"""Workarounds for the embedded broker only; installed when `broker_kind` is `embedded`.

* The embedded broker answers ListOffsets(latest) with the first offset of the newest record
  batch plus one, which undercounts when that batch holds several records. Faust's table
  recovery reads changelogs up to that answer, so it would stop short (or, with local state,
  refuse to start). The fix asks a fetch response instead, whose high watermark is exact.
* It does not answer a waiting fetch when new records arrive, so a record waits up to the
  consumer's `fetch_max_wait_ms` (Faust fixes it at 1.5 s) before a worker sees it. The fix
  shortens that wait for the worker's consumer.

Real Kafka needs neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.offsets import exact_end_offsets

_installed = False
#: Fetch wait of the worker's consumer on the embedded broker.
EMBEDDED_FETCH_MAX_WAIT_MS = 50


def install_embedded_fixes(client_kwargs: Mapping[str, Any]) -> None:
    """Install both workarounds into Faust's consumer (process-wide, once)."""
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
            ends = await exact_end_offsets(consumer, tps)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in partitions}

    original_create = AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original_create(self, transport)
        consumer._fetch_max_wait_ms = EMBEDDED_FETCH_MAX_WAIT_MS
        return consumer

    setattr(AIOKafkaConsumerThread, "_highwaters", _highwaters)  # noqa: B010
    setattr(AIOKafkaConsumerThread, "_create_worker_consumer", _create_worker_consumer)  # noqa: B010
    _installed = True
