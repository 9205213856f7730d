"""Carrying out a fault schedule on the running cluster and workers, and logging what happened.

The lockstep calls `FaultInjector.before_step(step)` on its own thread before each step and
`after_ticks(step)` right after the step's ticks are produced. Faults start in threads of their
own (a kill, a wait of `down_s`, a restart), so the lockstep goes on while a worker or a broker
is down; the workers the lockstep asks for their progress change only on the lockstep's thread
(`before_step`), never under it.

What the injector guarantees:

* a fault goes to its target if that is up, else to the next one up, else it waits for a later
  step; a broker is killed only while every partition has all its replicas in sync (never two
  brokers down);
* a worker that exits without being killed is an unexpected crash: logged, counted and
  restarted (so the run goes on and the count is honest);
* a paused worker (a zombie to be) is remembered with the partitions it owned and the end
  offsets of `assignment_committed` just after it stopped, for the fencing check.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from dispatch.live.topic_names import ASSIGNMENT_COMMITTED
from streams.chaos.schedule import Fault, FaultKind
from streams.kafka_broker import KafkaCluster
from streams.offsets import exact_end_offsets
from streams.stall import SESSION_LOST_EXIT_STATUS
from streams.worker_process import WorkerProcess

#: How long a restarted worker may take to become ready, seconds.
READY_TIMEOUT_S = 180.0
#: How long after pausing a worker its last sends are given to land before offsets are read.
SETTLE_AFTER_PAUSE_S = 1.0


@dataclass(frozen=True)
class FaultEvent:
    """Something the injector did or saw.

    Attributes:
        at_s: seconds since the run started (monotonic clock).
        wall_s: epoch seconds (to line up with the workers' logs).
        step: the lockstep step it happened in.
        what: `worker_killed`, `worker_restarted`, `broker_killed`, `broker_restarted`,
            `broker_in_sync`, `zombie_paused`, `zombie_resumed`, `zombie_ready`, `zombie_fenced`
            (a resumed zombie that exited by itself, `streams.stall`, and is restarted),
            `unexpected_exit`, `restart_failed`.
        target: worker or broker index.
        detail: free text (wiped state, exit code, ...).
    """

    at_s: float
    wall_s: float
    step: int
    what: str
    target: int
    detail: str = ""


@dataclass(frozen=True)
class ZombieWindow:
    """A paused worker, for the fencing check.

    Attributes:
        worker: its index.
        paused_wall_s: epoch seconds when it was paused.
        resumed_wall_s: epoch seconds when it was resumed.
        partitions: the shard partitions it owned then.
        committed_end: end offset of each of those `assignment_committed` partitions read just
            after the pause (what it wrote before it stopped is below).
    """

    worker: int
    paused_wall_s: float
    resumed_wall_s: float
    partitions: tuple[int, ...]
    committed_end: Mapping[int, int]


@dataclass
class _Slot:
    """A worker's state as the injector sees it."""

    busy: bool = False  # a fault (or a restart) is in progress
    paused: bool = False
    stopped_since_start: bool = False  # SIGSTOPped since its last (re)start


@dataclass
class FaultInjector:
    """Carries out `faults` on `cluster` and `workers`; see the module docstring.

    `add_url` and `remove_url` change the set of workers the lockstep asks for progress.
    """

    faults: Sequence[Fault]
    cluster: KafkaCluster
    workers: Sequence[WorkerProcess]
    client: Mapping[str, Any]
    add_url: Callable[[str], None]
    remove_url: Callable[[str], None]
    started_s: float = field(default_factory=time.monotonic)
    events: list[FaultEvent] = field(default_factory=list)
    zombies: list[ZombieWindow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pending = sorted(self.faults, key=lambda f: f.step)
        self._slots = [_Slot() for _ in self.workers]
        self._broker_busy = False
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._back: list[int] = []
        self._watched = set(range(len(self.workers)))  # workers under progress
        self._step = 0
        self._closing = False
        self.done: list[tuple[Fault, int]] = []  # (fault, step it started at)

    # ------------------------------------------------------------------ lockstep hooks
    def before_step(self, step: int) -> None:
        """Put workers that came back under progress again; restart any that exited by itself."""
        self._step = step
        with self._lock:
            back, self._back = self._back, []
        for index in back:
            self._watched.add(index)
            self.add_url(self.workers[index].url)
        for index, worker in enumerate(self.workers):
            slot = self._slots[index]
            with self._lock:
                if slot.busy or worker.running():
                    continue
                slot.busy = True
            code = worker.returncode
            if code == SESSION_LOST_EXIT_STATUS and slot.stopped_since_start:
                # A zombie that rejoined before it noticed the stop (streams.stall).
                self._log("zombie_fenced", index, f"exited with status {code}")
            else:
                self._log("unexpected_exit", index, f"exit code {code}")
            self._unwatch(index)
            self._spawn(self._restart_after, index, 0.0, False)

    def after_ticks(self, step: int) -> None:
        """Start the faults due at `step` (and earlier ones that had to wait)."""
        if self._closing:
            return
        still: list[Fault] = []
        for fault in self._pending:
            if fault.step > step or not self._start(fault, step):
                still.append(fault)
        self._pending = still

    @property
    def pending(self) -> list[Fault]:
        """Faults not started yet."""
        return list(self._pending)

    def shutdown(self, timeout_s: float = 120.0) -> None:
        """Start nothing more (no restart either) and wait for the fault threads to end."""
        self._closing = True
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def idle(self) -> bool:
        """True when no fault is in progress and every worker and broker is up."""
        with self._lock:
            busy = self._broker_busy or any(s.busy for s in self._slots)
        return not busy and all(w.running() for w in self.workers)

    def wait_idle(self, timeout_s: float) -> None:
        """Wait for every fault thread; put returned workers under progress; raise on timeout."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            msg = f"faults still in progress after {timeout_s:.0f} s"
            raise TimeoutError(msg)
        self.before_step(self._step)

    # ------------------------------------------------------------------ starting faults
    def _start(self, fault: Fault, step: int) -> bool:
        if fault.kind is FaultKind.BROKER_KILL:
            with self._lock:
                if self._broker_busy:
                    return False
                self._broker_busy = True
            self.done.append((fault, step))
            self._spawn(self._broker_fault, fault)
            return True
        index = self._claim_worker(fault.target, prefer_shards=fault.kind is FaultKind.ZOMBIE)
        if index is None:
            return False
        self.done.append((fault, step))
        self._unwatch(index)
        if fault.kind is FaultKind.WORKER_KILL:
            self._spawn(self._worker_kill, index, fault)
        else:
            self._spawn(self._zombie, index, fault)
        return True

    def _claim_worker(self, target: int, *, prefer_shards: bool) -> int | None:
        """The worker to fault: `target` or the next one up (owning a shard, if preferred)."""
        n = len(self.workers)
        order = [(target + i) % n for i in range(n)]
        with self._lock:
            up = [i for i in order if not self._slots[i].busy and self.workers[i].running()]
        if prefer_shards:
            owning = [i for i in up if _shard_partitions(self.workers[i])]
            up = owning or up
        if not up:
            return None
        with self._lock:
            self._slots[up[0]].busy = True
        return up[0]

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:
                self.errors.append(f"{target.__name__}{args!r}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True, name=f"chaos-{target.__name__}")
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------ fault threads
    def _worker_kill(self, index: int, fault: Fault) -> None:
        time.sleep(fault.delay_s)
        self.workers[index].kill()
        self._log("worker_killed", index, "state wiped" if fault.wipe else "state kept")
        self._restart_after(index, fault.down_s, fault.wipe)

    def _restart_after(self, index: int, down_s: float, wipe: bool) -> None:
        time.sleep(down_s)
        worker = self.workers[index]
        if self._closing:
            return
        if wipe:
            shutil.rmtree(worker.settings.datadir, ignore_errors=True)
        for attempt in (1, 2):
            try:
                worker.start(ready_timeout_s=READY_TIMEOUT_S)
                break
            except Exception as exc:
                self._log("restart_failed", index, f"attempt {attempt}: {str(exc)[:300]}")
                worker.kill()
        else:
            self.errors.append(f"worker {index} did not restart")
            return
        self._slots[index].stopped_since_start = False
        self._log("worker_restarted", index, f"ready after {worker.ready_after_s:.1f} s")
        self._come_back(index)

    def _zombie(self, index: int, fault: Fault) -> None:
        time.sleep(fault.delay_s)
        worker = self.workers[index]
        partitions = _shard_partitions(worker)
        self._slots[index].stopped_since_start = True
        worker.pause()
        paused_wall_s = time.time()
        self._log("zombie_paused", index, f"owned shard partitions {list(partitions)}")
        time.sleep(SETTLE_AFTER_PAUSE_S)
        ends = asyncio.run(_committed_ends(self.client, partitions))
        time.sleep(max(0.0, fault.down_s - SETTLE_AFTER_PAUSE_S))
        worker.resume()
        self.zombies.append(ZombieWindow(index, paused_wall_s, time.time(), partitions, ends))
        self._log("zombie_resumed", index, f"after {fault.down_s:.1f} s")
        try:
            _wait_rejoined(worker)
        except SelfFenced:
            # Stopped past its session timeout, the worker exits on its own (streams.stall);
            # like a supervisor, the harness starts it again.
            self._log("zombie_fenced", index, f"exited with status {SESSION_LOST_EXIT_STATUS}")
            self._restart_after(index, 0.0, False)
            return
        except Exception as exc:
            # A zombie that cannot rejoin is restarted (and its exit counted in the logs).
            self._log("restart_failed", index, f"zombie did not rejoin: {str(exc)[:300]}")
            worker.kill()
            self._restart_after(index, 0.0, False)
            return
        self._log("zombie_ready", index, "rejoined the group")
        self._come_back(index)

    def _broker_fault(self, fault: Fault) -> None:
        try:
            time.sleep(fault.delay_s)
            self.cluster.kill_node(fault.target)
            self._log("broker_killed", fault.target)
            time.sleep(fault.down_s)
            if self._closing:
                return
            self.cluster.restart_node(fault.target, timeout_s=READY_TIMEOUT_S)
            self._log("broker_restarted", fault.target)
            self.cluster.wait_fully_replicated(timeout_s=READY_TIMEOUT_S)
            self._log("broker_in_sync", fault.target, "every replica in sync")
        finally:
            with self._lock:
                self._broker_busy = False

    def _unwatch(self, index: int) -> None:
        """Stop asking worker `index` for progress: it is faulted or gone.

        A worker that came back since the last step is not under progress yet; it is dropped
        from those waiting to be put back instead.
        """
        with self._lock:
            if index in self._back:
                self._back.remove(index)
        if index in self._watched:
            self._watched.discard(index)
            self.remove_url(self.workers[index].url)

    def _come_back(self, index: int) -> None:
        with self._lock:
            self._slots[index].busy = False
            self._back.append(index)

    def _log(self, what: str, target: int, detail: str = "") -> None:
        event = FaultEvent(
            round(time.monotonic() - self.started_s, 3),
            time.time(),
            self._step,
            what,
            target,
            detail,
        )
        with self._lock:
            self.events.append(event)


def _wait_rejoined(worker: WorkerProcess, notice_s: float = 30.0) -> None:
    """Wait until a resumed worker has noticed it lost the group (not ready) and is ready again.

    A worker that never turns unready within `notice_s` was not evicted; it is ready as it is.
    A worker that exits because it was stopped past its session timeout raises `SelfFenced`.
    """
    deadline = time.monotonic() + notice_s
    while time.monotonic() < deadline and worker.request("/readyz", timeout_s=2.0)[0] == 200:
        time.sleep(0.1)
    deadline = time.monotonic() + 10.0
    while worker.running() and time.monotonic() < deadline:
        if worker.request("/readyz", timeout_s=2.0)[0] == 200:
            return
        time.sleep(0.1)
    if not worker.running() and worker.returncode == SESSION_LOST_EXIT_STATUS:
        raise SelfFenced
    worker.wait_ready(READY_TIMEOUT_S)


class SelfFenced(Exception):
    """A resumed zombie ended itself (`streams.stall.SESSION_LOST_EXIT_STATUS`)."""


def _shard_partitions(worker: WorkerProcess) -> tuple[int, ...]:
    """The shard partitions a worker owns now (its `/readyz`), empty if it does not answer."""
    status, body = worker.request("/readyz", timeout_s=2.0)
    if status not in (200, 503) or not body:
        return ()
    try:
        return tuple(int(p) for p in orjson.loads(body).get("shard_partitions", ()))
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return ()


async def _committed_ends(client: Mapping[str, Any], partitions: Sequence[int]) -> dict[int, int]:
    """End offsets of the given `assignment_committed` partitions now."""
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(ASSIGNMENT_COMMITTED, p) for p in partitions]
        ends = await exact_end_offsets(consumer, tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()
