"""The worker runtime's process-level guarantees."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dispatch.live.effects import Effects
from dispatch.live.worker import Record
from dispatchflow.settings import Settings
from streams.app import create_app
from streams.runtime import CRASH_EXIT_STATUS

HANGING_STOP = """
import logging, threading
from streams.runtime import exit_hard_after
logging.basicConfig(level=logging.INFO)
exit_hard_after(0.2)
threading.Event().wait()  # a graceful stop that never finishes
"""


def test_a_crashed_worker_whose_stop_hangs_exits_hard_with_its_status() -> None:
    """After the timeout the process ends with status 70 and says why on its log."""
    result = subprocess.run(
        [sys.executable, "-c", HANGING_STOP], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == CRASH_EXIT_STATUS
    assert "graceful stop did not finish" in result.stderr


def calls_in_apply(topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `Runtime.apply` does, in order, for effects holding one output to `topic`."""
    runtime = create_app(Settings(datadir=tmp_path / "data"))
    calls: list[str] = []

    async def flush() -> None:
        calls.append("flush")

    async def send(out_topic: str, *_args: Any, **_kwargs: Any) -> None:
        calls.append(f"send {out_topic}")

    monkeypatch.setattr(runtime.app.producer, "flush", flush)
    monkeypatch.setattr(runtime, "send", send)
    effects = Effects()
    effects.emit(topic, "dr5r", b"{}")
    record = Record("dispatch_ticks", 0, 1, b"dr5r", b"{}")
    asyncio.run(runtime.apply(effects, record))
    return calls


def test_a_decision_is_sent_only_after_the_state_writes_are_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proposal reaches the producer after a flush of everything written before it."""
    calls = calls_in_apply("assignment_proposed", tmp_path, monkeypatch)
    assert calls == ["flush", "send assignment_proposed"]


def test_other_outputs_are_sent_without_a_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Position and ETA outputs do not wait for the producer (they carry no decision)."""
    calls = calls_in_apply("eta_updates", tmp_path, monkeypatch)
    assert calls == ["send eta_updates"]
