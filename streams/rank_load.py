"""An open-loop HTTP load generator for `POST /rank`, run as a child process of `bench rank`.

Request `i` is due at `start + i / rate`, whatever the answers do (open loop). Each is sent on an
idle keep-alive connection; a new one is opened when none is idle (up to `max_connections`,
beyond which it waits for one). Its latency runs from when it was *due* to the end of its
answer, so a server that falls behind is charged for every request it made wait (no coordinated
omission). A request unanswered `timeout_s` after it was due is a timeout (its connection is
closed, as a caller that gives up would). The generator's own lateness, when it got to a request
against when it was due, is reported apart: it shows whether the generator kept its schedule.

Input (stdin, JSON): `host`, `port`, `path`, `bodies` (request bodies, used in turn), `rate`
(requests/s), `duration_s`, `start_wall_s` (epoch seconds to start at, so several generator
processes share one schedule), `phase_s` (this process's offset in that schedule),
`timeout_s`, `max_connections`. Output (stdout, JSON): the latencies in seconds by HTTP status
(status `0` for timeouts, `-1` for connection failures), the lateness of each request in
seconds, and counts. Only the standard library and orjson are imported, so it starts in a blink.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

#: Status recorded for a request unanswered `timeout_s` after it was due.
TIMEOUT = 0
#: Status recorded for a request whose connection failed or was closed before the answer.
CONNECTION_FAILED = -1


@dataclass
class LoadResult:
    """What one generator saw: latencies by status and its own lateness, in seconds."""

    latencies_s: dict[int, list[float]] = field(default_factory=dict)
    lateness_s: list[float] = field(default_factory=list)
    scheduled: int = 0
    connections_opened: int = 0

    def record(self, status: int, latency_s: float) -> None:
        """Note one finished request."""
        self.latencies_s.setdefault(status, []).append(latency_s)

    def as_json(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {
            "latencies_s": {str(k): v for k, v in self.latencies_s.items()},
            "lateness_s": self.lateness_s,
            "scheduled": self.scheduled,
            "connections_opened": self.connections_opened,
        }


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, generator: LoadGenerator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due_s: float | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True
        self.generator.connected(self)

    def send(self, request: bytes, due_s: float) -> None:
        """Write one request due at `due_s` (loop time)."""
        self.due_s = due_s
        assert self.transport is not None  # noqa: S101 - only connected connections send
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        if at < 0:
            self.close()
            return
        stop = head.find(b"\r\n", at)
        length = int(head[at + 15 : stop if stop >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buffer[: end + 4 + length]
        due_s, self.due_s = self.due_s, None
        if due_s is not None:
            self.generator.finished(self, status, due_s)

    def close(self) -> None:
        """Close the connection (its request, if any, is the caller's to account for)."""
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.generator.lost(self)


class LoadGenerator:
    """Requests at a fixed rate to one HTTP endpoint; see the module docstring."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.host = str(spec["host"])
        self.port = int(spec["port"])
        self.rate = float(spec["rate"])
        self.duration_s = float(spec["duration_s"])
        self.start_wall_s = float(spec["start_wall_s"])
        self.phase_s = float(spec.get("phase_s", 0.0))
        self.timeout_s = float(spec["timeout_s"])
        self.max_connections = int(spec["max_connections"])
        head = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.requests = [head + b"%d\r\n\r\n" % len(b) + b.encode() for b in spec["bodies"]]
        self.result = LoadResult()
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.opening = 0
        self.waiting: collections.deque[tuple[int, float]] = collections.deque()
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()
        self.outstanding = 0

    async def run(self) -> LoadResult:
        """Send the whole schedule and wait for every answer (or its timeout)."""
        loop = self.loop
        count = round(self.rate * self.duration_s)
        self.result.scheduled = count
        self.outstanding = count
        start = loop.time() + max(0.0, self.start_wall_s - time.time()) + self.phase_s
        reaper = asyncio.create_task(self._reap())
        i = 0
        while i < count:
            now = loop.time()
            due = start + i / self.rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < count and start + i / self.rate <= now:
                due = start + i / self.rate
                self.result.lateness_s.append(now - due)
                self._submit(i, due)
                i += 1
        if self.outstanding:
            await self.done.wait()
        reaper.cancel()
        for connection in [*self.idle, *self.busy]:
            connection.close()
        return self.result

    def _submit(self, i: int, due_s: float) -> None:
        while self.idle:
            connection = self.idle.pop()
            if connection.open:
                self.busy.add(connection)
                connection.send(self.requests[i % len(self.requests)], due_s)
                return
        self.waiting.append((i, due_s))
        if len(self.busy) + self.opening < self.max_connections:
            self.opening += 1
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.waiting:
                _, due_s = self.waiting.popleft()
                self._finish(CONNECTION_FAILED, due_s)
            return
        self.opening -= 1
        self.result.connections_opened += 1

    def _next(self, connection: _Connection) -> None:
        """Give `connection` the oldest waiting request, or make it idle."""
        if self.waiting:
            i, due_s = self.waiting.popleft()
            self.busy.add(connection)
            connection.send(self.requests[i % len(self.requests)], due_s)
        else:
            self.idle.append(connection)

    def _finish(self, status: int, due_s: float) -> None:
        self.result.record(status, self.loop.time() - due_s)
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    def finished(self, connection: _Connection, status: int, due_s: float) -> None:
        """An answer with `status` arrived for the request due at `due_s`."""
        self.busy.discard(connection)
        self._finish(status, due_s)
        self._next(connection)

    def lost(self, connection: _Connection) -> None:
        """`connection` closed; a request it carried failed (unless timed out already)."""
        self.busy.discard(connection)
        if connection.due_s is not None:
            due_s, connection.due_s = connection.due_s, None
            self._finish(CONNECTION_FAILED, due_s)
        if connection in self.idle:
            self.idle.remove(connection)
        if not self.waiting:
            return
        # A replacement for the connection, for the requests still waiting.
        if len(self.busy) + self.opening < self.max_connections:
            self.opening += 1
            self.loop.create_task(self._open())

    def connected(self, connection: _Connection) -> None:
        """A new connection is up: it takes the oldest waiting request."""
        self._next(connection)

    async def _reap(self) -> None:
        """Time out requests (sent or waiting) unanswered `timeout_s` after they were due."""
        while True:
            await asyncio.sleep(0.05)
            now = self.loop.time()
            while self.waiting and now - self.waiting[0][1] >= self.timeout_s:
                _, due_s = self.waiting.popleft()
                self._finish(TIMEOUT, due_s)
            for connection in [c for c in self.busy if c.due_s is not None]:
                if connection.due_s is not None and now - connection.due_s >= self.timeout_s:
                    due_s, connection.due_s = connection.due_s, None
                    self.busy.discard(connection)
                    self._finish(TIMEOUT, due_s)
                    connection.close()


def main() -> int:
    """Read the spec from stdin, run it, write the result to stdout."""
    spec = orjson.loads(sys.stdin.buffer.read())

    async def run() -> LoadResult:
        return await LoadGenerator(spec).run()

    result = asyncio.run(run())
    sys.stdout.buffer.write(orjson.dumps(result.as_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
