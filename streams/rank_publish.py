"""Which ranking views the worker publishes to its rank server, and when.

The worker builds a shard's view (`ShardEngine.rank_view`, one pass over its couriers, on the
stream's event loop, timed in `dispatchflow_rank_view_build_seconds`) only while the shard is
*wanted*: a `POST /rank` request asked about it within `want_ttl_s`. A wanted shard's view is
rebuilt at most once per tick of the shard, so it shows the tick's offers, or once it is
`max_age_s` old when ticks are rarer than that. A wanted shard without live state in this
worker's partitions is published as empty (its requests list no couriers). A shard no longer
asked about is dropped: the rank server forgets its view and asks again when a request comes.

`ViewPublisher.due` is called every `PUBLISH_EVERY_S` (and at once when a shard is first
asked about); it returns the messages for the rank server (`streams.rank_server`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dispatch.live.rank_view import RankView
from streams.metrics import Metrics

#: Seconds between two looks at which views are due.
PUBLISH_EVERY_S = 0.05
#: A shard no request asked about for this long is no longer published.
WANT_TTL_S = 60.0


@dataclass
class _Published:
    view: RankView | None
    built_s: float
    ticks: int


class ViewPublisher:
    """Decides which views to build and send; see the module docstring.

    Args:
        shards: the shards with live state in this worker's partitions.
        ticks: how many ticks of a shard the engine has handled.
        build_view: a shard's ranking view from its state now.
        metrics: where view build times go.
        max_age_s: a view this old is rebuilt even without a tick.
        want_ttl_s: a shard not asked about for this long is dropped.
        clock_s: monotonic seconds.
    """

    def __init__(
        self,
        *,
        shards: Callable[[], list[str]],
        ticks: Callable[[str], int],
        build_view: Callable[[str], RankView],
        metrics: Metrics,
        max_age_s: float,
        want_ttl_s: float = WANT_TTL_S,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards = shards
        self.ticks = ticks
        self.build_view = build_view
        self.metrics = metrics
        self.max_age_s = max_age_s
        self.want_ttl_s = want_ttl_s
        self.clock_s = clock_s
        self._asked_s: dict[str, float] = {}
        self._published: dict[str, _Published] = {}

    def want(self, shards: Iterable[str]) -> None:
        """Requests asked about `shards` just now."""
        now_s = self.clock_s()
        for shard in shards:
            self._asked_s[shard] = now_s

    def due(self) -> list[tuple[Any, ...]]:
        """Messages for the rank server: `("view", view)`, `("empty", shard)`, `("drop", shard)`.

        Each wanted shard's view is built when the shard ticked since its last one, when that
        one is `max_age_s` old, or when it has none yet.
        """
        if not self._asked_s:
            return []
        now_s = self.clock_s()
        live = set(self.shards())
        messages: list[tuple[Any, ...]] = []
        for shard, asked_s in list(self._asked_s.items()):
            published = self._published.get(shard)
            if now_s - asked_s > self.want_ttl_s:
                del self._asked_s[shard]
                self._published.pop(shard, None)
                messages.append(("drop", shard))
            elif shard not in live:
                if published is None or published.view is not None:
                    self._published[shard] = _Published(None, now_s, 0)
                    messages.append(("empty", shard))
            else:
                ticks = self.ticks(shard)
                if (
                    published is None
                    or published.view is None
                    or published.ticks != ticks
                    or now_s - published.built_s >= self.max_age_s
                ):
                    started = time.perf_counter()
                    view = self.build_view(shard)
                    self.metrics.rank_view_build_seconds.observe(time.perf_counter() - started)
                    self._published[shard] = _Published(view, now_s, ticks)
                    messages.append(("view", view))
        return messages

    def current(self) -> list[tuple[Any, ...]]:
        """The messages that bring a fresh rank server to what was published so far."""
        return [
            ("view", p.view) if p.view is not None else ("empty", shard)
            for shard, p in self._published.items()
        ]
