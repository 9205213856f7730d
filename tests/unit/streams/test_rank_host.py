"""The rank server beside the worker: its own port, the worker's views, counts, restarts.

It answers `POST /rank` from the views the worker publishes, reports its counts to the
worker's metrics, and is started again if it dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from contracts.partitioning import partition_for_key
from dispatchflow.settings import Settings
from streams.metrics import Metrics
from streams.rank_host import RankHost
from streams.rank_publish import ViewPublisher
from streams.rank_report import RankReport
from streams.rank_route import RankJob, RankRequest, rank_job
from tests.unit.dispatch.live.shard_world import LAT, LON, SHARD, T0, World, offset

PARTITIONS = 8
OWNED = {partition_for_key(SHARD.encode(), PARTITIONS)}
DROPOFF = offset(1_000.0, 0.0)
REQUEST = {
    "pickup": {"lat": LAT, "lon": LON},
    "dropoff": {"lat": DROPOFF[0], "lon": DROPOFF[1]},
    "k": 3,
    "request_time_ms": T0 + 1_000,
}
#: Seconds a test waits for the rank server (its start imports numpy and more).
START_S = 120.0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A shard with three idle couriers."""
    with World(root=tmp_path) as w:
        for i, north in enumerate((200.0, 900.0, -1_500.0)):
            w.online(f"c{i}", T0, at=offset(north, 100.0 * i))
        yield w


class Reports:
    """Wraps `host.handle` to tell when a report counted a request."""

    def __init__(self, host: RankHost) -> None:
        self.counted = asyncio.Event()
        handle = host.handle

        def counting(message: tuple[Any, ...]) -> None:
            handle(message)
            if message[0] == "report" and message[1].requests:
                self.counted.set()

        host.handle = counting  # type: ignore[method-assign]


def publisher_of(world: World) -> ViewPublisher:
    """A view publisher over `world`'s engine (views at most 5 s old)."""
    return ViewPublisher(
        shards=world.engine.shards,
        ticks=world.engine.ticks,
        build_view=world.engine.rank_view,
        metrics=Metrics(),
        max_age_s=5.0,
    )


@pytest.fixture
async def host(world: World) -> AsyncIterator[RankHost]:
    """A rank server on a free port, fed from `world`'s engine (one ranking process)."""
    publisher = publisher_of(world)
    settings = Settings(rank_port=0, rank_deadline_s=30.0)
    rank_host = RankHost(settings, PARTITIONS, publisher, lambda: set(OWNED), Metrics())
    running = asyncio.create_task(rank_host.run())
    await asyncio.wait_for(rank_host.serving.wait(), START_S)
    yield rank_host
    await rank_host.close()
    await running


async def post(host: RankHost, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `body` to the rank server; its status and JSON answer."""
    url = f"http://127.0.0.1:{host.port}/rank"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, orjson.loads(await response.read())


async def test_the_rank_server_answers_what_ranking_in_the_worker_answers(
    world: World, host: RankHost
) -> None:
    """A request to the rank port gets the body `rank_job` makes on the shard's view."""
    job = RankJob(RankRequest((LAT, LON), DROPOFF, 3, T0 + 1_000, None, None), SHARD, T0 + 1_000)
    expected = rank_job(job, world.engine.rank_view(SHARD), world.engine.predictor)
    assert await post(host, REQUEST) == (200, orjson.loads(expected))


async def test_a_request_of_a_partition_the_worker_does_not_own_gets_421(
    host: RankHost,
) -> None:
    """The server routes with the partitions the worker published."""
    far = {**REQUEST, "pickup": {"lat": -33.9, "lon": 151.2}}
    assert (await post(host, far))[0] == 421


async def test_the_server_s_counts_reach_the_worker_s_metrics(host: RankHost) -> None:
    """An answered request shows in the worker's requests{answered} after the next report."""
    reports = Reports(host)
    await post(host, REQUEST)
    await asyncio.wait_for(reports.counted.wait(), 10.0)
    answered = host.metrics.registry.get_sample_value(
        "dispatchflow_rank_requests_total", {"outcome": "answered"}
    )
    assert answered == 1.0


async def test_a_rank_server_that_died_is_started_again_on_the_same_port(
    host: RankHost,
) -> None:
    """After the server is killed, a new one serves the same port with the published views."""
    process, reading, port = host._process, host.reading, host.port
    assert process is not None and reading is not None
    process.kill()
    await reading  # the host saw the server end on its control socket
    await asyncio.wait_for(host.serving.wait(), START_S)
    assert (host.port, (await post(host, REQUEST))[0]) == (port, 200)


def test_readiness_follows_the_server_s_reports_once_it_said_ready(world: World) -> None:
    """`ready` is set by the server's `ready`, then cleared by a report it cannot rank in."""
    publisher = publisher_of(world)
    rank_host = RankHost(Settings(rank_port=0), PARTITIONS, publisher, set, Metrics())
    rank_host.handle(("ready",))
    said_ready = rank_host.ready
    rank_host.handle(("report", RankReport(ranking_ready=False)))
    assert (said_ready, rank_host.ready) == (True, False)
