"""`POST /rank` admission: shedding at the in-flight limit, the deadline, the views, the counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.partitioning import partition_for_key
from dispatch.live.rank_view import RankView
from streams.rank_pool import ANSWERED, JobResult, RankUnavailable
from streams.rank_report import RankTally
from streams.rank_route import RankJob, route_rank
from streams.rank_service import RankLimits, RankService, ViewBoard
from tests.clocks import ManualClock
from tests.unit.dispatch.live.shard_world import LAT, LON, PRECISION, SHARD, T0, World, offset

PARTITIONS = 8
OWNED = (partition_for_key(SHARD.encode(), PARTITIONS),)
BODY = orjson.dumps(
    {
        "pickup": {"lat": LAT, "lon": LON},
        "dropoff": {"lat": offset(1_000.0, 0.0)[0], "lon": LON},
        "request_time_ms": T0 + 1_000,
    }
)


class FakeBackend:
    """Jobs wait until the test settles them (or answers them at once with `instant`)."""

    def __init__(self, *, instant: bool = False, unavailable: bool = False) -> None:
        self.instant = instant
        self.unavailable = unavailable
        self.jobs: list[tuple[RankJob, float, asyncio.Future[JobResult]]] = []
        self.published: list[RankView] = []
        self.forgotten: list[str] = []
        self.arrived = asyncio.Condition()

    @property
    def ready(self) -> bool:
        return not self.unavailable

    def publish(self, view: RankView) -> None:
        self.published.append(view)

    def forget(self, shard: str) -> None:
        self.forgotten.append(shard)

    def submit(self, job: RankJob, deadline_s: float) -> asyncio.Future[JobResult]:
        future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        if self.unavailable:
            future.set_exception(RankUnavailable("none running"))
        elif self.instant:
            future.set_result(JobResult(ANSWERED, b'{"couriers":[]}'))
        self.jobs.append((job, deadline_s, future))
        asyncio.get_running_loop().create_task(self._tell())
        return future

    async def _tell(self) -> None:
        async with self.arrived:
            self.arrived.notify_all()

    async def wait_jobs(self, count: int) -> None:
        """Return once `count` jobs were submitted."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.jobs) >= count)

    def settle_all(self) -> None:
        for _, _, future in self.jobs:
            if not future.done():
                future.set_result(JobResult(ANSWERED, b'{"couriers":[]}'))

    async def start(self) -> None:
        return

    async def close(self) -> None:
        return


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A shard with one idle courier."""
    with World(root=tmp_path) as w:
        w.online("c1", T0, at=offset(300.0, 0.0))
        yield w


def service(
    world: World,
    backend: FakeBackend,
    limits: RankLimits,
    tally: RankTally | None = None,
    clock: ManualClock | None = None,
    *,
    published: bool = True,
    want: Callable[[str], None] = lambda shard: None,
) -> RankService:
    """A service over `world`'s shard; its view is on the board unless not `published`.

    `want` is told the shards the board asks the worker for.
    """
    extra: dict[str, Any] = {} if clock is None else {"clock_s": clock}
    board = ViewBoard(backend, want)
    if published:
        board.put(world.engine.rank_view(SHARD))
    return RankService(
        backend,
        limits,
        route=partial(
            route_rank,
            shard_precision=PRECISION,
            shard_partitions=PARTITIONS,
            owned_partitions=OWNED,
            clock_ms=lambda: T0,
        ),
        views=board,
        tally=tally or RankTally(),
        **extra,
    )


async def test_a_request_beyond_the_in_flight_limit_gets_503_with_retry_after(world: World) -> None:
    """With the limit's worth of requests unanswered, the next is shed at once, not queued."""
    backend = FakeBackend()
    rank = service(
        world,
        backend,
        RankLimits(max_in_flight=2, burst_in_flight=2, deadline_s=30.0, retry_after_s=3),
    )
    waiting = [asyncio.create_task(rank.answer(BODY)) for _ in range(2)]
    await backend.wait_jobs(2)
    status, body, headers = await rank.answer(BODY)  # type: ignore[misc]
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert (status, orjson.loads(body)["reason"], headers) == (
        503,
        "capacity",
        {"Retry-After": "3"},
    )
    assert len(backend.jobs) == 2


async def test_at_the_in_flight_limit_shed_answers_503_before_any_body_is_read(
    world: World,
) -> None:
    """`shed` (asked before the body is read) gives the capacity 503, counted as shed."""
    backend, tally = FakeBackend(), RankTally()
    rank = service(
        world, backend, RankLimits(max_in_flight=1, burst_in_flight=1, deadline_s=30.0), tally
    )
    waiting = asyncio.create_task(rank.answer(BODY))
    await backend.wait_jobs(1)
    shed = rank.shed()
    backend.settle_all()
    await waiting
    assert shed is not None
    assert (shed[0], orjson.loads(shed[1])["reason"], tally.drain().shed) == (
        503,
        "capacity",
        {"capacity": 1},
    )


def test_below_the_in_flight_limit_shed_lets_the_request_in(world: World) -> None:
    """With room in flight, `shed` answers nothing and counts nothing."""
    tally = RankTally()
    rank = service(world, FakeBackend(), RankLimits(max_in_flight=1), tally)
    assert (rank.shed(), tally.drain().requests) == (None, {})


async def test_a_request_whose_ranking_is_done_no_longer_counts_against_the_limit(
    world: World,
) -> None:
    """At the limit, a job answered (its request not yet resumed) makes room at once."""
    backend = FakeBackend()
    rank = service(world, backend, RankLimits(max_in_flight=1, burst_in_flight=1, deadline_s=30.0))
    waiting = asyncio.create_task(rank.answer(BODY))
    await backend.wait_jobs(1)
    full = rank.shed()
    backend.settle_all()
    room = rank.shed()
    await waiting
    assert (full is not None, room) == (True, None)


BURST = RankLimits(max_in_flight=1, burst_in_flight=3, burst_s=0.05, calm_s=1.0, deadline_s=30.0)


async def admitted(rank: RankService, backend: FakeBackend, count: int) -> list[asyncio.Task[Any]]:
    """`count` more requests admitted and waiting for their ranking."""
    jobs = len(backend.jobs) + count
    waiting = [asyncio.create_task(rank.answer(BODY)) for _ in range(count)]
    await backend.wait_jobs(jobs)
    return waiting


async def test_a_burst_beyond_max_in_flight_is_admitted_for_up_to_burst_s(world: World) -> None:
    """At `max_in_flight` for less than `burst_s`, a request is still admitted, not shed."""
    backend, clock = FakeBackend(), ManualClock()
    rank = service(world, backend, BURST, clock=clock)
    waiting = await admitted(rank, backend, 1)
    first = rank.shed()
    clock.now_s += 0.04
    later = rank.shed()
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert (first, later) == (None, None)


async def test_in_flight_at_max_for_burst_s_sheds_the_excess(world: World) -> None:
    """Lasting load (at `max_in_flight` for `burst_s`) is shed down to `max_in_flight`."""
    backend, clock = FakeBackend(), ManualClock()
    rank = service(world, backend, BURST, clock=clock)
    waiting = await admitted(rank, backend, 1)
    rank.shed()  # the burst starts
    clock.now_s += 0.06
    shed = rank.shed()
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert shed is not None and shed[0] == 503


async def test_a_request_beyond_burst_in_flight_is_shed_at_once(world: World) -> None:
    """No burst holds more than `burst_in_flight` in flight."""
    backend, clock = FakeBackend(), ManualClock()
    rank = service(world, backend, BURST, clock=clock)
    waiting = await admitted(rank, backend, 3)
    shed = rank.shed()
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert shed is not None and shed[0] == 503


async def test_the_burst_clock_restarts_once_in_flight_falls_below_max(world: World) -> None:
    """A burst that ended does not count against the next one."""
    backend, clock = FakeBackend(), ManualClock()
    rank = service(world, backend, BURST, clock=clock)
    waiting = await admitted(rank, backend, 1)
    rank.shed()  # a burst starts
    backend.settle_all()
    await asyncio.gather(*waiting)
    rank.shed()  # below max: it ended
    clock.now_s += 0.06
    waiting = await admitted(rank, backend, 2)
    again = rank.shed()
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert again is None


async def test_after_lasting_load_no_new_burst_is_allowed_until_calm_s_without_a_shed(
    world: World,
) -> None:
    """Overload that dips below `max_in_flight` now and then is not let up to a burst again."""
    backend, clock = FakeBackend(), ManualClock()
    rank = service(world, backend, BURST, clock=clock)
    waiting = await admitted(rank, backend, 1)
    rank.shed()  # a burst starts ...
    clock.now_s += 0.06
    rank.shed()  # ... and lasted: shed
    backend.settle_all()
    await asyncio.gather(*waiting)
    rank.shed()  # a dip below max_in_flight
    waiting = await admitted(rank, backend, 1)
    at_once = rank.shed()  # no new burst yet
    backend.settle_all()
    await asyncio.gather(*waiting)
    clock.now_s += 1.01  # calm: nothing shed for calm_s
    rank.shed()
    waiting = await admitted(rank, backend, 1)
    after_calm = rank.shed()  # a new burst
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert (at_once is not None, after_calm) == (True, None)


async def test_a_shed_request_is_counted_by_reason_and_outcome(world: World) -> None:
    """A request shed at the limit counts in shed{capacity} and requests{shed}."""
    backend, tally = FakeBackend(), RankTally()
    rank = service(
        world, backend, RankLimits(max_in_flight=1, burst_in_flight=1, deadline_s=30.0), tally
    )
    waiting = asyncio.create_task(rank.answer(BODY))
    await backend.wait_jobs(1)
    await rank.answer(BODY)
    backend.settle_all()
    await waiting
    report = tally.drain()
    assert (report.shed, report.requests) == ({"capacity": 1}, {"shed": 1, "answered": 1})


async def test_a_request_not_ranked_by_its_deadline_gets_503_with_retry_after(
    world: World,
) -> None:
    """A job the backend has not answered when the deadline passes is answered 503 (deadline)."""
    backend, tally = FakeBackend(), RankTally()
    rank = service(world, backend, RankLimits(deadline_s=0.01, retry_after_s=2), tally)
    status, body, headers = await rank.answer(BODY)  # type: ignore[misc]
    assert (status, orjson.loads(body)["reason"], headers) == (
        503,
        "deadline",
        {"Retry-After": "2"},
    )
    assert tally.drain().shed == {"deadline": 1}


async def test_the_backend_is_told_the_deadline_so_it_can_skip_the_job(world: World) -> None:
    """The job handed over carries its deadline: arrival plus `deadline_s`, on the clock."""
    backend, clock = FakeBackend(instant=True), ManualClock()
    rank = service(world, backend, RankLimits(deadline_s=0.25), clock=clock)
    await rank.answer(BODY)
    assert [deadline for _, deadline, _ in backend.jobs] == [clock.now_s + 0.25]


async def test_in_flight_counts_admitted_requests_until_they_are_answered(world: World) -> None:
    """The tally's in-flight count shows requests admitted and unanswered, then falls back."""
    backend, tally = FakeBackend(), RankTally()
    rank = service(world, backend, RankLimits(deadline_s=30.0), tally)
    waiting = [asyncio.create_task(rank.answer(BODY)) for _ in range(3)]
    await backend.wait_jobs(3)
    during = tally.drain().in_flight
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert (during, tally.drain().in_flight) == (3, 0)


async def test_each_answer_s_latency_is_noted_under_its_outcome(world: World) -> None:
    """The tally holds one latency per answer, under the answer's outcome."""
    backend, tally = FakeBackend(instant=True), RankTally()
    rank = service(world, backend, RankLimits(), tally)
    await rank.answer(BODY)
    await rank.answer(b"not json")
    seconds = tally.drain().seconds
    assert {k: len(v) for k, v in seconds.items()} == {"answered": 1, "bad_request": 1}


async def test_the_shard_a_request_asks_about_is_noted(world: World) -> None:
    """The report names the shards requests asked about (the worker keeps their views fresh)."""
    tally = RankTally()
    rank = service(world, FakeBackend(instant=True), RankLimits(), tally)
    await rank.answer(BODY)
    assert tally.drain().asked == frozenset({SHARD})


async def test_no_ranking_process_means_503_unavailable(world: World) -> None:
    """When the backend cannot take the job, the answer is 503 (unavailable), counted."""
    tally = RankTally()
    rank = service(world, FakeBackend(unavailable=True), RankLimits(), tally)
    status, body, _ = await rank.answer(BODY)  # type: ignore[misc]
    assert (status, orjson.loads(body)["reason"]) == (503, "unavailable")
    assert tally.drain().requests == {"unavailable": 1}


async def test_a_shard_published_empty_is_answered_without_the_backend(world: World) -> None:
    """A job in a shard the worker published as empty lists no couriers and ranks nothing."""
    backend = FakeBackend()
    rank = service(world, backend, RankLimits())
    rank.views.empty(SHARD)
    status, body, *_ = await rank.answer(BODY)
    assert (status, orjson.loads(body)["couriers"], backend.jobs) == (200, [], [])


async def test_a_request_for_an_unknown_shard_asks_the_worker_for_its_view(world: World) -> None:
    """The board asks for the view of a shard it knows nothing of, once for waiting requests."""
    wanted: list[str] = []
    rank = service(
        world, FakeBackend(), RankLimits(deadline_s=0.01), published=False, want=wanted.append
    )
    await asyncio.gather(rank.answer(BODY), rank.answer(BODY))
    assert wanted == [SHARD]


async def test_a_request_waits_for_the_view_it_asked_for_then_is_ranked(world: World) -> None:
    """A request of an unknown shard is ranked once the view it waits for is published."""
    backend, asked = FakeBackend(instant=True), asyncio.Event()
    rank = service(
        world, backend, RankLimits(deadline_s=30.0), published=False, want=lambda _: asked.set()
    )
    waiting = asyncio.create_task(rank.answer(BODY))
    await asked.wait()
    rank.views.put(world.engine.rank_view(SHARD))
    status, *_ = await waiting
    assert (status, len(backend.jobs)) == (200, 1)


async def test_a_view_that_does_not_come_by_the_deadline_means_503_deadline(
    world: World,
) -> None:
    """A request of an unknown shard whose view is not published in time is shed (deadline)."""
    tally = RankTally()
    rank = service(world, FakeBackend(), RankLimits(deadline_s=0.01), tally, published=False)
    status, body, *_ = await rank.answer(BODY)
    assert (status, orjson.loads(body)["reason"], tally.drain().shed) == (
        503,
        "deadline",
        {"deadline": 1},
    )


async def test_a_dropped_shard_is_unknown_again(world: World) -> None:
    """After `drop`, the board knows nothing of the shard and the backend forgot its view."""
    backend = FakeBackend()
    rank = service(world, backend, RankLimits())
    rank.views.drop(SHARD)
    assert (rank.views.known(SHARD), backend.forgotten) == (None, [SHARD])
