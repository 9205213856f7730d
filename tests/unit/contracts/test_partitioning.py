from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from contracts.partitioning import partition_for_key


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_matches_the_kafka_default_partitioner(key: bytes, partitions: int) -> None:
    """Our partition of a key is the one the producer's default partitioner picks."""
    all_partitions = list(range(partitions))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(
        key, all_partitions, all_partitions
    )
