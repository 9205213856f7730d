"""A stream worker in a child process, for the demo, integration tests and benchmarks."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dispatchflow.settings import ENV_PREFIX, Settings
from streams.child_process import ChildProcess, StartsAndStops


class WorkerStartError(RuntimeError):
    """The worker did not become ready in time."""


def settings_env(settings: Settings) -> dict[str, str]:
    """`DISPATCHFLOW_*` environment variables that reproduce `settings` in another process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif hasattr(value, "value"):
            value = value.value
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


class WorkerProcess(StartsAndStops):
    """`dispatchflow worker` as a child process with its own log file (restartable)."""

    def __init__(self, settings: Settings, log_path: Path, extra_args: list[str] | None = None):
        self.settings = settings
        self.log_path = log_path
        self.extra_args = extra_args or []
        self._child: ChildProcess | None = None
        self.started_s = 0.0
        self.ready_after_s: float | None = None

    @property
    def url(self) -> str:
        """Base URL of the worker's web server."""
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    @property
    def rank_url(self) -> str:
        """Base URL of the worker's rank server (`POST /rank`)."""
        return f"http://{self.settings.web_host}:{self.settings.rank_port}"

    @property
    def pid(self) -> int | None:
        """Process id while started, else None."""
        return self._child.pid if self._child is not None else None

    def running(self) -> bool:
        """True while the worker started last has not exited."""
        return self._child is not None and self._child.running()

    def start(self, ready_timeout_s: float = 60.0) -> WorkerProcess:
        """Start the worker and wait for `/readyz`; raise `WorkerStartError` on failure."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(settings_env(self.settings))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.started_s = time.monotonic()
        self._child = ChildProcess(
            [sys.executable, "-m", "dispatchflow", "worker", *self.extra_args],
            self.log_path,
            env=env,
        )
        self._child.start()
        self.wait_ready(ready_timeout_s)
        self.ready_after_s = time.monotonic() - self.started_s
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Poll `/readyz` until it answers 200; raise if the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                msg = f"worker exited with code {self.returncode}; log:\n{self.log_tail()}"
                raise WorkerStartError(msg)
            status, _ = self.request("/readyz")
            if status == 200:
                return
            time.sleep(0.1)
        msg = f"worker not ready within {timeout_s} s; log:\n{self.log_tail()}"
        raise WorkerStartError(msg)

    @property
    def returncode(self) -> int | None:
        """Exit code of the worker started last, once it has exited (None while running)."""
        return self._child.returncode if self._child is not None else None

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for the worker to exit by itself; its exit code, or None."""
        return self._child.wait(timeout_s) if self._child is not None else None

    def request(
        self,
        path: str,
        timeout_s: float = 5.0,
        body: bytes | None = None,
        base_url: str | None = None,
    ) -> tuple[int, bytes]:
        """GET `path` (POST `body` if given); (status, body), status 0 when nothing answers.

        The request goes to the worker's web server, or to `base_url` (e.g. `rank_url`).
        """
        req = urllib.request.Request(  # noqa: S310 - a loopback URL of our own worker
            (base_url or self.url) + path,
            data=body,
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return 0, b""

    def get_json(self, path: str) -> Any:
        """GET `path` and decode its JSON body; raise on a non-200 answer."""
        status, body = self.request(path, timeout_s=30.0)
        if status != 200:
            msg = f"GET {path} answered {status}: {body[:500]!r}"
            raise RuntimeError(msg)
        return json.loads(body)

    def log_tail(self, max_bytes: int = 6000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_bytes()[-max_bytes:].decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the worker (and anything it started) and reap it."""
        if self._child is not None:
            self._child.kill()

    def pause(self) -> None:
        """SIGSTOP the worker until `resume()`: no heartbeat, nothing handled, state kept.

        Past its session timeout the group moves its partitions on: it wakes up a zombie.
        """
        if self._child is not None:
            self._child.pause()

    def resume(self) -> None:
        """SIGCONT a worker stopped by `pause()`."""
        if self._child is not None:
            self._child.resume()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; return the exit code."""
        return self._child.stop(timeout_s) if self._child is not None else None
