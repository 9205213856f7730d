"""What a downstream consumer of `assignment_committed` may rely on when a worker dies mid-tick.

A seeded city runs through Kafka while the worker is killed with SIGKILL a few times, each time
a moment after a tick's records were produced (while it decides), and restarted on the same
data directory. Afterwards the topics are read with `isolation_level=read_committed`:

* no order ever has two live assignments, no courier is over capacity, every order ended;
* the worker is at-least-once: a record it handled before dying may be handled again after the
  restart, so a record it wrote may appear twice. Every copy of a commit is the same record
  (same `event_id`, same `decision_id`, same orders and route), so a consumer that keeps the
  first record per `decision_id` sees each decision exactly once.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from simulators.city import run_simulation, small_town
from simulators.city.protocol import SimRecord
from streams.consistency import check_topics
from streams.sim_dispatch import KafkaDispatch
from streams.worker_process import WorkerProcess
from tests.integration.conftest import Cluster


class _KillMidTick:
    """Kills the worker with SIGKILL a moment after the ticks of chosen steps, then restarts it."""

    def __init__(
        self, dispatch: KafkaDispatch, worker: WorkerProcess, steps: Sequence[int], seed: int
    ) -> None:
        self.dispatch = dispatch
        self.worker = worker
        self.steps = set(steps)
        self.rng = random.Random(seed)
        self.step = 0
        self.kills = 0
        self.errors: list[BaseException] = []
        self._restarts: list[threading.Thread] = []
        dispatch.after_ticks = self._after_ticks

    def _after_ticks(self) -> None:
        if self.step not in self.steps:
            return
        delay_s = self.rng.uniform(0.0, 0.05)
        thread = threading.Thread(target=self._kill_and_restart, args=(delay_s,), daemon=True)
        thread.start()
        self._restarts.append(thread)

    def _kill_and_restart(self, delay_s: float) -> None:
        threading.Event().wait(delay_s)
        self.worker.kill()
        self.kills += 1
        try:
            self.worker.start(ready_timeout_s=120)
        except BaseException as exc:  # reported by `run_until`
            self.errors.append(exc)

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        self.step += 1
        outputs = self.dispatch.run_until(inputs, until_ts_ms)
        for thread in self._restarts:
            thread.join(timeout=180)
        self._restarts.clear()
        if self.errors:
            raise self.errors[0]
        return outputs


async def _read_committed(client: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` a `read_committed` consumer sees, as JSON."""
    consumer = AIOKafkaConsumer(**client, isolation_level="read_committed", group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        events: list[dict[str, Any]] = []
        pending = [tp for tp in tps if ends[tp]]
        while pending:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                events.extend(orjson.loads(r.value) for r in batch)
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        return events
    finally:
        await consumer.stop()


def test_kills_mid_tick_leave_one_live_assignment_and_identical_duplicates(
    cluster: Cluster,
) -> None:
    """Three SIGKILLs mid-tick: every invariant holds and copies of a commit are identical."""
    config = small_town(seed=3)
    worker = cluster.start_worker("w1", tick_interval_s=config.tick_interval_s, log_level="info")
    dispatch = KafkaDispatch(cluster.client, [worker.url], settle_timeout_s=180.0)
    killer = _KillMidTick(dispatch, worker, steps=(25, 50, 75), seed=3)
    try:
        run_simulation(config, killer, progress=False)
    finally:
        dispatch.close()
    assert killer.kills == 3
    report = asyncio.run(check_topics(cluster.client, require_terminal=True))
    assert report.violation_count == 0, report.summary()
    commits = asyncio.run(_read_committed(cluster.client, "assignment_committed"))
    copies = Counter(c["decision_id"] for c in commits)
    for decision_id, n in copies.items():
        same = [c for c in commits if c["decision_id"] == decision_id]
        assert all(c == same[0] for c in same), f"{decision_id}: {n} different commits"
    assert report.commits == len(copies)
