"""The group-level error of an OffsetFetch response, read from aiokafka's own response types."""

from __future__ import annotations

import aiokafka.errors as kafka_errors
from aiokafka.protocol.commit import OffsetFetchResponse_v1, OffsetFetchResponse_v3

from streams.offset_fetch import group_error


def test_a_not_coordinator_answer_is_that_error() -> None:
    """error_code 16 at the group level (no partitions) is NOT_COORDINATOR."""
    response = OffsetFetchResponse_v3(throttle_time_ms=0, topics=[], error_code=16)
    assert isinstance(group_error(response), kafka_errors.NotCoordinatorForGroupError)


def test_a_group_level_zero_is_no_error() -> None:
    """A response with offsets and error_code 0 has no group-level error."""
    topics = [("t", [(0, 5, "", 0)])]
    assert (
        group_error(OffsetFetchResponse_v3(throttle_time_ms=0, topics=topics, error_code=0)) is None
    )


def test_a_version_without_a_group_level_code_has_no_error() -> None:
    """Version 1 carries only per-partition codes."""
    assert group_error(OffsetFetchResponse_v1(topics=[("t", [(0, 5, "", 0)])])) is None
