"""Recent event ids of one partition, so that an id reused by another record is a duplicate.

Every input event carries an `event_id` that must be unique. The state machines catch an id
repeated within one order or one courier; this index catches an id reused by a different record
anywhere in the partition (another order, another courier, another topic of the same shard).
It remembers each id with the record that first carried it; the same record read again (a
redelivery after a restart) is recognised and let through to the handlers, which skip it.

The index is bounded twice: ids whose event time is more than `window_ms` older than the newest
one seen are forgotten, and beyond `max_ids` the oldest ids are forgotten first. Memory: about
200 bytes per id (measured for 40-character ids), so the default of 200,000 ids per
partition holds at most about 40 MB. It is kept in memory; after a restart or a rebalance the
worker refills it from the state it restores (the events each order and courier keep), so the
ids of live orders and couriers are known again at once.

>>> index = EventIdIndex(max_ids=2, window_ms=60_000)
>>> index.claim("e1", "order_events:0:1", 1_000)
True
>>> index.claim("e1", "order_events:0:1", 1_000)  # the same record, read again
True
>>> index.claim("e1", "merchant_ready:0:7", 2_000)  # another record with the same id
False
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class EventIdIndex:
    """Recent event ids of one partition and the record that first carried each."""

    max_ids: int = 200_000
    window_ms: int = 3_600_000
    _ids: OrderedDict[str, tuple[str, int]] = field(default_factory=OrderedDict)
    _times: list[tuple[int, str]] = field(default_factory=list)
    _newest_ts_ms: int = -1

    def __post_init__(self) -> None:
        if self.max_ids < 1 or self.window_ms < 0:
            msg = "max_ids must be >= 1 and window_ms >= 0"
            raise ValueError(msg)

    def __len__(self) -> int:
        return len(self._ids)

    def claim(self, event_id: str, record: str, ts_ms: int) -> bool:
        """Remember `event_id` as `record`'s; False if another record carried it recently.

        `record` names the record (`topic:partition:offset`); `ts_ms` is the event's time.
        """
        known = self._ids.get(event_id)
        if known is not None:
            return known[0] == record
        self._ids[event_id] = (record, ts_ms)
        heapq.heappush(self._times, (ts_ms, event_id))
        self._newest_ts_ms = max(self._newest_ts_ms, ts_ms)
        self._forget()
        return True

    def _forget(self) -> None:
        """Drop ids beyond the window, then the oldest inserted beyond `max_ids`."""
        horizon = self._newest_ts_ms - self.window_ms
        while self._times and self._times[0][0] < horizon:
            ts_ms, event_id = heapq.heappop(self._times)
            known = self._ids.get(event_id)
            if known is not None and known[1] == ts_ms:
                del self._ids[event_id]
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        if len(self._times) > 2 * self.max_ids:  # entries of ids dropped by size
            self._times = [(t, e) for t, e in self._times if e in self._ids]
            heapq.heapify(self._times)
