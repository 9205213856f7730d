"""`POST /rank`: request validation, shard ownership and the ranking it answers with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.geo import shard_of
from contracts.partitioning import partition_for_key
from streams.rank_route import MAX_RANK_BODY_BYTES, handle_rank
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


def ask(world: World, raw: bytes, owned: tuple[int, ...] = OWNED) -> tuple[int, Any]:
    """Status and decoded body of one request."""
    status, payload = handle_rank(
        world.engine,
        raw,
        shard_precision=PRECISION,
        shard_partitions=PARTITIONS,
        owned_partitions=owned,
        clock_ms=lambda: T0 + 1_000,
    )
    return status, orjson.loads(payload)


def test_a_valid_request_gets_the_k_cheapest_couriers_with_their_terms(world: World) -> None:
    """200 with k couriers, cheapest first, each with terms that add up to its cost."""
    status, answer = ask(world, body())
    assert status == 200 and answer["shard"] == SHARD
    couriers = answer["couriers"]
    assert [c["courier_id"] for c in couriers] == ["c0", "c1"]
    for c in couriers:
        assert sum(c["terms"].values()) == pytest.approx(c["cost"], abs=1e-9)


def test_the_answer_matches_the_engine_s_own_ranking(world: World) -> None:
    """The route answers exactly what `ShardEngine.rank` returns for the same job."""
    _, answer = ask(world, body(k=3))
    direct = world.engine.rank(SHARD, (LAT, LON), offset(1_000.0, 1_000.0), T0 + 1_000, 3)
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
def test_a_malformed_request_gets_400_with_a_reason(world: World, raw: bytes) -> None:
    """Malformed bodies are answered 400 with an error message, never an exception."""
    status, answer = ask(world, raw)
    assert status == 400 and answer["error"]


def test_an_oversized_body_gets_413(world: World) -> None:
    """A body above the size bound is refused before it is parsed."""
    status, _ = ask(world, b" " * (MAX_RANK_BODY_BYTES + 1))
    assert status == 413


def test_a_shard_owned_by_another_worker_gets_421_naming_its_partition(world: World) -> None:
    """A worker that does not own the pickup's shard says which partition does."""
    status, answer = ask(world, body(), owned=())
    assert status == 421 and answer["partition"] == OWNED[0] and answer["shard"] == SHARD


def test_an_owned_shard_without_state_answers_an_empty_list(world: World) -> None:
    """A job in an owned shard with no couriers gets no couriers, not an error."""
    far_lat, far_lon = offset(0.0, 400_000.0)
    raw = body(pickup={"lat": far_lat, "lon": far_lon})
    far = orjson.loads(raw)["pickup"]
    shard = shard_of(far["lat"], far["lon"], PRECISION)
    status, answer = ask(world, raw, owned=(partition_for_key(shard.encode(), PARTITIONS),))
    assert status == 200 and answer["couriers"] == [] and answer["shard"] == shard
