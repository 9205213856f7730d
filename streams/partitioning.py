"""Which partition a key lands in: Kafka's default partitioner (murmur2), as producers use it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the default partitioner assigns `key` among `partitions`."""
    if partitions < 1:
        msg = "partitions must be >= 1"
        raise ValueError(msg)
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
