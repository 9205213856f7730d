"""End offsets read from fetch responses on a real broker."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dispatchflow.settings import Settings
from streams.kafka_config import aiokafka_kwargs
from streams.offsets import exact_end_offsets


async def _produce(client: dict[str, object], topic: str, count: int) -> None:
    producer = AIOKafkaProducer(**client, acks="all")
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, value=b"%d" % i, partition=0)
    finally:
        await producer.stop()


async def _ends_before_and_after_more_records(bootstrap: str) -> tuple[int, int]:
    client = aiokafka_kwargs(Settings(broker_url=bootstrap))
    topic = f"offsets-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    tp = TopicPartition(topic, 0)
    await _produce(client, topic, 3)
    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        first = (await exact_end_offsets(consumer, [tp]))[tp]
        # Freeze what the consumer knows: its high watermark for `tp` is now out of date.
        consumer.pause(tp)
        await _produce(client, topic, 2)
        second = (await exact_end_offsets(consumer, [tp]))[tp]
    finally:
        await consumer.stop()
    return first, second


def test_end_offsets_count_records_written_after_the_last_fetch(broker: str) -> None:
    """A high watermark the consumer saw before the call never stands in for the current end."""
    first, second = asyncio.run(_ends_before_and_after_more_records(broker))
    assert (first, second) == (3, 5)
