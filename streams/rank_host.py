"""The worker's side of its rank server (`streams.rank_server`): start it, feed it, count.

`RankHost` binds the rank port (`rank_port` on `web_host`) once, starts the rank server with
that listening socket, and keeps it running: a server that ends is started again a second
later, on the same socket (requests that come meanwhile wait in its backlog), with everything
published so far. Every `PUBLISH_EVERY_S`, on the stream's event loop, it sends the server the
shard partitions this worker owns when they changed and the views that are due
(`streams.rank_publish`); it reads the server's reports into the worker's metrics
(`streams.rank_report`) and its requests for views. Nothing else of `POST /rank` runs on the
stream's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from dispatchflow.settings import Settings
from streams.metrics import Metrics
from streams.rank_pool import RESTART_DELAY_S, frame, read_frame
from streams.rank_publish import PUBLISH_EVERY_S, ViewPublisher
from streams.rank_report import RankReport, apply_report

logger = logging.getLogger(__name__)


def bind_rank_port(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (0: any free port) for the rank server."""
    return socket.create_server((host, port), backlog=1024)


class RankHost:
    """Runs the rank server process of a worker; see the module docstring.

    Args:
        settings: the worker's settings (sent to the server).
        shard_partitions: partitions of the shard-keyed topics.
        publisher: decides which views to send.
        owned: the shard partitions this worker owns now.
        metrics: where the server's counts go.
    """

    def __init__(
        self,
        settings: Settings,
        shard_partitions: int,
        publisher: ViewPublisher,
        owned: Callable[[], set[int]],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.shard_partitions = shard_partitions
        self.publisher = publisher
        self.owned = owned
        self.metrics = metrics
        self.listener: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.serving = asyncio.Event()
        self._closing = False
        self._partitions: frozenset[int] | None = None
        self._wake = asyncio.Event()
        #: The task reading the current server's messages; it ends when that server ends.
        self.reading: asyncio.Task[None] | None = None
        self._spawning: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """Whether the rank server runs and its ranking backend is ready (`serving` is set)."""
        return self.serving.is_set()

    @property
    def port(self) -> int:
        """The port the rank server listens on (bound by `run`)."""
        if self.listener is None:
            msg = "the rank port is not bound yet"
            raise RuntimeError(msg)
        return int(self.listener.getsockname()[1])

    async def run(self) -> None:
        """Bind the rank port, start the server, and feed it until `close`."""
        self.listener = bind_rank_port(self.settings.web_host, self.settings.rank_port)
        logger.info("POST /rank served on %s:%d", self.settings.web_host, self.port)
        await self._spawn()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PUBLISH_EVERY_S)
            self._wake.clear()
            try:
                self.publish()
            except Exception:  # a view that cannot be built now may be built at the next look
                logger.exception("publishing ranking views failed")

    def publish(self) -> None:
        """Send the owned partitions if they changed, and the views that are due."""
        if self._writer is None:
            return
        partitions = frozenset(self.owned())
        if partitions != self._partitions:
            self._partitions = partitions
            self._send(("partitions", partitions))
        for message in self.publisher.due():
            self._send(message)

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(frame(message))

    async def _spawn(self) -> None:
        if self._closing or self.listener is None:
            return
        ours, theirs = socket.socketpair()
        listen_fd = self.listener.fileno()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "streams.rank_server", str(theirs.fileno()), str(listen_fd)],
            pass_fds=(theirs.fileno(), listen_fd),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        self._writer = writer
        self._partitions = None
        self._send(("settings", self.settings, self.shard_partitions))
        for message in self.publisher.current():
            self._send(message)
        self.publish()
        self.reading = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Handle the server's messages; when it ends, start it again (unless closing)."""
        try:
            while True:
                self.handle(await read_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.serving.clear()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if not self._closing:
                code = None if self._process is None else self._process.poll()
                logger.error("rank server ended (exit code %s); restarting it", code)
                asyncio.get_running_loop().call_later(RESTART_DELAY_S, self._restart)

    def handle(self, message: tuple[Any, ...]) -> None:
        """One message of the server: `ready`, `want` (a shard's view) or `report`.

        `serving` is set by `ready`, and then follows each report's `ranking_ready`.
        """
        kind = message[0]
        if kind == "report":
            report: RankReport = message[1]
            apply_report(report, self.metrics)
            self.publisher.want(report.asked)
            if report.ranking_ready:
                self.serving.set()
            else:
                self.serving.clear()
        elif kind == "want":
            self.publisher.want((message[1],))
            self._wake.set()
        elif kind == "ready":
            self.serving.set()

    def _restart(self) -> None:
        task = asyncio.get_running_loop().create_task(self._spawn())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def close(self) -> None:
        """Stop the server (closing the control socket ends it; then SIGTERM, SIGKILL)."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            self._writer.close()
        process = self._process
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, 5.0)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, 5.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
        if self.reading is not None:
            self.reading.cancel()
        for task in list(self._spawning):
            task.cancel()
        if self.listener is not None:
            self.listener.close()
