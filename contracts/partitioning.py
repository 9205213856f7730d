"""Which partition a key lands in: Kafka's default partitioner (murmur2), as producers use it.

The Java client, librdkafka's `murmur2_random` and aiokafka all hash a record key with
MurmurHash2 (seed 0x9747b28c) and take the positive 31 bits modulo the partition count.
Upstream producers and the workers must agree on it, so it is written out here once.

>>> partition_for_key(b"dr5r", 8)
6
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` as Kafka computes it (`org.apache.kafka.common.utils.Utils`)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the default partitioner assigns `key` among `partitions`."""
    if partitions < 1:
        msg = "partitions must be >= 1"
        raise ValueError(msg)
    return (murmur2(key) & 0x7FFFFFFF) % partitions
