"""`dispatchflow bench scaleout`: ping ingest on Apache Kafka with 1, 2, 3 worker processes.

For each worker count n, on a fresh one-node Apache Kafka (the same 8 partitions each time):

1. `--couriers` couriers come online (their shards hold them, so their fixes are plain position
   updates) and n workers in one group are ready;
2. throughput: `--pings` fixes in records of `--batch` (a gateway's one-second batch), keyed by
   `--gateways` gateway ids so that they spread over the partitions, are produced at once; the
   run is timed from the first fix applied to the last, and each worker's CPU seconds (its
   `process_cpu_seconds_total`) and time per stage (`pings`: decode and regroup by shard;
   `positions`: the position store and zone features) are read from its metrics;
3. rebalance pause: as many fixes again are produced, and once ingest is under way one more
   worker joins the group; the pause is the longest time in which no fix was applied, from the
   join until the batch is done (the group stops consuming while partitions move).

Every figure is printed and written as JSON with the machine's load average, because on a
shared machine the wall-clock figures depend on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from contracts.topics import load_topics
from dispatchflow.settings import BrokerKind
from simulators.synthetic import Record
from streams.bench_ingest import START_TS_MS, generate_online, generate_pings
from streams.demo import local_settings
from streams.kafka_broker import KafkaCluster
from streams.kafka_config import aiokafka_kwargs
from streams.produce import produce_records, wait_processed
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

_APPLIED = re.compile(r"^dispatchflow_positions_applied_total ([0-9.e+]+)$", re.M)
_CPU = re.compile(r"^process_cpu_seconds_total ([0-9.e+]+)$", re.M)
_STAGE = re.compile(
    r'^dispatchflow_event_processing_seconds_sum\{agent="(pings|positions)"\} ([0-9.e+]+)$', re.M
)
#: How often progress is sampled, seconds (the rebalance pause is measured at this resolution).
SAMPLE_S = 0.1


@dataclass(frozen=True)
class WorkerFigures:
    """One worker's counters at one moment."""

    applied: float
    cpu_s: float
    stage_s: dict[str, float]


def read_figures(worker: WorkerProcess) -> WorkerFigures | None:
    """A worker's applied fixes, CPU seconds and seconds per stage (None if it does not answer)."""
    status, body = worker.request("/metrics", timeout_s=5.0)
    if status != 200:
        return None
    text = body.decode("utf-8", "replace")
    applied = _APPLIED.search(text)
    cpu = _CPU.search(text)
    stages = {m[1]: float(m[2]) for m in _STAGE.finditer(text)}
    return WorkerFigures(
        float(applied[1]) if applied else 0.0, float(cpu[1]) if cpu else 0.0, stages
    )


def spread_over_gateways(records: Sequence[Record], gateways: int) -> list[Record]:
    """The ping records keyed by `gateways` gateway ids in turn (so they use every partition)."""
    return [replace(r, key=f"gateway-{i % gateways}".encode()) for i, r in enumerate(records)]


def _total_applied(workers: Sequence[WorkerProcess]) -> float:
    return sum(f.applied for w in workers if (f := read_figures(w)) is not None)


def _start_all(workers: Sequence[WorkerProcess]) -> None:
    threads = [threading.Thread(target=w.start, kwargs={"ready_timeout_s": 300}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    down = [w.url for w in workers if not w.running()]
    if down:
        msg = f"workers did not start: {down}"
        raise RuntimeError(msg)


def _throughput(
    workers: Sequence[WorkerProcess], client: dict[str, Any], records: list[Record], pings: int
) -> dict[str, Any]:
    """Produce `records` and time their ingest by `workers`; CPU and stage seconds per worker."""
    before = [read_figures(w) for w in workers]
    base = sum(f.applied for f in before if f is not None)
    producing = threading.Thread(
        target=lambda: asyncio.run(produce_records(client, records)), daemon=True
    )
    producing.start()
    first_s: float | None = None
    deadline = time.monotonic() + 1800
    with tqdm(total=pings, unit="ping", leave=False, desc=f"{len(workers)} worker(s)") as bar:
        while time.monotonic() < deadline:
            done = _total_applied(workers) - base
            now = time.monotonic()
            if done > 0 and first_s is None:
                first_s = now
            bar.update(max(0, int(done) - bar.n))
            if done >= pings:
                break
            time.sleep(SAMPLE_S)
        else:
            msg = f"{len(workers)} workers did not apply {pings} fixes within 1800 s"
            raise TimeoutError(msg)
    seconds = time.monotonic() - (first_s or time.monotonic())
    producing.join()
    after = [read_figures(w) for w in workers]
    per_worker = []
    for b, a in zip(before, after, strict=True):
        if a is None or b is None:
            continue
        per_worker.append(
            {
                "applied": a.applied - b.applied,
                "cpu_s": round(a.cpu_s - b.cpu_s, 2),
                "stage_s": {k: round(v - b.stage_s.get(k, 0.0), 2) for k, v in a.stage_s.items()},
            }
        )
    return {"seconds": round(seconds, 2), "workers": per_worker}


def _rebalance_pause(
    workers: Sequence[WorkerProcess],
    joining: WorkerProcess,
    client: dict[str, Any],
    records: list[Record],
    pings: int,
) -> dict[str, Any]:
    """Produce `records`; once ingest is under way, start `joining`; the longest stall after."""
    group = [*workers, joining]
    base = _total_applied(workers)
    producing = threading.Thread(
        target=lambda: asyncio.run(produce_records(client, records)), daemon=True
    )
    producing.start()
    while _total_applied(workers) - base < pings * 0.1:
        time.sleep(SAMPLE_S)
    starter = threading.Thread(target=joining.start, kwargs={"ready_timeout_s": 300})
    join_s = time.monotonic()
    starter.start()
    last_value, last_change = _total_applied(group), time.monotonic()
    longest = 0.0
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        value = _total_applied(group)
        now = time.monotonic()
        if value > last_value:
            longest = max(longest, now - last_change)
            last_value, last_change = value, now
        if value - base >= pings:
            break
        time.sleep(SAMPLE_S)
    starter.join()
    producing.join()
    return {
        "pause_s": round(longest, 2),
        "joined_after_s": round(joining.ready_after_s or 0.0, 2),
        "since_join_s": round(time.monotonic() - join_s, 2),
    }


def _phase(
    n: int,
    online: list[Record],
    batch_a: list[Record],
    batch_b: list[Record],
    pings: int,
    workdir: Path,
) -> dict[str, Any]:
    """Throughput with `n` workers, then the pause when worker n+1 joins them."""
    with KafkaCluster(1, run_dir=workdir / "kafka") as cluster:
        settings = [
            local_settings(
                cluster.bootstrap,
                workdir / f"worker-{i}" / "data",
                BrokerKind.KAFKA,
                consumer_group_instance_id=f"scaleout-{i}",
                ticker_enabled=False,
            )
            for i in range(n + 1)
        ]
        client = aiokafka_kwargs(settings[0])
        topics = load_topics(app_id=settings[0].app_id).topics
        asyncio.run(TopicAdmin(client, replication=1, keep_forever=True).apply(topics))
        workers = [WorkerProcess(s, workdir / f"worker-{i}.log") for i, s in enumerate(settings)]
        try:
            group, joining = workers[:n], workers[n]
            _start_all(group)
            asyncio.run(produce_records(client, online))
            asyncio.run(
                wait_processed(
                    client,
                    settings[0].app_id,
                    [w.url for w in group],
                    ("courier_events", "courier_state_updates"),
                    timeout_s=600,
                )
            )
            result = _throughput(group, client, batch_a, pings)
            result["rebalance"] = _rebalance_pause(group, joining, client, batch_b, pings)
            return result
        finally:
            for worker in workers:
                worker.kill()


def summarize(n: int, pings: int, result: dict[str, Any]) -> dict[str, Any]:
    """The figures of one worker count: rate, CPU per million pings, per stage, pause."""
    per_worker = result["workers"]
    cpu = sum(w["cpu_s"] for w in per_worker)
    stages: dict[str, float] = {}
    for w in per_worker:
        for stage, seconds in w["stage_s"].items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    million = pings / 1e6
    return {
        "workers": n,
        "pings": pings,
        "seconds": result["seconds"],
        "pings_per_s": round(pings / result["seconds"]) if result["seconds"] else None,
        "cpu_s_per_million_pings": round(cpu / million, 2),
        "cpu_s_per_million_pings_per_worker": [round(w["cpu_s"] / million, 2) for w in per_worker],
        "stage_s_per_million_pings": {k: round(v / million, 2) for k, v in sorted(stages.items())},
        "share_of_pings_applied": [round(w["applied"] / pings, 3) for w in per_worker],
        "rebalance_pause_s": result["rebalance"]["pause_s"],
        "rebalance": result["rebalance"],
    }


def run_scaleout(args: argparse.Namespace) -> int:
    """Measure every worker count, print the table, write the JSON; exit code 0."""
    load_before = os.getloadavg()
    online = generate_online(args.couriers, args.seed)
    batch_a = spread_over_gateways(
        generate_pings(args.pings, args.batch, args.couriers, args.seed), args.gateways
    )
    later_ms = START_TS_MS + (args.pings // args.batch + 60) * 1000
    batch_b = [
        replace(r, value=r.value.replace(b'"event_id":"b', b'"event_id":"rb'))
        for r in spread_over_gateways(
            generate_pings(args.pings, args.batch, args.couriers, args.seed + 1, later_ms),
            args.gateways,
        )
    ]
    print(
        f"input: {args.pings} pings of {args.couriers} couriers in records of {args.batch}, "
        f"keyed by {args.gateways} gateways; 8 partitions; one Apache Kafka node per run"
    )
    rows = []
    for n in range(1, args.max_workers + 1):
        workdir = Path(tempfile.mkdtemp(prefix=f"scaleout-{n}-"))
        try:
            result = _phase(n, online, batch_a, batch_b, args.pings, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        rows.append(summarize(n, args.pings, result))
    load_after = os.getloadavg()
    print(
        f"\n{'workers':>7}{'pings/s':>10}{'CPU s/M pings':>15}{'per worker':>24}"
        f"{'pings stage':>13}{'positions':>11}{'join pause s':>14}"
    )
    print("-" * 94)
    for row in rows:
        stages = row["stage_s_per_million_pings"]
        per = ", ".join(f"{v:.0f}" for v in row["cpu_s_per_million_pings_per_worker"])
        print(
            f"{row['workers']:>7}{row['pings_per_s'] or 0:>10,}"
            f"{row['cpu_s_per_million_pings']:>15.1f}"
            f"{per:>24}{stages.get('pings', 0.0):>13.1f}{stages.get('positions', 0.0):>11.1f}"
            f"{row['rebalance_pause_s']:>14.1f}"
        )
    print(
        f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on "
        f"{os.cpu_count()} CPUs (the broker and the workers share them)"
    )
    figures = {
        "rows": rows,
        "batch": args.batch,
        "couriers": args.couriers,
        "gateways": args.gateways,
        "partitions": load_topics()["courier_pings"].partitions,
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(load_after[0], 2),
        "cpus": os.cpu_count(),
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0
