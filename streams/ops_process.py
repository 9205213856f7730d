"""`dispatchflow ops` in a child process, for the demo and tests (the console is `console/`)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.broker import free_loopback_port
from streams.child_process import ChildProcess, tail_lines


class ConsoleStartError(RuntimeError):
    """The console did not answer in time (the message carries its log)."""


class OpsConsoleProcess:
    """One `dispatchflow ops` process on a free loopback port, with its own log file.

    Args:
        bootstrap: the broker's `host:port`.
        worker_urls: workers to scrape.
        log_path: where its output goes.
    """

    def __init__(self, bootstrap: str, worker_urls: Sequence[str], log_path: Path) -> None:
        self.bootstrap = bootstrap
        self.worker_urls = list(worker_urls)
        self.log_path = log_path
        self.port = free_loopback_port()
        self._child: ChildProcess | None = None

    @property
    def url(self) -> str:
        """Base URL of the page and the API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> OpsConsoleProcess:
        """Start it and wait until `/api/status` answers; raise `ConsoleStartError` otherwise."""
        args = ["ops", "--broker", self.bootstrap, "--port", str(self.port)]
        for url in self.worker_urls:
            args += ["--worker", url]
        child = self._child = ChildProcess(
            [sys.executable, "-m", "dispatchflow", *args],
            self.log_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.running():
                raise ConsoleStartError(f"ops console exited: {self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                self.get_json("/api/status", timeout_s=1.0)
                return self
            time.sleep(0.1)
        raise ConsoleStartError(f"ops console did not answer in {timeout_s} s: {self.log_tail()}")

    def get_json(self, path: str, timeout_s: float = 10.0) -> Any:
        """GET `path` and decode its JSON (raises `urllib.error.HTTPError` on an error status)."""
        with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:  # noqa: S310 - our loopback URL
            return json.loads(response.read())

    def log_tail(self, max_lines: int = 40) -> str:
        """The end of its output."""
        return tail_lines([self.log_path], max_lines)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (SIGKILL after `timeout_s`); return its exit code."""
        return self._child.stop(timeout_s) if self._child is not None else None


@contextlib.contextmanager
def ops_console(
    enabled: bool, bootstrap: str, worker_urls: Sequence[str], log_path: Path
) -> Iterator[OpsConsoleProcess | None]:
    """A running console for the block (None when not `enabled`), stopped at its end."""
    if not enabled:
        yield None
        return
    console = OpsConsoleProcess(bootstrap, worker_urls, log_path)
    try:
        yield console.start()
    finally:
        console.stop()
