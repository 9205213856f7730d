"""The rank server: `POST /rank` served by a process of its own, beside the worker.

The worker (`streams.rank_host`) binds the rank port and starts this process with the
listening socket and one end of a control socket: `python -m streams.rank_server CONTROL_FD
LISTEN_FD`. The process runs its own event loop, with an HTTP server on that socket that
serves `POST /rank` only (`streams.rank_http`: a minimal HTTP/1.1 front; `streams.rank_service`:
admission, routing, shedding) and its own ranking backend (`streams.rank_pool`). Request
parsing, shedding and answering never wait for the stream's event loop; the stream side only
publishes ranking views, at most once per tick of a shard, and reads the counts.

Control messages are frames (`streams.rank_pool.frame`). From the worker: `("settings",
Settings, shard_partitions)` first; then `("partitions", frozenset[int])` (the shard partitions
the worker owns; a request of any other is 421), `("view", RankView)`, `("empty", shard)` (no
live state: no couriers) and `("drop", shard)` (forget it). To the worker: `("ready",)` once
its ranking backend has started, `("want", shard)` for a shard it has no view of, and
`("report", RankReport)` every `REPORT_EVERY_S` (with whether the backend can rank now). When
the worker closes the control socket (or dies), the process stops its backend and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Collection
from typing import Any

from dispatchflow.settings import Settings
from streams.rank_http import RankHttpServer
from streams.rank_pool import RankBackend, frame, rank_backend, read_frame
from streams.rank_report import REPORT_EVERY_S, RankTally
from streams.rank_route import MAX_RANK_BODY_BYTES, RankJob, route_rank
from streams.rank_service import RankLimits, RankService, ViewBoard

logger = logging.getLogger(__name__)


class Owned(Collection[int]):
    """The shard partitions the worker owns, replaced whenever it says so."""

    def __init__(self) -> None:
        self.partitions: frozenset[int] = frozenset()

    def __contains__(self, partition: object) -> bool:
        return partition in self.partitions

    def __iter__(self) -> Any:
        return iter(self.partitions)

    def __len__(self) -> int:
        return len(self.partitions)


#: A burst may hold this many times `rank_max_in_flight` in flight ...
BURST_FACTOR = 4
#: ... for at most this share of `rank_deadline_s`; after a shed, a new burst waits as long
#: without another.
BURST_SHARE_OF_DEADLINE = 0.5


def limits_of(settings: Settings) -> RankLimits:
    """The admission limits `settings` ask for (a burst: see `streams.rank_service`)."""
    return RankLimits(
        max_in_flight=settings.rank_max_in_flight,
        burst_in_flight=BURST_FACTOR * settings.rank_max_in_flight,
        burst_s=BURST_SHARE_OF_DEADLINE * settings.rank_deadline_s,
        calm_s=BURST_SHARE_OF_DEADLINE * settings.rank_deadline_s,
        deadline_s=settings.rank_deadline_s,
        retry_after_s=settings.rank_retry_after_s,
    )


def handle_control(message: tuple[Any, ...], views: ViewBoard, owned: Owned) -> None:
    """Apply one message of the worker (anything but the first, `settings`)."""
    kind = message[0]
    if kind == "view":
        views.put(message[1])
    elif kind == "empty":
        views.empty(message[1])
    elif kind == "drop":
        views.drop(message[1])
    elif kind == "partitions":
        owned.partitions = frozenset(message[1])
    else:
        logger.warning("rank server: unknown control message %r", kind)


async def _report(writer: asyncio.StreamWriter, tally: RankTally, backend: RankBackend) -> None:
    while True:
        await asyncio.sleep(REPORT_EVERY_S)
        writer.write(frame(("report", tally.drain(ranking_ready=backend.ready))))


async def _start_backend(backend: RankBackend, writer: asyncio.StreamWriter) -> None:
    await backend.start()
    # What exists now lives as long as the process: frozen, a full collection no longer
    # walks it between two requests.
    gc.collect()
    gc.freeze()
    writer.write(frame(("ready",)))


async def serve(control: socket.socket, listener: socket.socket) -> None:
    """Serve `POST /rank` on `listener` until the worker closes `control`."""
    reader, writer = await asyncio.open_unix_connection(sock=control)
    kind, settings, shard_partitions = await read_frame(reader)
    if kind != "settings":
        msg = f"the first control message must be settings, not {kind!r}"
        raise RuntimeError(msg)
    backend = rank_backend(settings)
    tally = RankTally()
    owned = Owned()
    views = ViewBoard(backend, lambda shard: writer.write(frame(("want", shard))))

    def route(raw: bytes) -> RankJob | tuple[int, bytes]:
        return route_rank(
            raw,
            shard_precision=settings.shard_precision,
            shard_partitions=shard_partitions,
            owned_partitions=owned,
            clock_ms=lambda: time.time_ns() // 1_000_000,
        )

    service = RankService(backend, limits_of(settings), route=route, views=views, tally=tally)
    http = RankHttpServer(service.answer, shed=service.shed, max_body_bytes=MAX_RANK_BODY_BYTES)
    await http.start(listener)
    tasks = [
        asyncio.create_task(_start_backend(backend, writer)),
        asyncio.create_task(_report(writer, tally, backend)),
    ]
    try:
        while True:
            handle_control(await read_frame(reader), views, owned)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the worker closed its end, or died
    finally:
        for task in tasks:
            task.cancel()
        await http.close()
        await backend.close()


def main() -> int:
    """Entry point: `python -m streams.rank_server CONTROL_FD LISTEN_FD`."""
    # Ctrl+C reaches the whole process group; the worker decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    with (
        socket.socket(fileno=int(sys.argv[1])) as control,
        socket.socket(fileno=int(sys.argv[2])) as listener,
        contextlib.suppress(BrokenPipeError),
    ):
        listener.setblocking(False)
        asyncio.run(serve(control, listener))
    return 0


if __name__ == "__main__":
    sys.exit(main())
