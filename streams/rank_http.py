"""The rank server's HTTP/1.1 front: `POST /rank` only, read and answered with little work.

The rank server (`streams.rank_server`) answers one route, with small JSON bodies, at peak rates
of thousands of requests a second on a machine it shares with the worker. A general web
framework builds a request object, a router match, a response object and a header map for every
request, which cost the rank server more CPU than ranking the request did. This protocol reads
just what `POST /rank` needs: the request line, `Content-Length`, `Connection`,
`Transfer-Encoding` and `Expect`, and writes each answer as one buffer.

Per connection (HTTP/1.1 keep-alive; HTTP/1.0 closes after the answer unless it asks to keep
the connection alive), requests are answered one at a time, in order (pipelined requests wait
in the buffer). Once a request's head is read:

- another path is 404 and another method 405 (`Allow: POST`), a malformed head 400 and a head
  larger than `MAX_HEAD_BYTES` 431 (the connection is then closed);
- a body sent chunked is 411 (`Content-Length` is required); a body announced larger than
  `max_body_bytes` is 413, answered without reading it;
- `shed()` is asked next, before the body is read or parsed: an answer from it (the rank
  service is at its in-flight limit) goes out at once;
- otherwise the body is read (after `100 Continue` when the caller expects it) and answered
  with `answer(body)`; an exception there is a 500 with `{"error"}` (and logged).

Every error is a JSON `{"error": ...}` body. A body the server does not read is skipped, so the
connection stays usable (one announced larger than `MAX_SKIP_BYTES` closes it instead). A
connection idle for `IDLE_TIMEOUT_S` (between requests, or within an unfinished head) is
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import orjson

from streams.json_post import Answer

logger = logging.getLogger(__name__)

#: The longest request head (request line and headers) read, bytes.
MAX_HEAD_BYTES = 8192
#: A refused body longer than this is not skipped: the connection is closed.
MAX_SKIP_BYTES = 1 << 20
#: A connection without a request under way for this long is closed, seconds.
IDLE_TIMEOUT_S = 75.0
#: Reading from a connection pauses while this much waits behind the request being answered.
MAX_BUFFER_BYTES = 1 << 16

_PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def error_body(message: str) -> bytes:
    """The JSON body of an error answer: `{"error": message}`."""
    return orjson.dumps({"error": message})


def response(answer: Answer, *, keep_alive: bool) -> bytes:
    """`answer` as one HTTP/1.1 response (JSON body), with `Connection: close` unless kept."""
    status, body = answer[0], answer[1]
    parts = [
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\n" % (status, _PHRASES.get(status, b"Unknown"), len(body))
    ]
    if len(answer) > 2:
        for name, value in answer[2].items():
            parts.append(b"%s: %s\r\n" % (name.encode(), value.encode()))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


class _Head:
    """What a request head says, as far as this server cares."""

    __slots__ = ("chunked", "expect_continue", "keep_alive", "length", "method", "path")

    def __init__(self) -> None:
        self.method = b""
        self.path = b""
        self.keep_alive = True
        self.length = 0
        self.chunked = False
        self.expect_continue = False


#: What `RankHttpConnection._read_head` returns for a head it answered at once.
_REFUSED = _Head()


class _BadHead(ValueError):
    """A request head that cannot be read."""


def parse_head(head: bytes) -> _Head:
    """The request line and the headers that matter of one request head (no final CRLFs)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _BadHead("malformed request line")
    parsed = _Head()
    parsed.method = parts[0]
    parsed.path = parts[1].split(b"?", 1)[0]
    http10 = parts[2] == b"HTTP/1.0"
    connection = b""
    length: bytes | None = None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise _BadHead("malformed header line")
        name = name.strip().lower()
        if name == b"content-length":
            value = value.strip()
            if length is not None and value != length:
                raise _BadHead("conflicting Content-Length headers")
            length = value
        elif name == b"transfer-encoding":
            parsed.chunked = True
        elif name == b"connection":
            connection = value.strip().lower()
        elif name == b"expect":
            parsed.expect_continue = value.strip().lower() == b"100-continue"
    if length is not None:
        if not length.isdigit():
            raise _BadHead("Content-Length must be a non-negative integer")
        parsed.length = int(length)
    parsed.keep_alive = connection == b"keep-alive" if http10 else connection != b"close"
    return parsed


class RankHttpServer:
    """Serves `POST path` on a listening socket; see the module docstring.

    Args:
        answer: the answer to a request body.
        shed: an answer given before the body is read (None: read it and `answer`).
        max_body_bytes: a longer body is refused with 413.
        path: the one path served.
        idle_timeout_s: an idle connection is closed after this long.
    """

    def __init__(
        self,
        answer: Callable[[bytes], Awaitable[Answer]],
        *,
        shed: Callable[[], Answer | None],
        max_body_bytes: int,
        path: str = "/rank",
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.answer = answer
        self.shed = shed
        self.max_body_bytes = max_body_bytes
        self.path = path.encode()
        self.idle_timeout_s = idle_timeout_s
        self.too_large: Answer = (413, error_body(f"body larger than {max_body_bytes} bytes"))
        self.connections: set[RankHttpConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self, listener: socket.socket) -> None:
        """Serve connections accepted on `listener` (bound and listening, non-blocking)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: RankHttpConnection(self), sock=listener, backlog=1024
        )
        self._sweeping = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close connections idle for `idle_timeout_s`."""
        while True:
            await asyncio.sleep(min(self.idle_timeout_s / 4, 15.0))
            now_s = time.monotonic()
            for connection in list(self.connections):
                idle_since_s = connection.idle_since_s
                if idle_since_s is not None and now_s - idle_since_s >= self.idle_timeout_s:
                    connection.close()

    async def close(self) -> None:
        """Stop accepting and close every connection (answers under way are not written)."""
        if self._sweeping is not None:
            self._sweeping.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


class RankHttpConnection(asyncio.Protocol):
    """One client connection of a `RankHttpServer`."""

    def __init__(self, server: RankHttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        #: The request whose body is awaited (its head read and accepted).
        self.head: _Head | None = None
        #: Bytes of a refused body still to skip.
        self.skip = 0
        #: An answer is under way (later requests wait in the buffer).
        self.busy = False
        #: The task answering the request under way (held so it is not collected).
        self.answering: asyncio.Task[None] | None = None
        self.paused = False
        #: Since when no request has been under way (None while one is).
        self.idle_since_s: float | None = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A caller connected."""
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection ended (an answer under way is then not written)."""
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        """The caller does not read its answers: stop reading its requests."""
        self._pause()

    def resume_writing(self) -> None:
        """The caller reads its answers again."""
        self._resume()

    def data_received(self, data: bytes) -> None:
        """Bytes from the caller: handled at once unless an answer is under way."""
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_BUFFER_BYTES:
                self._pause()
            return
        self._advance()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()

    def _pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def _advance(self) -> None:
        """Handle what the buffer holds, until a request is under way or more bytes are due."""
        while not self.busy and self.transport is not None:
            if self.skip:
                skipped = min(self.skip, len(self.buffer))
                del self.buffer[:skipped]
                self.skip -= skipped
                if self.skip:
                    return
            head = self.head
            if head is None:
                head = self._read_head()
                if head is None:
                    return
                if head is _REFUSED:
                    continue
            if len(self.buffer) < head.length:
                return
            body = bytes(self.buffer[: head.length])
            del self.buffer[: head.length]
            self.head = None
            self.busy = True
            self.idle_since_s = None
            self.answering = asyncio.get_running_loop().create_task(
                self._answer(body, head.keep_alive)
            )

    def _read_head(self) -> _Head | None:
        """The next request's head if its body is to be read; None while it is incomplete.

        A head refused at once is answered here (its body marked to skip) and is `_REFUSED`.
        """
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self._write((431, error_body("request head too large")), keep_alive=False)
            return None
        try:
            head = parse_head(bytes(self.buffer[:end]))
        except _BadHead as exc:
            self._write((400, error_body(str(exc))), keep_alive=False)
            return None
        del self.buffer[: end + 4]
        refused = self._refusal(head)
        if refused is None:
            if head.expect_continue and head.length > len(self.buffer):
                self.transport.write(_CONTINUE)  # type: ignore[union-attr]
            self.head = head
            return head
        # A body that may never come (the caller waits for 100 Continue) or that cannot be
        # skipped (chunked, or huge) ends the connection instead.
        keep_alive = (
            head.keep_alive
            and not head.chunked
            and head.length <= MAX_SKIP_BYTES
            and not (head.expect_continue and head.length > len(self.buffer))
        )
        self.skip = head.length
        self._write(refused, keep_alive=keep_alive)
        return _REFUSED if keep_alive else None

    def _refusal(self, head: _Head) -> Answer | None:
        """The answer refusing `head` before its body is read, or None to read it."""
        if head.path != self.server.path:
            return 404, error_body("not found")
        if head.method != b"POST":
            return 405, error_body("method not allowed"), {"Allow": "POST"}
        if head.chunked:
            return 411, error_body("a body with Content-Length is required")
        if head.length > self.server.max_body_bytes:
            return self.server.too_large
        return self.server.shed()

    async def _answer(self, body: bytes, keep_alive: bool) -> None:
        try:
            result = await self.server.answer(body)
        except Exception:
            logger.exception("POST %s failed", self.server.path.decode())
            result = 500, error_body("internal error")
        self.busy = False
        self.idle_since_s = time.monotonic()
        self._write(result, keep_alive=keep_alive)
        if keep_alive:
            self._resume()
            self._advance()

    def _write(self, answer: Answer, *, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response(answer, keep_alive=keep_alive))
        if not keep_alive:
            transport.close()
            self.transport = None
