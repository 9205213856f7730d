"""Noticing that the worker process was stopped long enough to lose its partitions.

A process that is stopped (SIGSTOP, a frozen VM or container, a swap storm) stops heartbeating;
past the group's session timeout the broker hands its partitions to another worker. When it runs
again it does not know yet: its agents would go on with the records queued before the stop, write
state and publish decisions from a stale view while the new owner does the same (a zombie). Faust's
at-least-once producer cannot be fenced, so the worker fences itself: a watch thread ticks a few
times per second, and a gap between its ticks longer than the session timeout means the process
was stopped. The watch then calls its `on_stall` at once (the worker exits with
`SESSION_LOST_EXIT_STATUS`, nothing more produced, so that its supervisor restarts it and it
rejoins the group from committed offsets and changelogs); every record an agent is about to
handle is checked against the watch too, for an agent that runs before the watch thread does.

The watch runs on a thread of its own, so a busy event loop (the consumer heartbeats from a thread
of its own too) is not mistaken for a stopped process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Exit status of a worker that stopped itself after a stall longer than its session timeout.
SESSION_LOST_EXIT_STATUS = 75


class StallWatch:
    """Remembers the longest gap between ticks that exceeded `limit_s` (a stopped process)."""

    def __init__(
        self,
        limit_s: float,
        *,
        interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        on_stall: Callable[[float], None] | None = None,
    ) -> None:
        self.limit_s = limit_s
        self.on_stall = on_stall
        self.interval_s = interval_s
        self._clock = clock
        self._last_tick_s = clock()
        self._stalled_s: float | None = None
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Note that the process runs; the first gap past the limit is kept and told `on_stall`."""
        now = self._clock()
        gap = now - self._last_tick_s
        self._last_tick_s = now
        if gap > self.limit_s and self._stalled_s is None:
            self._stalled_s = gap
            if self.on_stall is not None:
                self.on_stall(gap)

    def stalled_s(self) -> float | None:
        """How long the process was stopped, if ever longer than the limit; else None.

        Also true before the watch thread has ticked after the stop: the gap since its last
        tick counts.
        """
        if self._stalled_s is not None:
            return self._stalled_s
        gap = self._clock() - self._last_tick_s
        return gap if gap > self.limit_s else None

    def start(self) -> None:
        """Tick every `interval_s` on a daemon thread (once; later calls do nothing)."""
        if self._thread is not None:
            return
        self._last_tick_s = self._clock()

        def run() -> None:
            while True:
                time.sleep(self.interval_s)
                self.tick()

        self._thread = threading.Thread(target=run, name="stall-watch", daemon=True)
        self._thread.start()
