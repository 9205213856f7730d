"""Ranking backends: a ranking process answers as ranking here does, skips late jobs, may die."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from dispatchflow.settings import Settings
from streams.rank_pool import (
    ANSWERED,
    SKIPPED,
    JobResult,
    ProcessRankBackend,
    RankUnavailable,
    ThreadRankBackend,
    _Child,
    _ChildConnection,
    frame,
)
from streams.rank_route import RankJob, RankRequest, rank_job
from tests.unit.dispatch.live.shard_world import LAT, LON, SHARD, T0, World, offset

JOB = RankJob(RankRequest((LAT, LON), offset(1_000.0, 500.0), 3, None, None, None), SHARD, T0 + 1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A shard with four idle couriers."""
    with World(root=tmp_path) as w:
        for i, north in enumerate((200.0, 900.0, -1_500.0, 2_500.0)):
            w.online(f"c{i}", T0, at=offset(north, 100.0 * i))
        yield w


@pytest.fixture
async def processes() -> AsyncIterator[ProcessRankBackend]:
    """One ranking process, with the default settings (straight-line travel times)."""
    backend = ProcessRankBackend(1, Settings())
    await backend.start()
    yield backend
    await backend.close()


def later_s(seconds: float) -> float:
    """A deadline `seconds` from now."""
    return time.monotonic() + seconds


async def test_a_ranking_process_answers_what_ranking_here_answers(
    world: World, processes: ProcessRankBackend
) -> None:
    """The body a ranking process sends back is the one `rank_job` makes in this process."""
    view = world.engine.rank_view(SHARD)
    processes.publish(view)
    result = await processes.submit(JOB, later_s(30.0))
    assert (result.outcome, result.body) == (ANSWERED, rank_job(JOB, view, world.engine.predictor))


async def test_a_ranking_process_skips_a_job_whose_deadline_has_passed(
    world: World, processes: ProcessRankBackend
) -> None:
    """A job that reaches the process after its deadline is not ranked: it comes back skipped."""
    processes.publish(world.engine.rank_view(SHARD))
    result = await processes.submit(JOB, later_s(-1.0))
    assert (result.outcome, result.body) == (SKIPPED, b"")


async def test_a_forgotten_view_leaves_its_shard_without_couriers(
    world: World, processes: ProcessRankBackend
) -> None:
    """After `forget`, a job of the shard is answered with no couriers."""
    processes.publish(world.engine.rank_view(SHARD))
    processes.forget(SHARD)
    result = await processes.submit(JOB, later_s(30.0))
    assert result.body == rank_job(JOB, None, world.engine.predictor)


async def test_the_jobs_of_a_ranking_process_that_died_fail_as_unavailable(
    processes: ProcessRankBackend,
) -> None:
    """A job given to (or after) a process that was killed fails with `RankUnavailable`."""
    child = processes._children[0]
    assert child is not None
    child.process.kill()
    child.process.wait()
    with pytest.raises(RankUnavailable):
        await processes.submit(JOB, later_s(30.0))


async def test_the_thread_backend_answers_what_ranking_here_answers(world: World) -> None:
    """Ranking in a thread of this process gives the body `rank_job` makes."""
    backend = ThreadRankBackend(world.engine.predictor)
    await backend.start()
    try:
        view = world.engine.rank_view(SHARD)
        backend.publish(view)
        result = await backend.submit(JOB, later_s(30.0))
    finally:
        await backend.close()
    assert result.body == rank_job(JOB, view, world.engine.predictor)


async def test_answers_split_across_reads_settle_their_jobs_once_complete() -> None:
    """The server's end of a ranking process's socket reads frames however the bytes come."""
    loop = asyncio.get_running_loop()
    child = _Child(cast(Any, None))
    first, second = loop.create_future(), loop.create_future()
    child.pending.update({1: first, 2: second})
    connection = _ChildConnection(child, lambda: None)
    data = frame((1, ANSWERED, b"one")) + frame((2, SKIPPED, b""))
    cut = len(frame((1, ANSWERED, b"one"))) + 3
    connection.data_received(data[:5])
    settled_early = first.done()
    connection.data_received(data[5:cut])
    connection.data_received(data[cut:])
    assert (settled_early, first.result(), second.result(), child.pending) == (
        False,
        JobResult(ANSWERED, b"one"),
        JobResult(SKIPPED),
        {},
    )
