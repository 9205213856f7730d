"""Committed offsets that are never silently empty when the group coordinator has moved.

From version 2 on, an OffsetFetch response carries a group-level error code beside the
per-partition ones; a broker that is no longer the group's coordinator answers with
`NOT_COORDINATOR` there and no partitions at all. aiokafka (0.14) reads only the per-partition
codes, so `committed()` and the client's own fetch of committed offsets (which places a member
on its partitions after a rebalance) return "nothing committed" instead of retrying: a consumer
that learnt its coordinator before a broker restart moved the group reads no committed offset
for as long as it asks. A worker would then start its partitions over from their first record;
a reader of the group's progress waits forever.

`install_offset_fetch_check()` makes the client treat a group-level error as aiokafka treats
the same error on a partition: a coordinator error marks the coordinator dead and raises a
retriable error, so the fetch finds the coordinator again and retries; any other error is
raised. Process-wide, installed once, by the worker and by every tool that reads a group's
committed offsets.
"""

from __future__ import annotations

from typing import Any

import aiokafka.errors as kafka_errors
from aiokafka.consumer.group_coordinator import GroupCoordinator

#: Group-level errors after which the coordinator is looked up again.
COORDINATOR_ERRORS = (
    kafka_errors.NotCoordinatorForGroupError,
    kafka_errors.GroupCoordinatorNotAvailableError,
)

_installed = False


def group_error(response: Any) -> kafka_errors.KafkaError | None:
    """The group-level error of an OffsetFetch `response` (None: none, or a version without it)."""
    code = int(getattr(response, "error_code", 0) or 0)
    if code == 0:
        return None
    return kafka_errors.for_code(code)()


def install_offset_fetch_check() -> None:
    """Check the group-level error of every OffsetFetch a group coordinator sends (once)."""
    global _installed
    if _installed:
        return
    original = GroupCoordinator._send_req

    async def _send_req(self: GroupCoordinator, request: Any) -> Any:
        response = await original(self, request)
        if not type(request).__name__.startswith("OffsetFetchRequest"):
            return response
        error = group_error(response)
        if error is None:
            return response
        if isinstance(error, COORDINATOR_ERRORS):
            self.coordinator_dead()
        raise error

    setattr(GroupCoordinator, "_send_req", _send_req)  # noqa: B010
    _installed = True
