"""The stall watch: a gap between ticks past the limit means the process was stopped."""

from __future__ import annotations

from streams.stall import StallWatch
from tests.clocks import ManualClock


def test_ticks_within_the_limit_are_no_stall() -> None:
    """A process that keeps running never reports a stall."""
    clock = ManualClock()
    watch = StallWatch(10.0, clock=clock)
    for _ in range(100):
        clock.now_s += 0.25
        watch.tick()
    assert watch.stalled_s() is None


def test_a_gap_past_the_limit_is_remembered_after_later_ticks() -> None:
    """The watch thread may tick first after the stop: the stall stays reported."""
    clock = ManualClock()
    watch = StallWatch(10.0, clock=clock)
    clock.now_s += 14.5
    watch.tick()
    clock.now_s += 0.25
    watch.tick()
    assert watch.stalled_s() == 14.5


def test_the_gap_since_the_last_tick_counts_before_the_next_tick() -> None:
    """An agent that runs first after the stop sees it, before the watch thread has ticked."""
    clock = ManualClock()
    watch = StallWatch(10.0, clock=clock)
    watch.tick()
    clock.now_s += 12.0
    assert watch.stalled_s() == 12.0


def test_a_gap_at_the_limit_is_no_stall() -> None:
    """Only a gap longer than the session timeout counts."""
    clock = ManualClock()
    watch = StallWatch(10.0, clock=clock)
    clock.now_s += 10.0
    watch.tick()
    assert watch.stalled_s() is None


def test_a_stall_is_reported_to_on_stall_once_when_the_watch_ticks() -> None:
    """The watch thread ends the worker itself, before any agent runs again."""
    clock = ManualClock()
    reported: list[float] = []
    watch = StallWatch(10.0, clock=clock, on_stall=reported.append)
    clock.now_s += 0.25
    watch.tick()
    clock.now_s += 14.5
    watch.tick()
    clock.now_s += 20.0
    watch.tick()
    assert reported == [14.5]
