"""`POST /rank` admission: the in-flight limit, the deadline, the published views, the counts.

This runs in the rank server (`streams.rank_server`), a process with an event loop of its own:
no request waits for the stream's event loop. For one request, in this order:

1. **Admission.** With `max_in_flight` requests already admitted and unanswered for
   `burst_s` or longer, or with `burst_in_flight`, the request is shed at once: 503,
   `Retry-After: retry_after_s`, `{"error", "reason": "capacity"}`. Nothing queues for a caller
   who will have left by the time its turn comes; a burst (the ranking processes held up for a
   moment, on a busy machine) is ranked, not shed, while lasting overload is shed down to
   `max_in_flight` (no new burst is allowed until `calm_s` passed without a shed). A request
   whose ranking is done no longer counts, though its answer is written a turn of the event
   loop later. The HTTP front asks `shed` before it reads the body, so a shed request is not
   parsed at all.
2. **Routing** (`streams.rank_route.route_rank`): 400/413 for a bad request, 421 for a shard
   another worker owns (the owned partitions are the ones the worker last published).
3. **The view.** Each shard's ranking view (`dispatch.live.rank_view`) is the one the worker
   published last (`ViewBoard`; the worker rebuilds it at most once per tick of the shard, see
   `streams.rank_publish`). A shard the worker said has no live state is answered with no
   couriers. For a shard the board knows nothing of yet, the worker is asked for its view and
   the request waits for it, within its deadline.
4. **Ranking** on the backend (`streams.rank_pool`: processes beside the rank server, or a
   thread), within `deadline_s` of the request's arrival. Past it the answer is 503 with
   `Retry-After` and `"reason": "deadline"`; a job not started by then is never ranked.

Counted in a `streams.rank_report.RankTally` (the worker turns it into its metrics): requests
by outcome, their latency by outcome, requests in flight and shed requests by reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatch.live.rank_view import RankView
from streams.json_post import Answer
from streams.rank_pool import ANSWERED, SKIPPED, JobResult, RankBackend, RankUnavailable
from streams.rank_report import RankTally
from streams.rank_route import RankJob, answer_body, error_answer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankLimits:
    """How much `POST /rank` work a worker takes on.

    Attributes:
        max_in_flight: requests admitted at once under lasting load; any beyond are shed (503).
        burst_in_flight: requests admitted at once for at most `burst_s`; any beyond are shed.
        burst_s: seconds the requests in flight may stay at `max_in_flight` or more (a burst:
            the ranking processes were held up and catch up) before the excess is shed.
        calm_s: after a request was shed for capacity, seconds without another before a new
            burst is allowed.
        deadline_s: seconds from arrival within which a request is answered, or shed (503).
        retry_after_s: `Retry-After` of a shed request, seconds.
    """

    max_in_flight: int = 16
    burst_in_flight: int = 64
    burst_s: float = 0.05
    calm_s: float = 0.05
    deadline_s: float = 0.1
    retry_after_s: int = 1


class ViewBoard:
    """The views the worker published, shard by shard, as the rank server knows them.

    A shard is known with couriers (`put`: its view went to the backend), known without live
    state (`empty`), or unknown (never published, or `drop`ped since). For an unknown shard,
    `wait` asks the worker for its view (`want`, at most once per `want_every_s` per shard) and
    waits until the worker answers.

    Args:
        backend: where the views go, to be ranked on.
        want: asks the worker for a shard's view.
        want_every_s: seconds before an unknown shard is asked for again.
        clock_s: monotonic seconds.
    """

    def __init__(
        self,
        backend: RankBackend,
        want: Callable[[str], None],
        *,
        want_every_s: float = 1.0,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.want = want
        self.want_every_s = want_every_s
        self.clock_s = clock_s
        self._known: dict[str, bool] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self._asked_s: dict[str, float] = {}

    def put(self, view: RankView) -> None:
        """Rank later requests of `view.shard` on `view`."""
        self.backend.publish(view)
        self._settle(view.shard, True)

    def empty(self, shard: str) -> None:
        """`shard` has no live state: its requests are answered with no couriers."""
        self.backend.forget(shard)
        self._settle(shard, False)

    def drop(self, shard: str) -> None:
        """Forget `shard` (the worker no longer sends its views); it is unknown again."""
        self.backend.forget(shard)
        self._known.pop(shard, None)
        self._asked_s.pop(shard, None)

    def known(self, shard: str) -> bool | None:
        """True: `shard` has a view; False: it has no live state; None: unknown."""
        return self._known.get(shard)

    async def wait(self, shard: str, timeout_s: float) -> bool | None:
        """What `known` says once the worker published `shard`, or None after `timeout_s`."""
        known = self._known.get(shard)
        if known is not None:
            return known
        now_s = self.clock_s()
        if now_s - self._asked_s.get(shard, -self.want_every_s) >= self.want_every_s:
            self._asked_s[shard] = now_s
            self.want(shard)
            known = self._known.get(shard)
            if known is not None:  # published at once
                return known
        arrived = self._arrived.setdefault(shard, asyncio.Event())
        try:
            await asyncio.wait_for(arrived.wait(), max(0.0, timeout_s))
        except TimeoutError:
            return None
        return self._known.get(shard)

    def _settle(self, shard: str, known: bool) -> None:
        self._known[shard] = known
        self._asked_s.pop(shard, None)
        arrived = self._arrived.pop(shard, None)
        if arrived is not None:
            arrived.set()


class RankService:
    """Answers `POST /rank` bodies; see the module docstring.

    Args:
        backend: where jobs are ranked.
        limits: admission limits.
        route: a request body to its job, or to the answer refusing it.
        views: the views the worker published.
        tally: where the counts go.
        clock_s: monotonic seconds (the deadline's clock, shared with ranking processes).
    """

    def __init__(
        self,
        backend: RankBackend,
        limits: RankLimits,
        *,
        route: Callable[[bytes], RankJob | tuple[int, bytes]],
        views: ViewBoard,
        tally: RankTally,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.route = route
        self.views = views
        self.tally = tally
        self.clock_s = clock_s
        self.in_flight = 0
        #: Since when the requests in flight have been at `max_in_flight` or more (None: not).
        self._over_since_s: float | None = None
        #: No burst is allowed before this time (a request was shed less than `calm_s` ago).
        self._no_burst_until_s = float("-inf")
        #: Ranking jobs of admitted requests; a settled one no longer holds its request back.
        self._ranking: set[asyncio.Future[JobResult]] = set()
        retry = {"Retry-After": str(limits.retry_after_s)}
        self._shed_capacity: Answer = (
            503,
            b'{"error":"too many rank requests in flight; retry later","reason":"capacity"}',
            retry,
        )
        self._shed_deadline: Answer = (
            503,
            b'{"error":"not ranked within the deadline; retry later","reason":"deadline"}',
            retry,
        )
        self._unavailable: Answer = (
            503,
            b'{"error":"no ranking process is running","reason":"unavailable"}',
            retry,
        )

    def shed(self) -> Answer | None:
        """The capacity shed (503, counted) when a request arriving now would be; else None.

        Asked before a request's body is read: a request shed for capacity costs no parsing.
        """
        now_s = self.clock_s()
        if not self._full(now_s):
            return None
        return self._done(now_s, "shed", self._shed_capacity, shed="capacity")

    def _full(self, now_s: float) -> bool:
        """Whether a request arriving at `now_s` is beyond the in-flight limits.

        Once a request was shed, no new burst is allowed until `calm_s` passed without another:
        overload that ebbs and flows around `max_in_flight` is held there, not let up to
        `burst_in_flight` again each time it dips below.
        """
        # A request whose ranking is done no longer counts: only its answer is due.
        busy = self.in_flight - sum(1 for future in self._ranking if future.done())
        limits = self.limits
        if busy < limits.max_in_flight:
            self._over_since_s = None
            return False
        if self._over_since_s is None:
            self._over_since_s = now_s
        if (
            busy >= limits.burst_in_flight
            or now_s < self._no_burst_until_s
            or now_s - self._over_since_s >= limits.burst_s
        ):
            self._no_burst_until_s = now_s + limits.calm_s
            return True
        return False

    async def answer(self, raw: bytes) -> Answer:
        """The answer to one request body `raw` (never raises for a bad request)."""
        started = self.clock_s()
        if self._full(started):
            return self._done(started, "shed", self._shed_capacity, shed="capacity")
        self.in_flight += 1
        self.tally.in_flight = self.in_flight
        try:
            return await self._admitted(raw, started)
        finally:
            self.in_flight -= 1
            self.tally.in_flight = self.in_flight

    async def _admitted(self, raw: bytes, started: float) -> Answer:
        routed = self.route(raw)
        if not isinstance(routed, RankJob):
            outcome = "not_owner" if routed[0] == 421 else "bad_request"
            return self._done(started, outcome, routed)
        self.tally.asked(routed.shard)
        deadline = started + self.limits.deadline_s
        has_view = self.views.known(routed.shard)
        if has_view is None:
            has_view = await self.views.wait(routed.shard, deadline - self.clock_s())
            if has_view is None:
                return self._done(started, "shed", self._shed_deadline, shed="deadline")
        if not has_view:
            return self._done(started, "answered", (200, answer_body(routed, ())))
        future = self.backend.submit(routed, deadline)
        timer = asyncio.get_running_loop().call_later(deadline - self.clock_s(), _expire, future)
        self._ranking.add(future)
        try:
            result = await future
        except RankUnavailable as exc:
            logger.warning("rank request not ranked: %s", exc)
            return self._done(started, "unavailable", self._unavailable)
        finally:
            timer.cancel()
            self._ranking.discard(future)
        if result.outcome == ANSWERED:
            return self._done(started, "answered", (200, result.body))
        if result.outcome == SKIPPED:
            return self._done(started, "shed", self._shed_deadline, shed="deadline")
        return self._done(started, "failed", error_answer(500, result.body.decode()))

    def _done(self, started: float, outcome: str, answer: Answer, shed: str = "") -> Answer:
        self.tally.answered(outcome, self.clock_s() - started, shed)
        return answer


def _expire(future: asyncio.Future[JobResult]) -> None:
    """The deadline passed: answer the request now (its job is skipped if not started)."""
    if not future.done():
        future.set_result(JobResult(SKIPPED))
