"""Producing prepared records (demo, tests, benchmarks) and waiting for workers to catch up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.offsets import exact_end_offsets, raise_to_committed


class ProducibleRecord(Protocol):
    """What `produce_records` needs of a record."""

    @property
    def topic(self) -> str: ...  # noqa: D102

    @property
    def key(self) -> bytes | None: ...  # noqa: D102

    @property
    def value(self) -> bytes | None: ...  # noqa: D102

    @property
    def ts_ms(self) -> int: ...  # noqa: D102


async def produce_records(
    client_kwargs: Mapping[str, Any],
    records: Iterable[ProducibleRecord],
    linger_ms: int = 5,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> int:
    """Send every record (key, value, timestamp) and wait until all are acknowledged.

    A record with a `headers` attribute is sent with those headers, others with `headers`.
    """
    producer = AIOKafkaProducer(
        **client_kwargs, linger_ms=linger_ms, acks="all", max_request_size=1_048_576 + 4_096
    )
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
                    headers=list(getattr(record, "headers", None) or headers or ()) or None,
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


class WorkerBusy(RuntimeError):
    """A worker still waits for acknowledgements of records it sent; ask again."""


async def read_progress(
    http: aiohttp.ClientSession, worker_urls: Sequence[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(handled, written) end offsets per partition: the highest any of `worker_urls` reports.

    A worker flushes before answering `/progress`, so everything it wrote for a handled record is
    on the broker by then. A worker that does not answer (it died, or is restarting) adds
    nothing: what it handled counts once the group has committed past it.
    """
    processed: dict[TopicPartition, int] = {}
    produced: dict[TopicPartition, int] = {}
    for url in worker_urls:
        try:
            async with http.get(f"{url}/progress") as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientConnectionError:
            continue  # a worker that died (or is restarting) reports nothing until it is back
        if status == 503:
            raise WorkerBusy(f"{url}/progress: deliveries still unacknowledged")
        if status != 200:
            msg = f"{url}/progress answered {status}"
            raise RuntimeError(msg)
        data = orjson.loads(body)
        for name, into in (("processed", processed), ("produced", produced)):
            for topic, partitions in data[name].items():
                for partition, offset in partitions.items():
                    tp = TopicPartition(topic, int(partition))
                    into[tp] = max(into.get(tp, 0), int(offset))
    return processed, produced


async def wait_processed(
    client_kwargs: Mapping[str, Any],
    group_id: str,
    worker_urls: Sequence[str],
    topics: Sequence[str],
    timeout_s: float = 60.0,
    poll_s: float = 0.2,
) -> None:
    """Return once every record of `topics` is handled; TimeoutError otherwise.

    A record counts as handled when a live worker at `worker_urls` reports it handled (its
    outputs are then on the broker) or when `group_id` has committed past it (handled by a worker
    that has since left). Live progress makes the wait independent of commit timing: a worker
    commits on its own schedule, and a commit can lag far behind what the worker has done.
    """
    deadline = time.monotonic() + timeout_s
    behind: dict[str, int] = {}
    consumer = AIOKafkaConsumer(
        **client_kwargs, group_id=group_id, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    http = aiohttp.ClientSession()
    try:
        while time.monotonic() < deadline:
            tps = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if {tp.topic for tp in tps} != set(topics):
                await consumer._client.force_metadata_update()
                await asyncio.sleep(poll_s)
                continue
            # Progress and commits first: outputs of everything handled by then are on the broker
            # before the end offsets are read, so "handled up to the end" leaves nothing in flight.
            try:
                processed, _ = await read_progress(http, worker_urls)
            except WorkerBusy:
                await asyncio.sleep(poll_s)
                continue
            await raise_to_committed(consumer, tps, processed)
            ends = await exact_end_offsets(consumer, tps)
            behind = {
                f"{tp.topic}[{tp.partition}]": end - processed.get(tp, 0)
                for tp, end in ends.items()
                if end > processed.get(tp, 0)
            }
            if not behind:
                return
            await asyncio.sleep(poll_s)
    finally:
        await http.close()
        with contextlib.suppress(Exception):
            await consumer.stop()
    msg = f"workers {list(worker_urls)} still behind after {timeout_s} s: {behind}"
    raise TimeoutError(msg)
