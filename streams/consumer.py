"""The worker's Kafka consumer: Faust's aiokafka consumer, with stream partitions held until sought.

After every assignment Faust resumes the stream partitions first, then seeks them to their
committed offsets (one offset fetch per partition, so it can take a while), then resumes its flow
control, which empties every agent's queue. Records read between the resume and the seek are
queued for the agents; the first is handled, the others are thrown away by that last step, and the
fetch that was under way when the seek landed moves the read offset past them, so the copies the
seek delivers again are dropped as already read. Those records are never handled (later ones are),
and Faust only commits an unbroken run of acknowledged offsets starting at the committed one, so
the partition never commits again: lag grows without end, each restart reprocesses more, and
whatever waits for committed offsets waits for ever.

`SeekSafeConsumer` keeps the stream partitions out of the fetch from the start of a rebalance
until the seek that follows the assignment has completed and the flow has been resumed; only then
does it let them in, so the first record an agent sees is the one at the committed offset. Records
of a held partition stay in the client's fetch buffer (Faust only asks for active partitions), so
nothing is skipped. Changelog partitions (table recovery) are never held.

A stream partition the group never committed is sought to its first record (the worker's
`consumer_auto_offset_reset` is `earliest`): the client's seek to committed offsets skips it and
leaves it where the client stood, past records that were fetched and then dropped during the
rebalance (queued for an agent when the flow was cleared), which were then never handled.

Faust hands the client its live set of active partitions for each fetch, and the client reads an
empty set as "every partition". When that set empties while a fetch waits (at the end of a table
recovery the changelog partitions are paused while the stream partitions are still held), the
client drained the held and paused partitions too, moved its position past those records, and
Faust dropped them as not active. `ActivePartitions` passes the same live set in a view that is
never empty to the client, so a fetch returns only partitions that are active when it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Any

import faust
from faust.transport.consumer import ensure_TP
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer


class ActivePartitions:
    """A live view of a set of partitions that is true even when the set is empty.

    The client's `fetched_records(partitions)` returns every partition when `partitions` is
    false; through this view it returns only partitions in the set at the time it drains them.
    """

    __slots__ = ("_tps",)

    def __init__(self, tps: Set[Any]) -> None:
        self._tps = tps

    def __bool__(self) -> bool:
        return True

    def __contains__(self, tp: object) -> bool:
        return tp in self._tps


class SeekSafeConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer that lets stream partitions in only after their seek."""

    #: Stream partitions Faust asked to resume that wait for the seek and the flow resume.
    _held: set[Any]
    #: Rebalance count: a revocation or an assignment starts a new one.
    _epoch: int = 0
    #: The epoch in which held partitions were sought to their committed offsets.
    _sought_epoch: int = -1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held = set()

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """A rebalance starts: forget held partitions (they are being revoked)."""
        self._new_epoch()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        """New partitions: stream partitions are held until sought (see module docstring)."""
        self._new_epoch()
        await super().on_partitions_assigned(assigned, generation_id)

    def _new_epoch(self) -> None:
        self._epoch += 1
        self._held.clear()

    def resume_partitions(self, tps: Iterable[Any]) -> None:
        """Resume changelog partitions now; hold stream partitions until sought."""
        tps = set(tps)
        streams = {tp for tp in tps if not self._is_changelog_tp(tp)}
        if streams and self._sought_epoch != self._epoch:
            self._held.update(streams)
            self._buffered_partitions.difference_update(streams)
            tps -= streams
        if tps:
            super().resume_partitions(tps)

    async def _getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:
        """Fetch only partitions active when the client drains them (see `ActivePartitions`)."""
        if active_partitions is None:
            return await super()._getmany(None, timeout)
        view: Any = ActivePartitions(active_partitions)
        return await super()._getmany(view, timeout)

    async def perform_seek(self) -> None:
        """Seek every assigned partition to its committed offset, and never-committed ones to start.

        The client seeks only partitions with a committed offset above 0; a stream partition with
        none is sought to its first record (the worker starts at `earliest`), unless a newer
        rebalance began meanwhile. A seek that starts with partitions held (Faust's seek after
        the assignment) releases them at the next flow resume, unless a newer rebalance began.
        """
        epoch, holding = self._epoch, bool(self._held)
        committed = await self.seek_to_committed()
        self._read_offset.update(
            {
                ensure_TP(tp): offset if offset is not None and offset >= 0 else None
                for tp, offset in committed.items()
            }
        )
        self._committed_offset.update(
            {
                ensure_TP(tp): offset or None
                for tp, offset in committed.items()
                if offset is not None
            }
        )
        unsought = [
            tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)
        ]
        earliest = self.app.conf.consumer_auto_offset_reset == "earliest"
        if unsought and earliest and epoch == self._epoch:
            # An explicit seek (not the client's lazy reset, whose position stays unknown
            # for a while and trips Faust's livelock detector).
            await self.seek_wait(await self.earliest_offsets(*unsought))
        if holding and epoch == self._epoch:
            self._sought_epoch = epoch

    def resume_flow(self) -> None:
        """Resume the flow; once held partitions are sought, let them in."""
        super().resume_flow()
        if self._held and self._sought_epoch == self._epoch:
            held, self._held = self._held, set()
            super().resume_partitions(held)


def install_seek_safe_consumer(app: faust.App) -> None:
    """Make `app` build a `SeekSafeConsumer`; call before anything touches `app.consumer`."""
    setattr(app.transport, "Consumer", SeekSafeConsumer)  # noqa: B010 (a class variable, per app)
