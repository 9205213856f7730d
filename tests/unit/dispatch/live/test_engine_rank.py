"""Request-time ranking through the live shard engine's ranking view."""

from __future__ import annotations

import pytest

from tests.unit.dispatch.live.shard_world import (
    LAT,
    LON,
    T0,
    S,
    World,
    offset,
)


def five_couriers(w: World) -> None:
    """Five idle couriers at growing distances from the merchant."""
    for i, (north, east) in enumerate(
        [(2_500, 0), (200, 0), (-1_500, 200), (800, 300), (0, 4_000)]
    ):
        w.online(f"c{i}", T0, at=offset(float(north), float(east)))


def test_rank_returns_at_most_k_couriers_cheapest_first(world: World) -> None:
    """`rank` returns k couriers, by non-decreasing cost, the nearest one first."""
    five_couriers(world)
    ranked = world.rank((LAT, LON), offset(1_000.0, 1_000.0), T0 + S, 3)
    costs = [r.cost for r in ranked]
    assert len(ranked) == 3 and costs == sorted(costs)
    assert ranked[0].courier_id == "c1"


def test_rank_never_returns_more_couriers_than_are_available(world: World) -> None:
    """Asking for more couriers than there are returns each available courier once."""
    five_couriers(world)
    ranked = world.rank((LAT, LON), offset(1_000.0, 1_000.0), T0 + S, 50)
    assert sorted(r.courier_id for r in ranked) == [f"c{i}" for i in range(5)]


def test_rank_terms_sum_to_the_cost(world: World) -> None:
    """Each ranked courier's terms add up to its cost, and its drop-off follows its pickup."""
    five_couriers(world)
    for r in world.rank((LAT, LON), offset(1_000.0, 1_000.0), T0 + S, 5):
        assert sum(v for _, v in r.terms) == pytest.approx(r.cost, abs=1e-9)
        assert r.pickup_ts_ms < r.dropoff_ts_ms
