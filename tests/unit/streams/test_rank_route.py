"""`POST /rank`: request validation, shard ownership and the ranking it answers with.

Requests go through the real `RankService` with its in-process (thread) backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.geo import shard_of
from contracts.partitioning import partition_for_key
from streams.rank_pool import ThreadRankBackend
from streams.rank_report import RankTally
from streams.rank_route import MAX_RANK_BODY_BYTES, route_rank
from streams.rank_service import RankLimits, RankService, ViewBoard
from tests.unit.dispatch.live.shard_world import LAT, LON, PRECISION, SHARD, T0, World, offset

PARTITIONS = 8
OWNED = (partition_for_key(SHARD.encode(), PARTITIONS),)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A shard with three idle couriers at growing distances from the pickup point."""
    with World(root=tmp_path) as w:
        for i, north in enumerate((200.0, 1_500.0, 3_000.0)):
            w.online(f"c{i}", T0, at=offset(north, 0.0))
        yield w


def body(**fields: Any) -> bytes:
    """A request for a job at the shard's centre, overridable field by field."""
    dropoff_lat, dropoff_lon = offset(1_000.0, 1_000.0)
    request = {
        "pickup": {"lat": LAT, "lon": LON},
        "dropoff": {"lat": dropoff_lat, "lon": dropoff_lon},
        "k": 2,
        "request_time_ms": T0 + 1_000,
        **fields,
    }
    return orjson.dumps(request)


@pytest.fixture
async def backend(world: World) -> AsyncIterator[ThreadRankBackend]:
    """The in-process ranking backend, with the world's travel times."""
    ranking = ThreadRankBackend(world.engine.predictor)
    await ranking.start()
    yield ranking
    await ranking.close()


async def ask(
    world: World, backend: ThreadRankBackend, raw: bytes, owned: tuple[int, ...] = OWNED
) -> tuple[int, Any]:
    """Status and decoded body of one request answered by a worker owning `owned`.

    The board gets a shard's view (or hears it is empty) when it asks, as from the worker.
    """

    def publish(shard: str) -> None:
        if shard in world.engine.shards():
            board.put(world.engine.rank_view(shard))
        else:
            board.empty(shard)

    board = ViewBoard(backend, publish)
    service = RankService(
        backend,
        RankLimits(),
        route=partial(
            route_rank,
            shard_precision=PRECISION,
            shard_partitions=PARTITIONS,
            owned_partitions=owned,
            clock_ms=lambda: T0 + 1_000,
        ),
        views=board,
        tally=RankTally(),
    )
    status, payload, *_ = await service.answer(raw)
    return status, orjson.loads(payload)


async def test_a_valid_request_gets_the_k_cheapest_couriers_with_their_terms(
    world: World, backend: ThreadRankBackend
) -> None:
    """200 with k couriers, cheapest first, each with terms that add up to its cost."""
    status, answer = await ask(world, backend, body())
    assert status == 200 and answer["shard"] == SHARD
    couriers = answer["couriers"]
    assert [c["courier_id"] for c in couriers] == ["c0", "c1"]
    for c in couriers:
        assert sum(c["terms"].values()) == pytest.approx(c["cost"], abs=1e-9)


async def test_the_answer_matches_the_engine_s_own_ranking(
    world: World, backend: ThreadRankBackend
) -> None:
    """The route answers exactly what `ShardEngine.rank` returns for the same job."""
    _, answer = await ask(world, backend, body(k=3))
    direct = world.rank((LAT, LON), offset(1_000.0, 1_000.0), T0 + 1_000, 3)
    assert [(c["courier_id"], c["cost"]) for c in answer["couriers"]] == [
        (r.courier_id, r.cost) for r in direct
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        body(k=0),
        body(k=51),
        body(k="3"),
        body(pickup={"lat": 91.0, "lon": LON}),
        body(dropoff={"lat": LAT}),
        body(request_time_ms=-1),
    ],
    ids=["not-json", "not-object", "k-0", "k-51", "k-string", "lat-range", "no-lon", "neg-time"],
)
async def test_a_malformed_request_gets_400_with_a_reason(
    world: World, backend: ThreadRankBackend, raw: bytes
) -> None:
    """Malformed bodies are answered 400 with an error message, never an exception."""
    status, answer = await ask(world, backend, raw)
    assert status == 400 and answer["error"]


async def test_an_oversized_body_gets_413(world: World, backend: ThreadRankBackend) -> None:
    """A body above the size bound is refused before it is parsed."""
    status, _ = await ask(world, backend, b" " * (MAX_RANK_BODY_BYTES + 1))
    assert status == 413


async def test_a_shard_owned_by_another_worker_gets_421_naming_its_partition(
    world: World, backend: ThreadRankBackend
) -> None:
    """A worker that does not own the pickup's shard says which partition does."""
    status, answer = await ask(world, backend, body(), owned=())
    assert status == 421 and answer["partition"] == OWNED[0] and answer["shard"] == SHARD


async def test_an_owned_shard_without_state_answers_an_empty_list(
    world: World, backend: ThreadRankBackend
) -> None:
    """A job in an owned shard with no couriers gets no couriers, not an error."""
    far_lat, far_lon = offset(0.0, 400_000.0)
    raw = body(pickup={"lat": far_lat, "lon": far_lon})
    far = orjson.loads(raw)["pickup"]
    shard = shard_of(far["lat"], far["lon"], PRECISION)
    status, answer = await ask(
        world, backend, raw, owned=(partition_for_key(shard.encode(), PARTITIONS),)
    )
    assert status == 200 and answer["couriers"] == [] and answer["shard"] == shard
