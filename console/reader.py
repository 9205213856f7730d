"""The Kafka side of the console: read every shard's topics from the beginning into the model.

One group-less consumer is assigned every partition of the topics in `READ_TOPICS` that exist,
plus every `*_dlq` topic, and starts at their beginning; it commits nothing and joins no group,
so it never takes partitions from the workers. Topics (and dead-letter topics) created later
are picked up by a periodic look at the cluster's metadata. Records that cannot be decoded or
break their schema are skipped and counted (the worker dead-letters such input records, and
the dead letters are what ops sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from console.deadletters import dead_letter_of
from console.model import OpsModel
from contracts.limits import DecodeLimits, bounded_loads
from contracts.positions import PositionBatchError, decode_position_batch
from contracts.rejections import EventRejected
from contracts.validation import validate_schema

log = logging.getLogger(__name__)
#: Bounds on the JSON records the console reads (the workers wrote or checked them).
_LIMITS = DecodeLimits(max_record_bytes=1_048_576)

#: Topics the console reads (besides every `*_dlq` topic).
READ_TOPICS = (
    "order_events",
    "merchant_ready",
    "delivery_events",
    "dispatch_control",
    "assignment_proposed",
    "assignment_committed",
    "assignment_released",
    "eta_updates",
    "surge_updates",
    "courier_state_updates",
    "courier_positions",
)
DLQ_SUFFIX = "_dlq"


class BrokerUnreachable(RuntimeError):
    """The broker did not answer when the reader started."""


def wanted(topics: Sequence[str]) -> list[str]:
    """The topics of a cluster the console reads, sorted."""
    return sorted(t for t in topics if t in READ_TOPICS or t.endswith(DLQ_SUFFIX))


class TopicReader:
    """Feeds an `OpsModel` from the cluster; `run()` until cancelled.

    Args:
        client_kwargs: aiokafka client options (`streams.kafka_config.aiokafka_kwargs`).
        model: the model to feed (only this reader's task writes to it).
        rediscover_s: how often to look for new topics and partitions.
        evict_s: how often to let the model forget what is past its retention.
    """

    def __init__(
        self,
        client_kwargs: Mapping[str, Any],
        model: OpsModel,
        rediscover_s: float = 10.0,
        evict_s: float = 30.0,
    ) -> None:
        self.client_kwargs = dict(client_kwargs)
        self.model = model
        self.rediscover_s = rediscover_s
        self.evict_s = evict_s
        self.skipped: Counter[str] = Counter()
        self.records = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: list[TopicPartition] = []

    async def start(self, timeout_s: float = 15.0) -> None:
        """Connect and assign the partitions; raise `BrokerUnreachable` if nothing answers."""
        consumer = AIOKafkaConsumer(
            **self.client_kwargs,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        client_log = logging.getLogger("aiokafka")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)  # the one-line error below says it all
        try:
            await asyncio.wait_for(consumer.start(), timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            detail = str(exc) or type(exc).__name__
            msg = f"cannot reach the broker at {self.bootstrap}: {detail}"
            raise BrokerUnreachable(msg) from exc
        finally:
            client_log.setLevel(level)
        self._consumer = consumer
        await self._discover()

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers, comma-separated."""
        servers = self.client_kwargs.get("bootstrap_servers", "")
        return servers if isinstance(servers, str) else ",".join(servers)

    async def stop(self) -> None:
        """Close the consumer."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _discover(self) -> None:
        """Assign every partition of the wanted topics, keeping the positions already reached."""
        consumer = self._consumer
        if consumer is None:
            return
        # The metadata of every topic, asked for by name: a consumer without a subscription
        # keeps none itself (Apache Kafka answers a metadata request for no topics with none).
        cluster = await consumer._client.fetch_all_metadata()
        topics = wanted(sorted(cluster.topics()))
        tps = sorted(
            (TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()),
            key=lambda tp: (tp.topic, tp.partition),
        )
        if tps == self._assigned:
            return
        positions = {tp: await consumer.position(tp) for tp in self._assigned}
        consumer.assign(tps)
        new = [tp for tp in tps if tp not in positions]
        if new:
            await consumer.seek_to_beginning(*new)
        for tp, offset in positions.items():
            if tp in tps:
                consumer.seek(tp, offset)
        self._assigned = tps
        log.info("reading %d partitions of %d topics", len(tps), len(topics))

    async def status(self) -> dict[str, Any]:
        """Partitions read, records applied and skipped, and whether the reader is caught up.

        Caught up: every assigned partition has been fetched at least once and read to the end
        its last fetch reported.
        """
        consumer = self._consumer
        behind = 0
        unknown = 0
        for tp in self._assigned:
            end = consumer.highwater(tp) if consumer is not None else None
            if consumer is None or end is None:
                unknown += 1
                continue
            behind += max(0, int(end) - int(await consumer.position(tp)))
        return {
            "topics": sorted({tp.topic for tp in self._assigned}),
            "partitions": len(self._assigned),
            "records": self.records,
            "skipped": dict(sorted(self.skipped.items())),
            "partitions_not_fetched": unknown,
            "behind_records": behind,
            "caught_up": bool(self._assigned) and unknown == 0 and behind == 0,
        }

    async def run(self) -> None:
        """Read and apply records until cancelled."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("start() the reader first")
        next_discovery = time.monotonic() + self.rediscover_s
        next_eviction = time.monotonic() + self.evict_s
        while True:
            if time.monotonic() >= next_discovery or not self._assigned:
                await self._discover()
                next_discovery = time.monotonic() + (self.rediscover_s if self._assigned else 1.0)
            if not self._assigned:
                await asyncio.sleep(1.0)
                continue
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, batch in batches.items():
                for record in batch:
                    self.apply(
                        tp.topic,
                        tp.partition,
                        record.offset,
                        int(record.timestamp),
                        record.key,
                        record.value,
                        tuple((k, bytes(v)) for k, v in (record.headers or ())),
                    )
            if time.monotonic() >= next_eviction:
                self.model.evict()
                next_eviction = time.monotonic() + self.evict_s
            await asyncio.sleep(0)

    def apply(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        """Decode one record and apply it to the model (or count it as skipped)."""
        self.records += 1
        if topic.endswith(DLQ_SUFFIX):
            letter = dead_letter_of(topic, partition, offset, timestamp_ms, key, value, headers)
            self.model.apply_dead_letter(letter)
            return
        if topic == "courier_positions":
            try:
                batch = decode_position_batch(value or b"")
            except (PositionBatchError, ValueError) as exc:
                self.skipped[f"{topic}: {exc}"[:120]] += 1
                return
            self.model.apply_positions(batch, partition)
            return
        try:
            event = validate_schema(bounded_loads(value, _LIMITS))
        except EventRejected as exc:
            self.skipped[f"{topic}: {exc.reason}"] += 1
            return
        self.model.apply_event(topic, partition, offset, event)
