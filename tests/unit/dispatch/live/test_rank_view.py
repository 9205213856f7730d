"""The ranking view: what it answers equals ranking the shard's full snapshot; what it holds."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.live.engine_config import EngineConfig
from dispatch.live.rank_view import RankView, check_view, rank_in_view
from dispatch.live.shard_snapshot import build_snapshot, request_table
from dispatch.ranking import RankedCourier, nearest_rows, rank
from dispatch.snapshot import SnapshotError
from tests.unit.dispatch.live.shard_world import SHARD, T0, World, of_type, offset

S = 1_000
PROPERTY = settings(max_examples=40, deadline=None)


@dataclass(frozen=True)
class Courier:
    """A courier of a drawn scenario."""

    north_m: float
    east_m: float
    capacity: int
    shift_h: float | None
    pings_again: bool
    goes_offline: bool


@dataclass(frozen=True)
class Request:
    """A drawn request: where, when (seconds after the scenario), how many, ready, promise."""

    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    after_s: float
    k: int
    ready_in_s: float | None
    promise_in_s: float | None


metres = st.floats(-8_000.0, 8_000.0, allow_nan=False)
couriers = st.builds(
    Courier,
    metres,
    metres,
    st.integers(1, 3),
    st.one_of(st.none(), st.floats(0.01, 9.0)),
    st.booleans(),
    st.booleans(),
)
requests = st.builds(
    Request,
    st.tuples(metres, metres).map(lambda p: offset(*p)),
    st.tuples(metres, metres).map(lambda p: offset(*p)),
    st.floats(0.0, 400.0) | st.floats(400.0, 4_000.0),
    st.integers(1, 8),
    st.one_of(st.none(), st.floats(0.0, 1_800.0)),
    st.one_of(st.none(), st.floats(600.0, 5_400.0)),
)


def play(w: World, drawn: list[Courier], orders: int, accept: list[bool]) -> int:
    """Couriers online, `orders` orders, a tick, answers; a ping round; the time it ends at."""
    for i, c in enumerate(drawn):
        end = None if c.shift_h is None else T0 + int(c.shift_h * 3_600_000)
        w.online(
            f"c{i}", T0, at=offset(c.north_m, c.east_m), capacity=c.capacity, shift_end_ts_ms=end
        )
    for j in range(orders):
        w.create(f"o{j}", T0 + S, pickup=offset(300.0 * j, -200.0 * j))
    proposals = of_type(w.tick(T0 + 2 * S), "assignment_proposed")
    for proposal, yes in zip(proposals, accept, strict=False):
        answer = "accept" if yes else "decline"
        w.respond(proposal["decision_id"], proposal["courier_id"], T0 + 3 * S, answer)
    for i, c in enumerate(drawn):
        if c.goes_offline:
            w.offline(f"c{i}", T0 + 4 * S)
        elif c.pings_again:
            w.ping(f"c{i}", T0 + 150 * S, *offset(c.north_m + 50.0, c.east_m))
    return T0 + 5 * S


scenario = st.tuples(
    st.lists(couriers, max_size=14),
    st.integers(0, 4),
    st.lists(st.booleans(), max_size=4),
    st.sampled_from([1, 3, 400]),
)


def by_view_and_by_snapshot(
    w: World, request: Request, start_ms: int
) -> tuple[tuple[RankedCourier, ...], tuple[RankedCourier, ...]]:
    """The request ranked from the engine's view, and by `rank` on the full snapshot."""
    engine = w.engine
    view = engine.rank_view(SHARD)
    now = start_ms + int(request.after_s * 1000)
    ready = None if request.ready_in_s is None else now + int(request.ready_in_s * 1000)
    promise = None if request.promise_in_s is None else now + int(request.promise_in_s * 1000)
    from_view = rank_in_view(
        view, engine.predictor, request.pickup, request.dropoff, now, request.k, ready, promise
    )
    built = build_snapshot(
        engine.state, engine.positions, engine.config, engine.predictor, SHARD, now
    )
    table = request_table(
        SHARD, request.pickup, request.dropoff, now, ready, promise, engine.config.default_promise_s
    )
    return from_view, rank(table, built.snapshot, request.k, view.policy)


@PROPERTY
@given(scenario, st.lists(requests, min_size=1, max_size=4))
def test_the_view_ranks_as_rank_does_on_the_full_snapshot(
    drawn: tuple[list[Courier], int, list[bool], int], asked: list[Request]
) -> None:
    """Any state, any request time: the view's ranking equals `rank` on `build_snapshot`."""
    couriers_, orders, accept, candidates = drawn
    with World(config=EngineConfig(rank_candidates=candidates)) as w:
        start = play(w, couriers_, orders, accept)
        for request in asked:
            from_view, expected = by_view_and_by_snapshot(w, request, start)
            assert from_view == expected


def columns(view: RankView) -> dict[str, object]:
    """Every field of `view`, arrays as lists (comparable)."""
    return {
        f.name: getattr(view, f.name).tolist()
        if isinstance(getattr(view, f.name), np.ndarray)
        else getattr(view, f.name)
        for f in fields(view)
    }


@PROPERTY
@given(scenario)
def test_a_view_equals_one_rebuilt_from_scratch_after_any_updates(
    drawn: tuple[list[Courier], int, list[bool], int],
) -> None:
    """After any updates, the view equals the one an engine builds afresh from the same tables."""
    couriers_, orders, accept, candidates = drawn
    with World(config=EngineConfig(rank_candidates=candidates)) as w:
        play(w, couriers_, orders, accept)
        kept = columns(w.engine.rank_view(SHARD))
        w.engine.reset(w.engine.generation + 1)  # in-memory indices rebuilt from the tables
        assert columns(w.engine.rank_view(SHARD)) == kept


def test_a_view_whose_columns_break_a_courier_table_rule_is_refused_when_checked() -> None:
    """The columns are checked once, when the view is built: a negative capacity is refused."""
    with World() as w:
        w.online("c1", T0, at=offset(500.0, 0.0))
        view = w.engine.rank_view(SHARD)
    with pytest.raises(SnapshotError, match="spare_capacity"):
        check_view(replace(view, spare_capacity=np.array([-1], dtype=np.int64)))


def test_a_courier_whose_shift_ends_before_it_starts_is_never_a_candidate() -> None:
    """The shift rule `check_view` leaves out cannot break in a request's table."""
    with World() as w:
        w.online("c1", T0, at=offset(500.0, 0.0))
        view = w.engine.rank_view(SHARD)
        ended = check_view(replace(view, shift_end_ts_ms=view.shift_start_ts_ms - 1))
        pickup, dropoff = offset(0.0, 0.0), offset(900.0, 0.0)
        assert rank_in_view(ended, w.engine.predictor, pickup, dropoff, T0, 1) == ()


def test_a_request_prices_only_the_rank_candidates_nearest_couriers() -> None:
    """With `rank_candidates` 2, the two couriers nearest the pickup are the only ones ranked."""
    with World(config=EngineConfig(rank_candidates=2)) as w:
        for i, north in enumerate((3_000.0, 100.0, 2_000.0, 400.0)):
            w.online(f"c{i}", T0, at=offset(north, 0.0))
        ranked = w.rank(offset(0.0, 0.0), offset(1_000.0, 0.0), T0 + S, 4)
        assert sorted(r.courier_id for r in ranked) == ["c1", "c3"]


def test_an_idle_courier_whose_fix_grew_stale_is_not_ranked() -> None:
    """A courier without a route drops out once its fix is older than `position_max_age_s`."""
    with World(config=EngineConfig(position_max_age_s=60.0)) as w:
        w.online("fresh", T0, at=offset(500.0, 0.0))
        w.online("stale", T0, at=offset(100.0, 0.0))
        w.ping("fresh", T0 + 90 * S, *offset(500.0, 0.0))
        view = w.engine.rank_view(SHARD)
        pickup, dropoff = offset(0.0, 0.0), offset(1_000.0, 0.0)
        ranked = rank_in_view(view, w.engine.predictor, pickup, dropoff, T0 + 100 * S, 5)
        assert [r.courier_id for r in ranked] == ["fresh"]


@given(st.lists(st.integers(0, 3), min_size=1, max_size=30), st.integers(1, 10))
def test_nearest_rows_takes_the_nearest_and_breaks_ties_by_row(
    distances: list[int], count: int
) -> None:
    """The rows chosen are the `count` smallest (distance, row) pairs, in row order."""
    xy = np.array([[float(d), 0.0] for d in distances])
    free_s = np.zeros(len(distances))
    eligible = np.ones(len(distances), dtype=bool)
    chosen = nearest_rows(xy, free_s, eligible, np.zeros(2), count, 5.0)
    expected = sorted(sorted(range(len(distances)), key=lambda r: (distances[r], r))[:count])
    assert chosen.tolist() == expected
