"""The broker-process plumbing every runner shares, exercised on plain Python child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from streams.broker import BrokerProcess, BrokerStartError, free_loopback_ports, wait_until_answers
from streams.child_process import tail_lines

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def _child(tmp_path: Path, code: str) -> BrokerProcess:
    return BrokerProcess([sys.executable, "-c", code], tmp_path / "out.log")


def _wait_for_line(path: Path, text: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} never appeared in {path}")


def _wait_for_exit(child: BrokerProcess, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while child.running():
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stop_ends_the_process_it_started(tmp_path: Path) -> None:
    """`stop()` SIGTERMs the child's process group; the child is gone afterwards."""
    child = _child(tmp_path, "import time; print('ready', flush=True); time.sleep(120)")
    child.start()
    pid = child.pid
    assert pid is not None
    _wait_for_line(child.output_log, "ready")
    assert child.stop(timeout_s=10) == -signal.SIGTERM
    assert _gone(pid)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is SIGKILLed once `timeout_s` has passed."""
    child = _child(tmp_path, IGNORES_SIGTERM)
    child.start()
    _wait_for_line(child.output_log, "ready")
    assert child.stop(timeout_s=0.5) == -signal.SIGKILL


def test_kill_sigkills_at_once(tmp_path: Path) -> None:
    """`kill()` ends even a child that ignores SIGTERM, with SIGKILL, without a grace period."""
    child = _child(tmp_path, IGNORES_SIGTERM)
    child.start()
    _wait_for_line(child.output_log, "ready")
    started = time.monotonic()
    assert child.kill() == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert not child.running()


def test_stop_before_start_is_a_no_op(tmp_path: Path) -> None:
    """Stopping a process that never started returns None and signals nothing."""
    assert _child(tmp_path, "pass").stop() is None


def test_a_child_restarts_appending_to_its_log(tmp_path: Path) -> None:
    """A second `start()` after a stop keeps the first run's output in the same log."""
    child = _child(tmp_path, "import uuid; print(uuid.uuid4(), flush=True)")
    for _ in range(2):
        child.start()
        _wait_for_exit(child)
        assert child.stop() == 0
    assert len(child.output_log.read_text().split()) == 2


def test_wait_ready_reports_an_early_exit_with_the_log_tail(tmp_path: Path) -> None:
    """A broker that exits before answering raises at once, with its last output attached."""
    child = _child(tmp_path, "import sys; print('bind failed: port taken'); sys.exit(3)")
    child.start()
    port = free_loopback_ports(1)[0]
    with pytest.raises(BrokerStartError) as caught:
        asyncio.run(child.wait_ready(f"127.0.0.1:{port}", timeout_s=60))
    assert "exited with code 3" in caught.value.reason
    assert "bind failed: port taken" in caught.value.log_tail
    child.stop()


def test_wait_until_answers_gives_up_after_its_timeout() -> None:
    """Nobody listening: the wait ends after `timeout_s` and names the address."""
    port = free_loopback_ports(1)[0]
    started = time.monotonic()
    with pytest.raises(BrokerStartError, match=f"127.0.0.1:{port} did not answer"):
        asyncio.run(wait_until_answers(f"127.0.0.1:{port}", timeout_s=0.5))
    assert time.monotonic() - started < 5


def test_start_error_reason_is_one_line_and_the_message_carries_the_log() -> None:
    """`reason` is the one-line summary; `str()` adds the log tail below it."""
    error = BrokerStartError("broker exited with code 1", "[server.log]\nBindException")
    assert "\n" not in error.reason
    assert str(error).endswith("[server.log]\nBindException")


def test_free_loopback_ports_are_distinct() -> None:
    """Ports handed out together never repeat."""
    ports = free_loopback_ports(9)
    assert len(set(ports)) == 9


def test_tail_lines_keeps_the_last_lines_of_each_existing_file(tmp_path: Path) -> None:
    """Each file contributes its last lines under its name; missing files are skipped."""
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = tail_lines([log, tmp_path / "missing.log"], max_lines=3)
    assert tail == "[server.log]\nline 97\nline 98\nline 99"
