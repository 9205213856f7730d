"""Which ranking views the worker publishes: wanted shards only, once per tick or max age."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch.live.rank_view import RankView
from streams.metrics import Metrics
from streams.rank_publish import ViewPublisher
from tests.clocks import ManualClock
from tests.unit.dispatch.live.shard_world import SHARD, T0, World, offset


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A shard with one idle courier."""
    with World(root=tmp_path) as w:
        w.online("c1", T0, at=offset(300.0, 0.0))
        yield w


def publisher(
    world: World, clock: ManualClock, built: list[str], *, max_age_s: float = 60.0
) -> ViewPublisher:
    """A publisher over `world`'s engine; `built` collects the shards whose view was built."""

    def build_view(shard: str) -> RankView:
        built.append(shard)
        return world.engine.rank_view(shard)

    return ViewPublisher(
        shards=world.engine.shards,
        ticks=world.engine.ticks,
        build_view=build_view,
        metrics=Metrics(),
        max_age_s=max_age_s,
        want_ttl_s=30.0,
        clock_s=clock,
    )


def kinds(messages: list[tuple[Any, ...]]) -> list[str]:
    """The kinds of `messages`."""
    return [m[0] for m in messages]


def test_a_shard_no_request_asked_about_gets_no_view(world: World) -> None:
    """Without demand nothing is built: the stream side pays for views only when asked."""
    built: list[str] = []
    views = publisher(world, ManualClock(), built)
    assert (views.due(), built) == ([], [])


def test_a_wanted_shard_s_view_is_built_once_until_it_ticks(world: World) -> None:
    """Looks between two ticks send nothing; the first look after a tick rebuilds the view."""
    built: list[str] = []
    views = publisher(world, ManualClock(), built)
    views.want([SHARD])
    sent = [kinds(views.due()), kinds(views.due())]
    world.tick(T0 + 2_000)
    sent += [kinds(views.due()), kinds(views.due())]
    assert (sent, built) == ([["view"], [], ["view"], []], [SHARD, SHARD])


def test_a_view_is_rebuilt_once_it_is_max_age_old_without_a_tick(world: World) -> None:
    """With no tick, the view is rebuilt when it reaches `max_age_s`, not before."""
    clock, built = ManualClock(), list[str]()
    views = publisher(world, clock, built, max_age_s=1.0)
    views.want([SHARD])
    sent = []
    for moment in (0.0, 0.5, 0.99, 1.0):
        clock.now_s = 100.0 + moment
        sent.append(kinds(views.due()))
    assert sent == [["view"], [], [], ["view"]]


def test_a_wanted_shard_without_live_state_is_published_empty_once(world: World) -> None:
    """A shard this worker holds nothing of is sent as empty, and not again."""
    views = publisher(world, ManualClock(), [])
    views.want(["dr5x"])
    assert [views.due(), views.due()] == [[("empty", "dr5x")], []]


def test_a_shard_not_asked_about_for_the_ttl_is_dropped(world: World) -> None:
    """After `want_ttl_s` without a request, the shard is dropped and no longer built."""
    clock, built = ManualClock(), list[str]()
    views = publisher(world, clock, built)
    views.want([SHARD])
    views.due()
    clock.now_s += 31.0
    world.tick(T0 + 2_000)
    assert ([views.due(), views.due()], built) == ([[("drop", SHARD)], []], [SHARD])


def test_a_new_server_gets_what_was_published(world: World) -> None:
    """`current` repeats the latest view of each shard, and the empty ones."""
    views = publisher(world, ManualClock(), [])
    views.want([SHARD, "dr5x"])
    sent = views.due()
    assert sorted(kinds(views.current())) == sorted(kinds(sent)) == ["empty", "view"]
