"""The fault injector's account of worker exits and of the workers it asks for progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from streams.chaos.faults import FaultInjector
from streams.chaos.schedule import Fault, FaultKind
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


@dataclass
class RestartableWorker:
    """A worker process that is killed and started again at once (what the injector drives)."""

    url: str = "http://127.0.0.1:2"
    ready_after_s: float = 0.0

    def running(self) -> bool:
        return True

    def kill(self) -> None:
        return None

    def start(self, ready_timeout_s: float) -> None:
        return None


def test_a_worker_faulted_again_before_it_was_put_back_is_not_removed_twice() -> None:
    """A kill of a worker that restarted since the step began leaves the progress list whole.

    A restarted worker is put back under progress at the next step; a fault that takes it
    before then must not remove its address a second time (the harness crashed on that).
    """
    worker = RestartableWorker()
    urls = [worker.url]
    kills = [Fault(FaultKind.WORKER_KILL, 1, 0, down_s=0.0) for _ in range(2)]
    injector = FaultInjector(
        faults=kills,
        cluster=cast(Any, None),
        workers=[cast(Any, worker)],
        client={},
        add_url=urls.append,
        remove_url=urls.remove,
    )

    def restarts_done() -> None:
        for thread in injector._threads:
            thread.join(timeout=10)

    injector.after_ticks(1)  # the first kill; the second waits, its worker being busy
    restarts_done()
    injector.after_ticks(1)  # the second kill, before the restarted worker was put back
    restarts_done()
    injector.before_step(2)
    assert (injector.errors, injector.pending, urls) == ([], [], [worker.url])
