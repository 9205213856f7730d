"""The city simulator's `Dispatch` over the real pipeline: records through Kafka and workers.

Each step produces the simulator's input records, waits until the workers have handled every
record of every topic they consume (their own internal records included) with outputs flushed,
then produces the step's ticks, waits again, and reads what the workers wrote to the output
topics. This lockstep makes a live run see exactly the inputs an in-process run sees at each
tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.dead_letters import header_value
from contracts.tracing import TRACEPARENT_HEADER
from dispatch.live.topic_names import CONSUMED_TOPICS, DISPATCH_OUTPUTS
from simulators.city.protocol import SimRecord
from streams.offsets import exact_end_offsets, raise_to_committed
from streams.produce import WorkerBusy, read_progress

#: A settle still waiting after this long also reads the group's committed offsets, and again
#: each time this long passes.
_COMMITS_AFTER_S = 0.5


class SettleTimeout(TimeoutError):
    """The workers did not handle every record in time."""


class KafkaDispatch:
    """Drive live workers in event-time lockstep; see the module docstring.

    With `idempotent`, inputs are produced by an idempotent producer (Apache Kafka; the
    embedded broker has none), so that a retry after a broker failure never writes one twice.
    """

    def __init__(
        self,
        client_kwargs: Mapping[str, Any],
        worker_urls: Sequence[str],
        settle_timeout_s: float = 120.0,
        group_id: str = "dispatchflow",
        idempotent: bool = False,
    ) -> None:
        self.client_kwargs = dict(client_kwargs)
        self.worker_urls = list(worker_urls)
        self.settle_timeout_s = settle_timeout_s
        self.loop = asyncio.new_event_loop()
        self._producer: AIOKafkaProducer | None = None
        self._outputs: AIOKafkaConsumer | None = None
        self._http: aiohttp.ClientSession | None = None
        self._consumed: list[TopicPartition] = []
        self._output_tps: list[TopicPartition] = []
        self.steps = 0
        self.group_id = group_id
        self.idempotent = idempotent
        self._commits: AIOKafkaConsumer | None = None
        self._floor: dict[TopicPartition, int] = {}
        self._produced: dict[TopicPartition, int] = {}
        self._worker_produced: dict[TopicPartition, int] = {}
        self.settle_seconds = 0.0
        #: Called right after a step's ticks are produced, while the workers handle them (a
        #: fault test uses it to kill a worker in the middle of a tick).
        self.after_ticks: Callable[[], None] | None = None
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        # A producer that retries after a lost answer may write a record twice; an idempotent
        # one may not (the embedded broker does not take idempotent producers).
        self._producer = AIOKafkaProducer(
            **self.client_kwargs, linger_ms=0, acks="all", enable_idempotence=self.idempotent
        )
        await self._producer.start()
        self._outputs = AIOKafkaConsumer(
            **self.client_kwargs,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            auto_offset_reset="earliest",
        )
        await self._outputs.start()
        self._commits = AIOKafkaConsumer(
            **self.client_kwargs, group_id=self.group_id, enable_auto_commit=False
        )
        await self._commits.start()
        self._consumed = await self._partitions(self._outputs, CONSUMED_TOPICS)
        self._output_tps = await self._partitions(self._outputs, DISPATCH_OUTPUTS)
        ends = await exact_end_offsets(self._outputs, self._output_tps)
        for tp in self._output_tps:
            self._outputs.seek(tp, ends[tp])
        self._http = aiohttp.ClientSession()

    @staticmethod
    async def _partitions(
        consumer: AIOKafkaConsumer, topics: Sequence[str]
    ) -> list[TopicPartition]:
        deadline = time.monotonic() + 30
        while True:
            found = {t: consumer.partitions_for_topic(t) for t in topics}
            if all(found.values()):
                return [TopicPartition(t, p) for t in topics for p in sorted(found[t] or ())]
            if time.monotonic() > deadline:
                missing = [t for t, v in found.items() if not v]
                msg = f"topics missing on the cluster: {missing}"
                raise RuntimeError(msg)
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)

    def add_worker(self, url: str) -> None:
        """Also ask a worker that has joined the group for its progress."""
        self.worker_urls.append(url)

    def remove_worker(self, url: str) -> None:
        """Stop asking a worker that leaves the group for its progress.

        The records it handled count through the group's committed offsets (see `_settle`).
        """
        self.worker_urls.remove(url)

    async def _raise_floor(self, tps: Sequence[TopicPartition]) -> None:
        """Count the records of `tps` the group has committed past as handled."""
        assert self._commits is not None  # noqa: S101 - started in __init__
        await raise_to_committed(self._commits, tps, self._floor)

    def close(self) -> None:
        """Stop the clients and the loop."""

        async def stop() -> None:
            for client in (self._producer, self._outputs, self._commits):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.stop()
            if self._http is not None:
                await self._http.close()

        self.loop.run_until_complete(stop())
        self.loop.close()

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """Produce `inputs` (ticks last, after the rest settled) and return the outputs."""
        return self.loop.run_until_complete(self._step(inputs))

    async def _step(self, inputs: Sequence[SimRecord]) -> list[SimRecord]:
        self.steps += 1
        ticks = [r for r in inputs if r.topic == "dispatch_ticks"]
        rest = [r for r in inputs if r.topic != "dispatch_ticks"]
        if rest:
            await self._produce(rest)
            await self._settle()
        if ticks:
            await self._produce(ticks)
            if self.after_ticks is not None:
                self.after_ticks()
            await self._settle()
        return await self._read_outputs()

    async def _produce(self, records: Sequence[SimRecord]) -> None:
        assert self._producer is not None  # noqa: S101 - started in __init__
        futures = [
            await self._producer.send(
                r.topic,
                value=orjson.dumps(r.event),
                key=r.key,
                timestamp_ms=r.ts_ms,
                headers=[(TRACEPARENT_HEADER, r.traceparent.encode())] if r.traceparent else None,
            )
            for r in records
        ]
        for metadata in await asyncio.gather(*futures):
            tp = TopicPartition(metadata.topic, metadata.partition)
            self._produced[tp] = max(self._produced.get(tp, 0), int(metadata.offset) + 1)

    async def _progress(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """(processed, produced) end offsets over every worker."""
        assert self._http is not None  # noqa: S101 - started in __init__
        return await read_progress(self._http, self.worker_urls)

    async def _settle(self) -> None:
        """Wait until every record produced so far (by us or the workers) is handled.

        Workers report, after flushing, which records they handled and which they wrote; a
        record's outputs are written before it counts as handled, so once every written record
        of a consumed topic is handled, nothing is in flight. A rebalance makes a worker forget
        what it handled (its streams resume from the committed offsets), so a record also counts
        as handled once the group has committed past it: a worker commits only what it has
        handled, and a rebalance (a worker leaving, or one joining unannounced) commits before
        partitions move.
        """
        started = time.monotonic()
        deadline = started + self.settle_timeout_s
        consumed = {tp.topic for tp in self._consumed}
        floor_read = started
        while True:
            try:
                processed, produced = await self._progress()
            except WorkerBusy:
                if time.monotonic() > deadline:
                    msg = f"a worker's records stayed unacknowledged for {self.settle_timeout_s} s"
                    raise SettleTimeout(msg) from None
                await asyncio.sleep(0.005)
                continue
            for tp, offset in self._floor.items():
                processed[tp] = max(processed.get(tp, 0), offset)
            target = dict(self._produced)
            for tp, end in produced.items():
                if tp.topic in consumed:
                    target[tp] = max(target.get(tp, 0), end)
            behind = {tp: end for tp, end in target.items() if processed.get(tp, 0) < end}
            if not behind:
                self._worker_produced = produced
                break
            if time.monotonic() - floor_read > _COMMITS_AFTER_S:
                await self._raise_floor(sorted(behind))
                floor_read = time.monotonic()
                continue
            if time.monotonic() > deadline:
                detail = {
                    f"{tp.topic}[{tp.partition}]": (processed.get(tp, 0), end, self._floor.get(tp))
                    for tp, end in behind.items()
                }
                msg = (
                    f"workers still behind after {self.settle_timeout_s} s "
                    f"(partition: handled, end, group committed when last read): {detail}"
                )
                raise SettleTimeout(msg)
            await asyncio.sleep(0.005)
        self.settle_seconds += time.monotonic() - started

    async def _read_outputs(self) -> list[SimRecord]:
        assert self._outputs is not None  # noqa: S101 - started in __init__
        ends = {tp: self._worker_produced.get(tp, 0) for tp in self._output_tps}
        records: list[tuple[int, str, int, int, SimRecord]] = []
        pending = [tp for tp in self._output_tps if await self._outputs.position(tp) < ends[tp]]
        while pending:
            batches = await self._outputs.getmany(*pending, timeout_ms=200)
            for tp, batch in batches.items():
                for r in batch:
                    if r.offset >= ends[tp]:
                        continue
                    event = orjson.loads(r.value)
                    records.append(
                        (
                            int(event["ts_ms"]),
                            tp.topic,
                            tp.partition,
                            r.offset,
                            SimRecord(
                                tp.topic,
                                r.key,
                                event,
                                header_value(r.headers, TRACEPARENT_HEADER),
                            ),
                        )
                    )
            pending = [tp for tp in pending if await self._outputs.position(tp) < ends[tp]]
        records.sort(key=lambda x: x[:4])
        return [x[4] for x in records]
