"""`dispatchflow broker` as a user runs it: ready line, serving, and a clean stop on a signal."""

from __future__ import annotations

import asyncio
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from tests.processes import process_gone


class _Command:
    """`dispatchflow broker ARGS` in a child process, its stdout read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatchflow", "broker", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def read_until(self, pattern: str, timeout_s: float) -> list[str]:
        """Lines up to the first one matching `pattern`; on timeout stop the command and fail."""
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while (left_s := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left_s)
            except queue.Empty:
                break
            seen.append(line)
            if re.search(pattern, line):
                return seen
        self.stop(signal.SIGTERM)
        raise AssertionError(f"no line matching {pattern!r}: {seen}")

    def stop(self, signum: int) -> str:
        """Send `signum` (the command then stops its broker), wait for it; return its stderr."""
        self.process.send_signal(signum)
        self.process.wait(timeout=60)
        assert self.process.stderr is not None
        return self.process.stderr.read()


def _broker_count(bootstrap: str) -> int:
    async def run() -> int:
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        conn = await create_conn(host, int(port))
        try:
            return len((await conn.send(MetadataRequest([]))).brokers)
        finally:
            conn.close()

    return asyncio.run(run())


def test_embedded_broker_serves_until_sigint() -> None:
    """The default kind prints its address, answers metadata, and exits 0 on Ctrl+C."""
    command = _Command()
    (line,) = command.read_until("ready at", timeout_s=60)
    bootstrap = re.search(r"ready at (\S+)", line)
    assert bootstrap is not None and _broker_count(bootstrap.group(1)) == 1
    err = command.stop(signal.SIGINT)
    assert command.process.returncode == 0, err
    assert "embedded broker stopped" in command.read_until("stopped", timeout_s=10)[-1]


@pytest.mark.kafka
def test_kafka_broker_serves_until_sigterm_and_leaves_no_process(tmp_path: Path) -> None:
    """`--kind kafka` prints address and logs, answers, and stops its node on SIGTERM."""
    command = _Command("--kind", "kafka", "--run-dir", str(tmp_path / "run"))
    lines = command.read_until(r"^logs: ", timeout_s=180)
    ready = re.search(r"ready at (\S+) \(1 node, pid (\d+)", lines[-2])
    assert ready is not None, lines
    assert lines[-1].strip() == f"logs: {tmp_path / 'run' / 'node-0' / 'logs'}"
    assert _broker_count(ready.group(1)) == 1
    err = command.stop(signal.SIGTERM)
    assert command.process.returncode == 0, err
    assert "Apache Kafka stopped" in command.read_until("stopped", timeout_s=10)[-1]
    assert process_gone(int(ready.group(2)))
