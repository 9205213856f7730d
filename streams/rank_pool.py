"""Where `POST /rank` jobs are ranked: processes under the rank server, or a thread in it.

The rank server (`streams.rank_server`) drives a backend. `ProcessRankBackend` (`rank_workers`
≥ 1) runs child processes (`python -m streams.rank_pool`), each with its own ETA predictor
(built from the worker's settings) and its own copy of every shard's ranking view. The rank
server sends a view whenever the worker publishes one, and each job to the child with the
fewest jobs outstanding; a child ranks its jobs one at a time, in arrival order, and sends back
the answer body. No ranking runs in the rank server's process, so its event loop only reads
requests, hands jobs over and writes answers. A child skips a job whose deadline
(`time.monotonic()`, one clock for every process of the machine) has passed when it comes to
it: no work for a caller that has gone. A child that dies fails its outstanding jobs and is
started again a second later, with the current views.

`ThreadRankBackend` (`rank_workers` = 0) ranks in one thread of the rank server's process: no
extra process, but the ranking's Python code then takes turns with its HTTP server for the
interpreter lock (numpy releases it only inside its larger kernels).

Messages (both ways) are a 4-byte big-endian length and a pickle: to a child `("settings",
Settings)` first, then `("view", RankView)`, `("forget", shard)` and `("job", id, deadline_s,
RankJob)`; back `(READY_ID, READY, b"")` once it can rank (its imports done, its predictor
built, and what exists then frozen out of the garbage collector's sight), then `(id, outcome,
body)` per job with outcome `SKIPPED` (deadline passed, no body),
`ANSWERED` or `FAILED` (the error's message as the body). Jobs go only to children that said
they are ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import itertools
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dispatch.live.eta import LegPredictor
from dispatch.live.rank_view import RankView
from dispatchflow.settings import Settings
from streams.rank_route import RankJob, rank_job

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
#: Outcomes of a job, as a child reports them.
ANSWERED, SKIPPED, FAILED = "answered", "skipped", "failed"
#: What a child sends once it can rank, under a job id no job has.
READY, READY_ID = "ready", -1
#: Seconds before a child that died is started again.
RESTART_DELAY_S = 1.0


@dataclass(frozen=True)
class JobResult:
    """What became of a job: `ANSWERED` (body), `SKIPPED` (its deadline passed first), `FAILED`."""

    outcome: str
    body: bytes = b""


class RankUnavailable(RuntimeError):
    """No ranking process could take the job (none running, or it died with the job)."""


class RankBackend(Protocol):
    """Ranks jobs on views it was given; `streams.rank_service` drives it."""

    def publish(self, view: RankView) -> None:
        """Rank every later job of `view.shard` on `view`."""
        ...

    def forget(self, shard: str) -> None:
        """Drop the view of `shard` (later jobs of it have no couriers)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether a job submitted now can be ranked."""
        ...

    def submit(self, job: RankJob, deadline_s: float) -> asyncio.Future[JobResult]:
        """Rank `job` unless `deadline_s` (monotonic) passes first; may fail `RankUnavailable`."""
        ...

    async def start(self) -> None:
        """Get ready to rank."""
        ...

    async def close(self) -> None:
        """Stop; outstanding jobs fail with `RankUnavailable`."""
        ...


def frame(message: Any) -> bytes:
    """`message` as one frame: a 4-byte big-endian length, then its pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message `frame` wrote; `asyncio.IncompleteReadError` once the peer has gone.

    Frames come only from processes this worker started, so unpickling them is safe.
    """
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301


def run_one(
    job: RankJob, deadline_s: float, view: RankView | None, predictor: LegPredictor
) -> JobResult:
    """Rank `job` on `view` unless its deadline has passed; an unexpected error is `FAILED`."""
    if time.monotonic() > deadline_s:
        return JobResult(SKIPPED)
    try:
        return JobResult(ANSWERED, rank_job(job, view, predictor))
    except Exception as exc:
        logger.exception("ranking failed for shard %s", job.shard)
        return JobResult(FAILED, f"{type(exc).__name__}: {exc}".encode())


@dataclass
class _Child:
    """One ranking process and the jobs it owes answers to."""

    process: subprocess.Popen[bytes]
    transport: asyncio.Transport | None = None
    pending: dict[int, asyncio.Future[JobResult]] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, data: bytes) -> None:
        """Write `data` to the process (nothing once its socket is closed)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _ChildConnection(asyncio.Protocol):
    """The rank server's end of a ranking process's socket.

    Each answer settles its job as soon as its bytes are read, in the same turn of the event
    loop (no reader task to wake first).
    """

    def __init__(self, child: _Child, ended: Callable[[], None]) -> None:
        self.child = child
        self.ended = ended
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        """Settle every job whose answer is complete in the buffer."""
        buffer = self.buffer
        buffer += data
        child = self.child
        at = 0
        while len(buffer) - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, at)
            end = at + _LENGTH.size + length
            if len(buffer) < end:
                break
            job_id, outcome, body = pickle.loads(buffer[at + _LENGTH.size : end])  # noqa: S301
            at = end
            if job_id == READY_ID:
                child.ready.set()
                continue
            future = child.pending.pop(job_id, None)
            if future is not None and not future.done():
                future.set_result(JobResult(outcome, body))
        if at:
            del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        """The process ended (or closed its end)."""
        self.ended()


class ProcessRankBackend:
    """`workers` ranking processes; see the module docstring."""

    def __init__(self, workers: int, settings: Settings) -> None:
        if workers < 1:
            msg = "a process backend needs at least one worker process"
            raise ValueError(msg)
        self.settings = settings
        self._children: list[_Child | None] = [None] * workers
        self._views: dict[str, RankView] = {}
        self._ids = itertools.count()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """Whether a ranking process is ready for jobs."""
        return any(c is not None and c.ready.is_set() for c in self._children)

    async def start(self, timeout_s: float = 120.0) -> None:
        """Start every ranking process; return once each is ready (or `timeout_s` passed)."""
        for slot in range(len(self._children)):
            await self._spawn(slot)
        waits = [c.ready.wait() for c in self._children if c is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        except TimeoutError:
            logger.error("ranking processes not ready after %.0f s", timeout_s)

    async def _spawn(self, slot: int) -> None:
        if self._closing:
            return
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.rank_pool", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        child = _Child(process)
        transport, _ = await asyncio.get_running_loop().create_unix_connection(
            lambda: _ChildConnection(child, lambda: self._ended(slot, child)), sock=ours
        )
        child.transport = transport
        child.send(frame(("settings", self.settings)))
        for view in self._views.values():
            child.send(frame(("view", view)))
        self._children[slot] = child

    def _ended(self, slot: int, child: _Child) -> None:
        """`child` ended: fail the jobs it owed and, unless closing, start it again."""
        if self._children[slot] is child:
            self._children[slot] = None
        for future in child.pending.values():
            if not future.done():
                future.set_exception(RankUnavailable("the ranking process ended"))
        child.pending.clear()
        if child.transport is not None:
            child.transport.close()
        if not self._closing:
            code = child.process.poll()
            logger.error("ranking process %d ended (exit code %s); restarting it", slot, code)
            asyncio.get_running_loop().call_later(RESTART_DELAY_S, self._restart, slot)

    def _restart(self, slot: int) -> None:
        task = asyncio.get_running_loop().create_task(self._spawn(slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _broadcast(self, message: Any) -> None:
        data = frame(message)
        for child in self._children:
            if child is not None:
                child.send(data)

    def publish(self, view: RankView) -> None:
        """Send `view` to every ranking process (and to any started later)."""
        self._views[view.shard] = view
        self._broadcast(("view", view))

    def forget(self, shard: str) -> None:
        """Drop `shard`'s view everywhere."""
        if self._views.pop(shard, None) is not None:
            self._broadcast(("forget", shard))

    def submit(self, job: RankJob, deadline_s: float) -> asyncio.Future[JobResult]:
        """Hand `job` to the process with the fewest jobs outstanding."""
        future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        live = [c for c in self._children if c is not None and c.ready.is_set()]
        if not live:
            future.set_exception(RankUnavailable("no ranking process is ready"))
            return future
        child = min(live, key=lambda c: len(c.pending))
        job_id = next(self._ids)
        child.pending[job_id] = future
        child.send(frame(("job", job_id, deadline_s, job)))
        return future

    async def close(self) -> None:
        """Stop every ranking process (closing its socket ends it; then SIGTERM, SIGKILL)."""
        self._closing = True
        children = [c for c in self._children if c is not None]
        for child in children:
            if child.transport is not None:
                child.transport.close()
        for child in children:
            try:
                await asyncio.to_thread(child.process.wait, 5.0)
            except subprocess.TimeoutExpired:
                child.process.kill()
                await asyncio.to_thread(child.process.wait)
        for task in list(self._tasks):
            task.cancel()


class ThreadRankBackend:
    """Ranks in one thread of this process (`rank_workers` = 0); see the module docstring."""

    def __init__(self, predictor: LegPredictor) -> None:
        self.predictor = predictor
        self._views: dict[str, RankView] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def ready(self) -> bool:
        """Whether the ranking thread runs."""
        return self._executor is not None

    async def start(self) -> None:
        """Start the ranking thread."""
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rank")

    def publish(self, view: RankView) -> None:
        """Rank later jobs of `view.shard` on `view`."""
        self._views[view.shard] = view

    def forget(self, shard: str) -> None:
        """Drop `shard`'s view."""
        self._views.pop(shard, None)

    def submit(self, job: RankJob, deadline_s: float) -> asyncio.Future[JobResult]:
        """Queue `job` for the ranking thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobResult] = loop.create_future()
        if self._executor is None:
            future.set_exception(RankUnavailable("the ranking thread is not running"))
            return future
        view = self._views.get(job.shard)
        done = self._executor.submit(run_one, job, deadline_s, view, self.predictor)

        def settle(result: concurrent.futures.Future[JobResult]) -> None:
            if not future.done():
                future.set_result(result.result())

        done.add_done_callback(lambda result: loop.call_soon_threadsafe(settle, result))
        return future

    async def close(self) -> None:
        """Stop the ranking thread (after the job it is on)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def rank_backend(settings: Settings) -> RankBackend:
    """The backend `settings.rank_workers` asks for: that many processes, or (0) a thread."""
    if settings.rank_workers > 0:
        return ProcessRankBackend(settings.rank_workers, settings)
    from streams.eta_model import models_from_settings

    return ThreadRankBackend(models_from_settings(settings)[0])


def serve(sock: socket.socket) -> None:
    """A ranking process's loop: messages from the worker until it closes the socket."""
    from streams.eta_model import models_from_settings

    stream = sock.makefile("rb", buffering=1 << 16)
    views: dict[str, RankView] = {}
    predictor: LegPredictor | None = None
    while True:
        header = stream.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return  # the worker closed its end, or died
        (length,) = _LENGTH.unpack(header)
        message = pickle.loads(stream.read(length))  # noqa: S301 - from our own worker
        kind = message[0]
        if kind == "job":
            _, job_id, deadline_s, job = message
            if predictor is None:
                result = JobResult(FAILED, b"no settings received")
            else:
                result = run_one(job, deadline_s, views.get(job.shard), predictor)
            sock.sendall(frame((job_id, result.outcome, result.body)))
        elif kind == "view":
            views[message[1].shard] = message[1]
        elif kind == "forget":
            views.pop(message[1], None)
        elif kind == "settings":
            predictor = models_from_settings(message[1])[0]
            # Modules and the predictor live as long as the process: frozen, a full
            # collection no longer walks them between two jobs.
            gc.collect()
            gc.freeze()
            sock.sendall(frame((READY_ID, READY, b"")))


def main() -> int:
    """Entry point of a ranking process: `python -m streams.rank_pool FD`."""
    # Ctrl+C reaches the whole process group; the worker decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    with socket.socket(fileno=int(sys.argv[1])) as sock, contextlib.suppress(BrokenPipeError):
        serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
