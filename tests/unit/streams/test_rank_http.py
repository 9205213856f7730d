"""The rank server's HTTP front: `POST /rank` answered, refusals before the body, keep-alive."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest

from streams.json_post import Answer
from streams.rank_http import RankHttpServer, parse_head, response

MAX_BODY = 64


class Calls:
    """What the server asked: bodies answered, and how many times it asked to shed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.shed_asked = 0
        self.shed_answer: Answer | None = None

    async def answer(self, body: bytes) -> Answer:
        self.bodies.append(body)
        if body == b"boom":
            raise RuntimeError("boom")
        return 200, b'{"echo":%d}' % len(body), {"X-Seen": str(len(self.bodies))}

    def shed(self) -> Answer | None:
        self.shed_asked += 1
        return self.shed_answer


Server = tuple[Calls, int]


async def serve(idle_timeout_s: float = 75.0) -> tuple[RankHttpServer, Calls, int]:
    """A server on a free loopback port; its calls and port."""
    calls = Calls()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    server = RankHttpServer(
        calls.answer, shed=calls.shed, max_body_bytes=MAX_BODY, idle_timeout_s=idle_timeout_s
    )
    await server.start(listener)
    return server, calls, int(listener.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A running server (idle connections kept for 75 s)."""
    http, calls, port = await serve()
    yield calls, port
    await http.close()


def post(body: bytes, path: str = "/rank", extra: str = "", method: str = "POST") -> bytes:
    """A request with `body` (Content-Length set) and `extra` header lines."""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split(" ")[1]), headers, body


async def exchange(port: int, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `requests` back to back on one connection; read one answer per request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(requests))
    try:
        return [await read_answer(reader) for _ in requests]
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (reads to the end)."""
    return await asyncio.wait_for(reader.read(), 10.0) == b""


async def answer_then_end(port: int, raw: bytes) -> tuple[int, dict[str, str], bool]:
    """Send `raw`; the answer's status and headers, and whether the server then closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        status, headers, _ = await read_answer(reader)
        return status, headers, await closed_by_server(reader)
    finally:
        writer.close()


async def test_a_post_is_answered_with_the_answer_s_status_body_and_headers(
    server: Server,
) -> None:
    """The body reaches `answer`; its status, JSON body and headers come back."""
    calls, port = server
    [(status, headers, body)] = await exchange(port, post(b'{"k":1}'))
    assert (status, orjson.loads(body), headers["x-seen"], calls.bodies) == (
        200,
        {"echo": 7},
        "1",
        [b'{"k":1}'],
    )


async def test_answers_are_json(server: Server) -> None:
    """Every answer says it is JSON."""
    [(_, headers, _)] = await exchange(server[1], post(b"{}"))
    assert headers["content-type"] == "application/json; charset=utf-8"


async def test_pipelined_requests_on_one_connection_are_answered_in_order(
    server: Server,
) -> None:
    """Keep-alive: requests sent back to back get their answers in the order sent."""
    answers = await exchange(server[1], post(b"a"), post(b"bbb"), post(b"cc"))
    assert [orjson.loads(body)["echo"] for _, _, body in answers] == [1, 3, 2]


async def test_a_body_announced_too_large_is_413_without_being_answered(server: Server) -> None:
    """The size guard answers from the head; `answer` never sees the body."""
    calls, port = server
    [(status, _, body)] = await exchange(port, post(b"x" * (MAX_BODY + 1)))
    assert (status, "error" in orjson.loads(body), calls.bodies) == (413, True, [])


async def test_a_refused_body_is_skipped_and_the_connection_serves_the_next_request(
    server: Server,
) -> None:
    """After a 413 the connection stays in step: the next request is answered."""
    answers = await exchange(server[1], post(b"x" * (MAX_BODY + 1)), post(b"ok"))
    assert [status for status, _, _ in answers] == [413, 200]


async def test_a_shed_answer_goes_out_before_the_body_is_read(server: Server) -> None:
    """With `shed` answering, the request is answered though its body never came."""
    calls, port = server
    calls.shed_answer = (503, b'{"error":"full"}', {"Retry-After": "1"})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /rank HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
    status, headers, _ = await read_answer(reader)
    writer.close()
    assert (status, headers["retry-after"], calls.bodies) == (503, "1", [])


async def test_shed_is_asked_once_per_request(server: Server) -> None:
    """Each accepted head asks `shed` once."""
    calls, port = server
    await exchange(port, post(b"a"), post(b"b"))
    assert calls.shed_asked == 2


async def test_another_path_is_404(server: Server) -> None:
    """Only the one path is served."""
    [(status, _, body)] = await exchange(server[1], post(b"{}", path="/other"))
    assert (status, "error" in orjson.loads(body)) == (404, True)


async def test_another_method_is_405_allowing_post(server: Server) -> None:
    """GET /rank is refused, naming the method that is allowed."""
    [(status, headers, _)] = await exchange(server[1], post(b"", method="GET"))
    assert (status, headers["allow"]) == (405, "POST")


async def test_a_chunked_body_is_411(server: Server) -> None:
    """A body without Content-Length is refused, and the connection closed."""
    raw = b"POST /rank HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    status, _, closed = await answer_then_end(server[1], raw)
    assert (status, closed) == (411, True)


async def test_a_malformed_head_is_400_and_closes_the_connection(server: Server) -> None:
    """A head that cannot be read leaves the connection out of step: it is closed."""
    status, _, closed = await answer_then_end(server[1], b"NONSENSE\r\n\r\n")
    assert (status, closed) == (400, True)


async def test_connection_close_is_honoured_after_the_answer(server: Server) -> None:
    """A caller that says `Connection: close` gets its answer, then the end of the stream."""
    raw = post(b"{}", extra="Connection: close\r\n")
    status, headers, closed = await answer_then_end(server[1], raw)
    assert (status, headers["connection"], closed) == (200, "close", True)


async def test_an_http_1_0_request_closes_after_its_answer(server: Server) -> None:
    """HTTP/1.0 without keep-alive: one request per connection."""
    raw = b"POST /rank HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"
    status, _, closed = await answer_then_end(server[1], raw)
    assert (status, closed) == (200, True)


async def test_expect_100_continue_is_answered_before_the_body_is_sent(server: Server) -> None:
    """A caller waiting for `100 Continue` gets it, then its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server[1])
    writer.write(b"POST /rank HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    interim = await reader.readuntil(b"\r\n\r\n")
    writer.write(b"{}")
    status, _, _ = await read_answer(reader)
    writer.close()
    assert (interim.split(b" ")[1], status) == (b"100", 200)


async def test_an_answer_that_raises_is_a_json_500(server: Server) -> None:
    """An error in `answer` is a 500 with `{"error"}`; the connection keeps serving."""
    answers = await exchange(server[1], post(b"boom"), post(b"ok"))
    assert [(s, "error" in orjson.loads(b)) for s, _, b in answers] == [(500, True), (200, False)]


async def test_an_idle_connection_is_closed() -> None:
    """A connection without a request under way is closed after the idle timeout."""
    http, _, port = await serve(idle_timeout_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await closed_by_server(reader)
    finally:
        writer.close()
        await http.close()


def test_a_head_reads_path_without_query_and_length() -> None:
    """The request line's path loses its query; Content-Length is read."""
    head = parse_head(b"POST /rank?x=1 HTTP/1.1\r\ncontent-length: 12")
    assert (head.method, head.path, head.length, head.keep_alive) == (b"POST", b"/rank", 12, True)


def test_a_response_without_keep_alive_says_connection_close() -> None:
    """The last answer on a connection announces the close."""
    assert b"\r\nConnection: close\r\n" in response((200, b"{}"), keep_alive=False)
