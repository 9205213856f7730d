"""`POST /rank` admission: shedding at the in-flight limit, the deadline, view reuse, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.partitioning import partition_for_key
from dispatch.live.rank_view import RankView
from streams.metrics import Metrics
from streams.rank_pool import ANSWERED, JobResult, RankUnavailable
from streams.rank_route import RankJob, route_rank
from streams.rank_service import RankLimits, RankService
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
        self.arrived = asyncio.Condition()

    @property
    def ready(self) -> bool:
        return not self.unavailable

    def publish(self, view: RankView) -> None:
        self.published.append(view)

    def forget(self, shard: str) -> None:
        return

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
    metrics: Metrics | None = None,
    clock: ManualClock | None = None,
    built: list[str] | None = None,
) -> RankService:
    """A service over `world`'s engine; `built` collects the shards whose view was built."""

    def build_view(shard: str) -> RankView:
        if built is not None:
            built.append(shard)
        return world.engine.rank_view(shard)

    extra: dict[str, Any] = {} if clock is None else {"clock_s": clock}
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
        shards=world.engine.shards,
        ticks=world.engine.ticks,
        build_view=build_view,
        metrics=metrics or Metrics(),
        **extra,
    )


def count(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's value (0 when absent)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_request_beyond_the_in_flight_limit_gets_503_with_retry_after(world: World) -> None:
    """With the limit's worth of requests unanswered, the next is shed at once, not queued."""
    backend = FakeBackend()
    rank = service(world, backend, RankLimits(max_in_flight=2, deadline_s=30.0, retry_after_s=3))
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


async def test_a_shed_request_is_counted_by_reason_and_outcome(world: World) -> None:
    """A request shed at the limit counts in shed{capacity} and requests{shed}."""
    backend, metrics = FakeBackend(), Metrics()
    rank = service(world, backend, RankLimits(max_in_flight=1, deadline_s=30.0), metrics)
    waiting = asyncio.create_task(rank.answer(BODY))
    await backend.wait_jobs(1)
    await rank.answer(BODY)
    backend.settle_all()
    await waiting
    assert count(metrics, "dispatchflow_rank_shed_total", reason="capacity") == 1.0
    assert count(metrics, "dispatchflow_rank_requests_total", outcome="shed") == 1.0
    assert count(metrics, "dispatchflow_rank_requests_total", outcome="answered") == 1.0


async def test_a_request_not_ranked_by_its_deadline_gets_503_with_retry_after(
    world: World,
) -> None:
    """A job the backend has not answered when the deadline passes is answered 503 (deadline)."""
    backend, metrics = FakeBackend(), Metrics()
    rank = service(world, backend, RankLimits(deadline_s=0.01, retry_after_s=2), metrics)
    status, body, headers = await rank.answer(BODY)  # type: ignore[misc]
    assert (status, orjson.loads(body)["reason"], headers) == (
        503,
        "deadline",
        {"Retry-After": "2"},
    )
    assert count(metrics, "dispatchflow_rank_shed_total", reason="deadline") == 1.0


async def test_the_backend_is_told_the_deadline_so_it_can_skip_the_job(world: World) -> None:
    """The job handed over carries its deadline: arrival plus `deadline_s`, on the clock."""
    backend, clock = FakeBackend(instant=True), ManualClock()
    rank = service(world, backend, RankLimits(deadline_s=0.25), clock=clock)
    await rank.answer(BODY)
    assert [deadline for _, deadline, _ in backend.jobs] == [clock.now_s + 0.25]


async def test_the_view_is_reused_until_it_is_max_age_old_then_rebuilt(world: World) -> None:
    """Without ticks, requests within `view_max_age_s` of the build reuse it; later, rebuilt."""
    backend, clock = FakeBackend(instant=True), ManualClock()
    built: list[str] = []
    rank = service(world, backend, RankLimits(view_max_age_s=1.0), clock=clock, built=built)
    for moment in (0.0, 0.5, 0.99, 1.0, 1.5):
        clock.now_s = 100.0 + moment
        await rank.answer(BODY)
    assert built == [SHARD, SHARD]
    assert len(backend.published) == 2


async def test_a_tick_of_the_shard_makes_the_next_request_rebuild_the_view(world: World) -> None:
    """Requests reuse the view until the shard ticks; the first one after the tick rebuilds it."""
    backend = FakeBackend(instant=True)
    built: list[str] = []
    rank = service(
        world, backend, RankLimits(view_max_age_s=60.0), clock=ManualClock(), built=built
    )
    await rank.answer(BODY)
    await rank.answer(BODY)
    world.tick(T0 + 2_000)
    await rank.answer(BODY)
    await rank.answer(BODY)
    assert built == [SHARD, SHARD]


async def test_in_flight_counts_admitted_requests_until_they_are_answered(world: World) -> None:
    """The gauge shows requests admitted and unanswered, and falls back when they are."""
    backend, metrics = FakeBackend(), Metrics()
    rank = service(world, backend, RankLimits(deadline_s=30.0), metrics)
    waiting = [asyncio.create_task(rank.answer(BODY)) for _ in range(3)]
    await backend.wait_jobs(3)
    during = count(metrics, "dispatchflow_rank_in_flight")
    backend.settle_all()
    await asyncio.gather(*waiting)
    assert (during, count(metrics, "dispatchflow_rank_in_flight")) == (3.0, 0.0)


async def test_each_answer_s_latency_is_observed_under_its_outcome(world: World) -> None:
    """The latency histogram counts answered and refused requests under their own outcome."""
    backend, metrics = FakeBackend(instant=True), Metrics()
    rank = service(world, backend, RankLimits(), metrics)
    await rank.answer(BODY)
    await rank.answer(b"not json")
    seconds = "dispatchflow_rank_request_seconds_count"
    assert count(metrics, seconds, outcome="answered") == 1.0
    assert count(metrics, seconds, outcome="bad_request") == 1.0


async def test_no_ranking_process_means_503_unavailable(world: World) -> None:
    """When the backend cannot take the job, the answer is 503 (unavailable), counted."""
    metrics = Metrics()
    rank = service(world, FakeBackend(unavailable=True), RankLimits(), metrics)
    status, body, _ = await rank.answer(BODY)  # type: ignore[misc]
    assert (status, orjson.loads(body)["reason"]) == (503, "unavailable")
    assert count(metrics, "dispatchflow_rank_requests_total", outcome="unavailable") == 1.0


async def test_a_shard_without_state_is_answered_without_the_backend(world: World) -> None:
    """A job in an owned shard with no live state lists no couriers and ranks nothing."""
    backend = FakeBackend()
    rank = service(world, backend, RankLimits())
    world.offline("c1", T0 + 1)
    world.engine.state.delete_courier(SHARD, "c1")
    status, body, *_ = await rank.answer(BODY)
    assert (status, orjson.loads(body)["couriers"], backend.jobs) == (200, [], [])
