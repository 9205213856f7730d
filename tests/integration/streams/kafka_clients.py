"""Small aiokafka helpers for the Apache Kafka runner tests (create, produce, consume, configs)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kafka_broker import KafkaCluster


def client_of(cluster: KafkaCluster) -> dict[str, Any]:
    """Client options that reach `cluster` through its bootstrap address."""
    return {"bootstrap_servers": cluster.bootstrap}


def topic_name(prefix: str) -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(
    client: dict[str, Any], topic: str, partitions: int = 1, replication: int = 1
) -> None:
    """Create `topic` and return once the admin call answered."""
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, replication)])
        errors = [e for e in response.topic_errors if e[1] != 0]
        assert not errors, errors
    finally:
        await admin.close()


async def produce(
    client: dict[str, Any], topic: str, values: list[bytes], **producer_options: Any
) -> None:
    """Send `values` to partition 0 of `topic` one by one, each acknowledged before the next."""
    producer = AIOKafkaProducer(**client, **producer_options)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def consume(
    client: dict[str, Any], topic: str, count: int, timeout_s: float = 30.0, **options: Any
) -> list[bytes]:
    """Read `count` values of `topic` from the beginning (as group `options['group_id']`)."""
    consumer = AIOKafkaConsumer(
        topic, **client, auto_offset_reset="earliest", enable_auto_commit=False, **options
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                values.extend(bytes(r.value or b"") for r in records)
        if options.get("group_id"):
            await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def topic_configs(client: dict[str, Any], topic: str) -> dict[str, str | None]:
    """The effective configs of `topic` (set at creation or not), by name."""
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {e[0]: e[1] for r in responses for res in r.resources for e in res[4]}
