"""A child process in its own session, with its output in a log file: started, stopped, killed.

The one place that starts and signals the programs the product runs beside itself (brokers,
workers, the ops console): only the process group it started is ever signalled, and only
before its leader is reaped, so a group id cannot have been reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


def tail_lines(paths: Sequence[Path], max_lines: int = 40) -> str:
    """The last `max_lines` lines of each existing file in `paths`, each under its name."""
    parts: list[str] = []
    for path in paths:
        try:
            data = path.read_bytes()[-64_000:]
        except OSError:
            continue
        lines = data.decode("utf-8", "replace").splitlines()[-max_lines:]
        if lines:
            parts.append(f"[{path.name}]\n" + "\n".join(lines))
    return "\n".join(parts)


class ChildProcess:
    """One child process in a new session (its own process group).

    Its stdout and stderr go to `output_log` (appended, so a restart keeps the earlier run's
    lines). `logs` lists every file worth showing when it fails, `output_log` included.
    """

    def __init__(
        self,
        argv: Sequence[str],
        output_log: Path,
        *,
        extra_logs: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.output_log = output_log
        self.logs = [output_log, *extra_logs]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._returncode: int | None = None

    @property
    def pid(self) -> int | None:
        """Process id while started (and not yet stopped or reaped), else None."""
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        """True while the process we started has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code of the process started last once it exited (or was stopped), else None."""
        if self._process is not None:
            return self._process.poll()
        return self._returncode

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for the process to exit by itself; its exit code, or None."""
        if self._process is None:
            return self._returncode
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def start(self) -> None:
        """Start the process; raise `RuntimeError` if it is already running."""
        if self.running():
            msg = "process is already running"
            raise RuntimeError(msg)
        self.output_log.parent.mkdir(parents=True, exist_ok=True)
        with self.output_log.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def log_tail(self, max_lines: int = 40) -> str:
        """The last lines of each of the process's log files."""
        return tail_lines(self.logs, max_lines)

    def _signal_group(self, signum: int) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signum)

    def pause(self) -> None:
        """SIGSTOP the process group: it keeps its sockets and state but runs nothing."""
        if self.running():
            self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the process group after `pause()`."""
        if self.running():
            self._signal_group(signal.SIGCONT)

    def terminate(self) -> None:
        """Send SIGTERM to the process group without waiting (see `stop()`)."""
        if self.running():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout_s`; return the exit code.

        Only the group this object started is signalled, and only before its leader is reaped
        (so the group id cannot have been reused). Safe to call when not running.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait(timeout=timeout_s)
        self._process = None
        self._returncode = process.returncode
        return process.returncode

    def kill(self, timeout_s: float = 10.0) -> int | None:
        """SIGKILL the process group at once (a crash, for fault tests); return the exit code."""
        process = self._process
        if process is None:
            return None
        self._signal_group(signal.SIGKILL)
        process.wait(timeout=timeout_s)
        self._process = None
        self._returncode = process.returncode
        return process.returncode


class StartsAndStops(ABC):
    """Something started and stopped as a whole; as a context manager, `start()` then `stop()`."""

    @abstractmethod
    def start(self) -> Self:
        """Start; return self once usable."""

    @abstractmethod
    def stop(self) -> object:
        """Stop what `start()` started; safe to call twice."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
