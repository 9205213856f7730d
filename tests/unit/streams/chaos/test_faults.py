"""The fault injector's account of worker exits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from streams.chaos.faults import FaultInjector
from streams.stall import SESSION_LOST_EXIT_STATUS


@dataclass
class ExitedWorker:
    """A worker process that has exited with `returncode` (what the injector reads of one)."""

    returncode: int
    url: str = "http://127.0.0.1:1"

    def running(self) -> bool:
        return False


def exit_seen(returncode: int, stopped_before: bool) -> str:
    """The event the injector logs for a worker found exited with `returncode`."""
    injector = FaultInjector(
        faults=[],
        cluster=cast(Any, None),
        workers=[cast(Any, ExitedWorker(returncode))],
        client={},
        add_url=lambda _url: None,
        remove_url=lambda _url: None,
    )
    injector.shutdown()  # no restart is carried out
    injector._slots[0].stopped_since_start = stopped_before
    injector.before_step(1)
    return injector.events[0].what


def test_a_session_lost_exit_after_a_stop_is_a_fenced_zombie() -> None:
    """A zombie that rejoined before it noticed its stop and then exited is not a crash."""
    assert exit_seen(SESSION_LOST_EXIT_STATUS, stopped_before=True) == "zombie_fenced"


def test_a_session_lost_exit_without_a_stop_is_unexpected() -> None:
    """Status 75 from a worker the harness never stopped is counted as a crash."""
    assert exit_seen(SESSION_LOST_EXIT_STATUS, stopped_before=False) == "unexpected_exit"


def test_any_other_exit_after_a_stop_is_unexpected() -> None:
    """Only the session-lost status is excused by a stop."""
    assert exit_seen(1, stopped_before=True) == "unexpected_exit"
