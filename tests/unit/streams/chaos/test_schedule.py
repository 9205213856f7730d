"""The fault schedule: what the seed draws, and the shape every schedule has."""

from __future__ import annotations

from collections import Counter

import pytest

from streams.chaos.schedule import (
    BROKER_DOWN_S,
    WORKER_DOWN_S,
    FaultKind,
    ScheduleSpec,
    draw_schedule,
)

SPEC = ScheduleSpec(
    first_step=10,
    last_step=590,
    workers=3,
    brokers=3,
    worker_kills=20,
    broker_kills=3,
    zombies=2,
    session_timeout_s=6.0,
)


def test_the_same_seed_draws_the_same_schedule() -> None:
    """Two draws with one seed are equal, another seed differs."""
    assert draw_schedule(4, SPEC) == draw_schedule(4, SPEC) != draw_schedule(5, SPEC)


def test_a_schedule_holds_the_requested_faults() -> None:
    """20 worker kills, 3 broker kills and 2 zombies, as asked."""
    kinds = Counter(f.kind for f in draw_schedule(1, SPEC))
    assert kinds == {FaultKind.WORKER_KILL: 20, FaultKind.BROKER_KILL: 3, FaultKind.ZOMBIE: 2}


def test_half_of_the_worker_kills_wipe_the_state() -> None:
    """Exactly half of the worker kills (rounded down) restart with wiped state."""
    kills = [f for f in draw_schedule(2, SPEC) if f.kind is FaultKind.WORKER_KILL]
    assert sum(f.wipe for f in kills) == 10


def test_faults_start_within_the_step_range_in_order() -> None:
    """Every fault starts between the first and last step, sorted by step."""
    steps = [f.step for f in draw_schedule(3, SPEC)]
    assert steps == sorted(steps) and SPEC.first_step <= steps[0] and steps[-1] <= SPEC.last_step


def test_down_times_are_within_their_ranges() -> None:
    """Workers stay down 1-20 s, brokers 5-30 s, zombies past the session timeout."""
    for fault in draw_schedule(6, SPEC):
        low, high = {
            FaultKind.WORKER_KILL: WORKER_DOWN_S,
            FaultKind.BROKER_KILL: BROKER_DOWN_S,
            FaultKind.ZOMBIE: (SPEC.session_timeout_s + 1, 60.0),
        }[fault.kind]
        assert low <= fault.down_s <= high


def test_broker_kills_fall_in_separate_thirds_of_the_run() -> None:
    """Each of three broker kills starts in its own third of the step range."""
    steps = [f.step for f in draw_schedule(7, SPEC) if f.kind is FaultKind.BROKER_KILL]
    span = (SPEC.last_step - SPEC.first_step + 1) / 3
    assert [int((s - SPEC.first_step) // span) for s in steps] == [0, 1, 2]


def test_a_step_range_out_of_order_is_refused() -> None:
    """first_step after last_step is a ValueError."""
    with pytest.raises(ValueError, match="first <= last"):
        ScheduleSpec(9, 3, 3, 3, 1, 1, 1, 6.0)
