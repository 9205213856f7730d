"""The courier directory: every courier's status and current shard, keyed by courier.

It applies `courier_events` (status, capacity, vehicle; an `online` event places the courier in
the shard of its position) and `courier_sighting`s (a shard saw positions of a courier it did not
hold). A courier moves only on a fix newer than the one that placed it, so replayed or late
positions never move it back (re-reading input after a restart changes nothing). Every change is
forwarded to the courier's shard as a `courier_state_update`; when a courier changes shard, the
old shard is told it left, the new one that it arrived, and a `courier_handoff` is published.

Topics have no common order, so a sighting can be read before the `courier_online` that creates
its courier. The newest such sighting is kept and applied right after the courier is created, so
the result is the same in either order. It is kept in memory only (at most `max_parked`
couriers, the least recently seen forgotten first): a table write per sighting of an unknown
courier would cost a changelog record each, and a backlog of pings from couriers that never come
online would make thousands. After a restart or a rebalance between the two events the
sighting is lost, and the shard's next periodic sighting (while the courier keeps pinging) moves
the courier instead.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from contracts.geo import shard_of
from contracts.rejections import EventRejected
from contracts.validation import Event
from dispatch.lifecycle import AlreadyApplied, CourierState, Source, apply_courier_event
from dispatch.live.effects import Effects
from dispatch.live.kv import KV
from dispatch.live.outputs import handoff, state_update
from dispatch.live.topic_names import COURIER_HANDOFFS, COURIER_STATE_UPDATES

#: Most couriers not yet in the directory whose newest sighting is kept.
MAX_PARKED = 10_000


@dataclass(frozen=True)
class ParkedSighting:
    """The newest fix of a courier not yet in the directory, seen in `shard`."""

    shard: str
    ts_ms: int


class CourierDirectory:
    """Pure handler of the directory's two inputs.

    State lives in `directory`; `parked` holds, in memory, the newest sighting of each courier
    not in the directory yet (at most `max_parked`, the least recently seen dropped first).
    """

    def __init__(
        self, directory: KV[CourierState], shard_precision: int, max_parked: int = MAX_PARKED
    ) -> None:
        if max_parked < 0:
            raise ValueError(f"max_parked must be >= 0, got {max_parked}")
        self.directory = directory
        self.shard_precision = shard_precision
        self.max_parked = max_parked
        self.parked: OrderedDict[str, ParkedSighting] = OrderedDict()
        self.handoffs = 0

    def _tell_shards(
        self, effects: Effects, old: CourierState | None, new: CourierState, ts_ms: int
    ) -> None:
        """Tell the old shard the courier left (with the move's epoch) and the new one it came."""
        from_shard = old.shard if old is not None else None
        if old is not None and old.shard is not None and old.shard != new.shard:
            left = state_update(new, old.shard, "left", ts_ms, to_shard=new.shard)
            effects.emit(COURIER_STATE_UPDATES, old.shard, left)
        if new.shard is None:
            return
        moved = old is None or old.shard != new.shard
        kind = "arrived" if moved else "status"
        update = state_update(new, new.shard, kind, ts_ms, from_shard=from_shard if moved else None)
        effects.emit(COURIER_STATE_UPDATES, new.shard, update)
        if moved:
            effects.emit(
                COURIER_HANDOFFS,
                new.courier_id,
                handoff(new.courier_id, from_shard, new.shard, ts_ms),
            )
            self.handoffs += 1

    def on_courier_event(self, event: Event, source: Source) -> Effects:
        """Apply a validated `courier_events` event."""
        effects = Effects()
        courier_id = str(event["courier_id"])
        old = self.directory.get(courier_id)
        shard: str | None = old.shard if old is not None else None
        if "lat" in event:
            shard = shard_of(event["lat"], event["lon"], self.shard_precision)
        try:
            new = apply_courier_event(old, event, shard, source)
        except AlreadyApplied:
            return effects
        except EventRejected as exc:
            effects.reject(source, exc)
            return effects
        if old is not None and old.shard is not None and new.shard != old.shard:
            new = replace(new, epoch=old.epoch + 1)
        self.directory.put(courier_id, new)
        self._tell_shards(effects, old, new, int(event["ts_ms"]))
        if old is None:
            parked = self.parked.pop(courier_id, None)
            if parked is not None:
                self._move(effects, new, parked.shard, parked.ts_ms)
        return effects

    def on_sighting(self, event: Event) -> Effects:
        """Apply a `courier_sighting` (couriers seen in a shard that did not hold them)."""
        effects = Effects()
        shard = str(event["shard"])
        for seen in event["couriers"]:
            courier_id = str(seen["courier_id"])
            old = self.directory.get(courier_id)
            seen_ts_ms = int(seen["ts_ms"])
            if old is not None:
                self._move(effects, old, shard, seen_ts_ms)
                continue
            self._park(courier_id, shard, seen_ts_ms)
        return effects

    def _park(self, courier_id: str, shard: str, seen_ts_ms: int) -> None:
        """Keep the sighting of a courier not in the directory if it is its newest."""
        parked = self.parked.get(courier_id)
        if parked is None or seen_ts_ms > parked.ts_ms:
            self.parked[courier_id] = ParkedSighting(shard, seen_ts_ms)
        self.parked.move_to_end(courier_id)
        while len(self.parked) > self.max_parked:
            self.parked.popitem(last=False)

    def _move(self, effects: Effects, old: CourierState, shard: str, seen_ts_ms: int) -> None:
        """Move the courier to `shard` if its fix there at `seen_ts_ms` is newer than its own."""
        if old.shard == shard or seen_ts_ms <= old.shard_ts_ms:
            return  # not a move, or a fix older than the one that placed the courier
        new = replace(
            old,
            shard=shard,
            epoch=old.epoch + (old.shard is not None),
            shard_ts_ms=seen_ts_ms,
        )
        self.directory.put(old.courier_id, new)
        self._tell_shards(effects, old, new, seen_ts_ms)
