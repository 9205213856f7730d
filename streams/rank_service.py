"""`POST /rank` admission: the in-flight limit, the deadline, the ranking views, the counts.

What the stream's event loop does for one request, in this order:

1. **Admission.** With `max_in_flight` requests already admitted and unanswered, the request is
   shed at once: 503, `Retry-After: retry_after_s`, `{"error", "reason": "capacity"}`. Nothing
   queues for a caller who will have left by the time its turn comes.
2. **Routing** (`streams.rank_route.route_rank`): 400/413 for a bad request, 421 for a shard
   another worker owns.
3. **The view.** Each shard's ranking view (`dispatch.live.rank_view`) is rebuilt by the first
   request after each tick of the shard (so it shows the tick's offers), or once it is
   `view_max_age_s` old when ticks are rarer than that, and reused by every other request.
   The rebuild runs on this loop (one pass over the shard's couriers, timed in
   `dispatchflow_rank_view_build_seconds`) and hands the view to the backend. A shard without
   live state has no view: its answer lists no couriers.
4. **Ranking** on the backend (`streams.rank_pool`: processes beside the worker, or a thread),
   within `deadline_s` of the request's arrival. Past it the answer is 503 with `Retry-After`
   and `"reason": "deadline"`; a job not started by then is never ranked.

Counted: requests by outcome (`dispatchflow_rank_requests_total`), their latency by outcome
(`dispatchflow_rank_request_seconds`), requests in flight (`dispatchflow_rank_in_flight`) and
shed requests by reason (`dispatchflow_rank_shed_total`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatch.live.rank_view import RankView
from streams.json_post import Answer
from streams.metrics import Metrics
from streams.rank_pool import ANSWERED, SKIPPED, JobResult, RankBackend, RankUnavailable
from streams.rank_route import RankJob, answer_body, error_answer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankLimits:
    """How much `POST /rank` work a worker takes on.

    Attributes:
        max_in_flight: requests admitted at once; any beyond are shed (503).
        deadline_s: seconds from arrival within which a request is answered, or shed (503).
        retry_after_s: `Retry-After` of a shed request, seconds.
        view_max_age_s: a shard's view is rebuilt once this old, even without a tick.
    """

    max_in_flight: int = 16
    deadline_s: float = 0.1
    retry_after_s: int = 1
    view_max_age_s: float = 5.0


@dataclass
class _Built:
    view: RankView
    built_s: float
    ticks: int


class RankService:
    """Answers `POST /rank` bodies; see the module docstring.

    Args:
        backend: where jobs are ranked.
        limits: admission limits.
        route: a request body to its job, or to the answer refusing it.
        shards: the shards with live state in this worker's partitions.
        ticks: how many ticks of a shard the engine has handled.
        build_view: a shard's ranking view from its state now.
        metrics: where the counts go.
        clock_s: monotonic seconds (the deadline's clock, shared with ranking processes).
    """

    def __init__(
        self,
        backend: RankBackend,
        limits: RankLimits,
        *,
        route: Callable[[bytes], RankJob | tuple[int, bytes]],
        shards: Callable[[], list[str]],
        ticks: Callable[[str], int],
        build_view: Callable[[str], RankView],
        metrics: Metrics,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.route = route
        self.shards = shards
        self.ticks = ticks
        self.build_view = build_view
        self.metrics = metrics
        self.clock_s = clock_s
        self.in_flight = 0
        self._views: dict[str, _Built] = {}
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

    async def answer(self, raw: bytes) -> Answer:
        """The answer to one request body `raw` (never raises for a bad request)."""
        started = self.clock_s()
        if self.in_flight >= self.limits.max_in_flight:
            return self._done(started, "shed", self._shed_capacity, shed="capacity")
        self.in_flight += 1
        self.metrics.rank_in_flight.set(self.in_flight)
        try:
            return await self._admitted(raw, started)
        finally:
            self.in_flight -= 1
            self.metrics.rank_in_flight.set(self.in_flight)

    async def _admitted(self, raw: bytes, started: float) -> Answer:
        routed = self.route(raw)
        if not isinstance(routed, RankJob):
            outcome = "not_owner" if routed[0] == 421 else "bad_request"
            return self._done(started, outcome, routed)
        view = self.view(routed.shard, started)
        if view is None:
            return self._done(started, "answered", (200, answer_body(routed, ())))
        deadline = started + self.limits.deadline_s
        future = self.backend.submit(routed, deadline)
        timer = asyncio.get_running_loop().call_later(deadline - self.clock_s(), _expire, future)
        try:
            result = await future
        except RankUnavailable as exc:
            logger.warning("rank request not ranked: %s", exc)
            return self._done(started, "unavailable", self._unavailable)
        finally:
            timer.cancel()
        if result.outcome == ANSWERED:
            return self._done(started, "answered", (200, result.body))
        if result.outcome == SKIPPED:
            return self._done(started, "shed", self._shed_deadline, shed="deadline")
        return self._done(started, "failed", error_answer(500, result.body.decode()))

    def view(self, shard: str, now_s: float) -> RankView | None:
        """`shard`'s view, rebuilt after a tick or at `view_max_age_s` (None: no live state)."""
        built = self._views.get(shard)
        ticks = self.ticks(shard)
        if (
            built is not None
            and built.ticks == ticks
            and now_s - built.built_s < self.limits.view_max_age_s
        ):
            return built.view
        if shard not in self.shards():
            if built is not None:
                del self._views[shard]
                self.backend.forget(shard)
            return None
        started = time.perf_counter()
        view = self.build_view(shard)
        self.metrics.rank_view_build_seconds.observe(time.perf_counter() - started)
        self._views[shard] = _Built(view, now_s, ticks)
        self.backend.publish(view)
        return view

    def _done(self, started: float, outcome: str, answer: Answer, shed: str = "") -> Answer:
        self.metrics.rank_requests.labels(outcome).inc()
        self.metrics.rank_request_seconds.labels(outcome).observe(self.clock_s() - started)
        if shed:
            self.metrics.rank_shed.labels(shed).inc()
        return answer


def _expire(future: asyncio.Future[JobResult]) -> None:
    """The deadline passed: answer the request now (its job is skipped if not started)."""
    if not future.done():
        future.set_result(JobResult(SKIPPED))
