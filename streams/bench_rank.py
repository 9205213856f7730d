"""`dispatchflow bench rank`: `POST /rank` under open-loop load, and what it does to the stream.

For each courier count (`--couriers`, 400 and 2,000 by default) a fresh embedded broker and one
worker (live ticker, default settings) hold one shard whose couriers are all online and ping
every `--ping-every-s` (a gateway batch each second). Then, for each rate (`--rates`), load
generator processes (`streams.rank_load`) send `POST /rank` for `--duration-s` on one fixed
schedule (open loop; latency from each request's due time), while a sampler reads the worker's
`/metrics` every second. Per rate:

* answers/s (200s), latency p50/p90/p99 of the answers, errors (timeouts, refused
  connections, any status but 200 and 503), shed (503) and how fast the 503s came, and the
  worker's count of shed requests by reason (`cap/dl`: at the in-flight limit / past the
  deadline);
* worker CPU (its main process, and the processes it started: the rank server and its ranking
  processes), generator CPU and the generator's own lateness (p99, max), so a generator that
  could not keep its schedule shows;
* the stream side: tick intervals (how many exceeded 1.5 × the tick interval, the longest
  histogram bucket reached, and the cadence: ticks handled against the ticks due in the
  sampled window, 1.0 when none was missed) and the event-time lag of ticks and pings (newest
  event time handled against the wall clock, worst sample);
* the worker's full garbage collections (generation 2) in the phase and the longest one's
  histogram bucket: the event loop stands still for each.

It prints a table, writes the figures as JSON and a PNG plot, and reports the machine's load
average: on a shared machine every figure depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.geo import decode_center, shard_of
from contracts.topics import load_topics
from dispatchflow.settings import BrokerKind, Settings
from simulators.synthetic import Record
from streams.bench_ingest import cpu_seconds, online_record, workdir
from streams.demo import local_settings
from streams.kafka_config import aiokafka_kwargs
from streams.local_broker import local_broker
from streams.produce import produce_records, wait_processed
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

#: The benchmark's shard: a metro area (geohash 4) and the box its couriers and jobs lie in.
SHARD = shard_of(40.7580, -73.9855, 4)
CENTER = decode_center(SHARD)
SPREAD_DEG = (0.06, 0.12)
#: Histogram bucket that is 1.5 × the default tick interval (2 s).
LATE_TICK_S = 3.0


def _points(rng: np.random.Generator, n: int) -> tuple[list[float], list[float]]:
    lat = CENTER[0] + rng.uniform(-SPREAD_DEG[0], SPREAD_DEG[0], n)
    lon = CENTER[1] + rng.uniform(-SPREAD_DEG[1], SPREAD_DEG[1], n)
    return [round(float(v), 6) for v in lat], [round(float(v), 6) for v in lon]


def courier_homes(n_couriers: int, seed: int) -> tuple[list[float], list[float]]:
    """Where each courier of the shard is (it jitters around there when it pings)."""
    return _points(np.random.default_rng(seed), n_couriers)


def onboarding(n_couriers: int, seed: int, ts_ms: int) -> list[Record]:
    """`courier_online` of every courier, and a first ping batch of them all."""
    lat, lon = courier_homes(n_couriers, seed)
    records = [online_record(f"c{c}", lat[c], lon[c], ts_ms) for c in range(n_couriers)]
    records.append(ping_batch(list(range(n_couriers)), lat, lon, ts_ms, 0))
    return records


def ping_batch(
    couriers: list[int], lat: list[float], lon: list[float], ts_ms: int, seq: int
) -> Record:
    """One gateway batch: a fix of each courier in `couriers` at `ts_ms`, near its home."""
    fixes = [
        {
            "courier_id": f"c{c}",
            "lat": round(lat[c] + 1e-4 * ((seq + c) % 7 - 3), 6),
            "lon": round(lon[c] + 1e-4 * ((seq * 3 + c) % 7 - 3), 6),
            "ts_ms": ts_ms,
            "speed_mps": 4.0,
            "heading_deg": 90.0,
            "accuracy_m": 8.0,
        }
        for c in couriers
    ]
    event = {
        "event_id": f"pings-{ts_ms}-{seq}",
        "type": "courier_ping_batch",
        "v": 1,
        "ts_ms": ts_ms,
        "pings": fixes,
    }
    return Record("courier_pings", b"gateway-1", orjson.dumps(event), ts_ms)


def request_bodies(count: int, seed: int) -> list[str]:
    """`/rank` bodies: jobs with a pickup in the shard and a drop-off up to ~2 km away."""
    rng = np.random.default_rng(seed)
    lat, lon = _points(rng, count)
    d = rng.uniform(-0.02, 0.02, (count, 2))
    return [
        orjson.dumps(
            {
                "pickup": {"lat": lat[i], "lon": lon[i]},
                "dropoff": {
                    "lat": round(lat[i] + float(d[i, 0]), 6),
                    "lon": round(lon[i] + float(d[i, 1]), 6),
                },
                "k": 5,
            }
        ).decode()
        for i in range(count)
    ]


class Pinger:
    """Courier pings in live time: every second a gateway batch of the couriers due to ping."""

    def __init__(self, client: dict[str, Any], n_couriers: int, every_s: float, seed: int):
        self.client = client
        self.n = n_couriers
        self.every_s = every_s
        self.lat, self.lon = courier_homes(n_couriers, seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(**self.client, linger_ms=5, acks="all")
        await producer.start()
        try:
            seq = 0
            slices = max(1, round(self.every_s))
            next_s = time.monotonic()
            while not self.stop.is_set():
                ts_ms = time.time_ns() // 1_000_000
                due = list(range(seq % slices, self.n, slices))
                record = ping_batch(due, self.lat, self.lon, ts_ms, seq)
                await producer.send_and_wait(
                    record.topic, record.value, key=record.key, timestamp_ms=ts_ms
                )
                seq += 1
                next_s += 1.0
                await asyncio.sleep(max(0.0, next_s - time.monotonic()))
        finally:
            await producer.stop()

    def __enter__(self) -> Pinger:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@dataclass
class Sample:
    """One read of the worker's `/metrics`: when it came back, and what it said."""

    wall_s: float
    event_ts_s: dict[str, float]
    tick_buckets: dict[float, float]
    full_gc_buckets: dict[float, float]
    shed_by_reason: dict[str, float] = field(default_factory=dict)


def read_metrics(
    body: bytes,
) -> tuple[dict[str, float], dict[float, float], dict[float, float], dict[str, float]]:
    """What a phase needs of `/metrics`.

    That is: newest event time per topic, tick-interval buckets, full-GC pause buckets and
    `POST /rank` requests shed so far by reason. Full GCs are the worker's generation-2
    collections (`dispatchflow_gc_pause_seconds`).
    """
    event_ts: dict[str, float] = {}
    buckets: dict[float, float] = {}
    full_gc: dict[float, float] = {}
    shed: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "dispatchflow_last_event_timestamp_seconds":
            for s in family.samples:
                event_ts[s.labels["topic"]] = s.value
        elif family.name == "dispatchflow_tick_interval_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    buckets[float(s.labels["le"])] = s.value
        elif family.name == "dispatchflow_gc_pause_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket") and s.labels["generation"] == "2":
                    full_gc[float(s.labels["le"])] = s.value
        elif family.name == "dispatchflow_rank_shed":
            for s in family.samples:
                if s.name.endswith("_total"):
                    shed[s.labels["reason"]] = s.value
    return event_ts, buckets, full_gc, shed


def bucket_delta(before: dict[float, float], after: dict[float, float]) -> tuple[int, float | None]:
    """(observations between two reads of a histogram, the bucket its longest one fell in)."""
    delta = {le: n - before.get(le, 0.0) for le, n in after.items()}
    count = delta.get(float("inf"), 0.0)
    reached = [le for le, n in sorted(delta.items()) if n >= count]
    return int(count), (reached[0] if reached and count else None)


@dataclass
class Sampler:
    """Reads the worker's `/metrics` about every second, in a thread of its own."""

    worker: WorkerProcess
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            status, body = self.worker.request("/metrics", timeout_s=60.0)
            if status == 200:
                self.samples.append(Sample(time.time(), *read_metrics(body)))

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        """Sample while the block runs."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join(timeout=90)

    def between(self, start_s: float, end_s: float) -> list[Sample]:
        """Samples that came back within [start_s, end_s]."""
        return [s for s in self.samples if start_s <= s.wall_s <= end_s]


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of `pid` and of its live descendants (the rank server, its rankers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
    family = {pid}
    grown = True
    while grown:
        grown = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grown = True
    descendants = 0.0
    for child in family - {pid}:
        with contextlib.suppress(OSError, IndexError, ValueError):
            descendants += cpu_seconds(child)
    return cpu_seconds(pid), descendants


def run_load(
    worker: WorkerProcess, bodies: list[str], rate: float, duration_s: float, processes: int
) -> tuple[dict[str, Any], float]:
    """Run the generators at `rate` for `duration_s`; (merged result, their CPU seconds)."""
    start_wall = time.time() + 1.0
    spec = {
        "host": worker.settings.web_host,
        "port": worker.settings.rank_port,
        "path": "/rank",
        "bodies": bodies,
        "rate": rate / processes,
        "duration_s": duration_s,
        "start_wall_s": start_wall,
        "timeout_s": 2.0,
        "max_connections": 4000 // processes,
    }
    children = []
    usage_before = os.times()
    for p in range(processes):
        child = subprocess.Popen(
            [sys.executable, "-m", "streams.rank_load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert child.stdin is not None  # noqa: S101 - opened with a pipe just above
        child.stdin.write(orjson.dumps({**spec, "phase_s": p / rate}))
        child.stdin.close()
        children.append(child)
    merged: dict[str, Any] = {"latencies_s": {}, "lateness_s": [], "scheduled": 0}
    for child in children:
        assert child.stdout is not None  # noqa: S101
        out = child.stdout.read()
        child.wait()
        result = orjson.loads(out)
        for status, values in result["latencies_s"].items():
            merged["latencies_s"].setdefault(status, []).extend(values)
        merged["lateness_s"].extend(result["lateness_s"])
        merged["scheduled"] += result["scheduled"]
    usage_after = os.times()
    cpu = (usage_after.children_user - usage_before.children_user) + (
        usage_after.children_system - usage_before.children_system
    )
    return merged, cpu


def wait_responsive(worker: WorkerProcess, timeout_s: float = 120.0) -> None:
    """Return once the worker answers `/healthz` within a second (its backlog drained)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        started = time.monotonic()
        status, _ = worker.request("/healthz", timeout_s=30.0)
        if status == 200 and time.monotonic() - started < 1.0:
            return
    msg = f"worker still unresponsive after {timeout_s} s"
    raise TimeoutError(msg)


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 2) if values else None


def phase_figures(
    couriers: int,
    rate: float,
    duration_s: float,
    load: dict[str, Any],
    cpu: dict[str, float],
    samples: list[Sample],
    before: Sample | None,
    after: Sample | None,
    tick_s: float,
) -> dict[str, Any]:
    """The figures of one rate (see the module docstring); `tick_s`: the tick interval."""
    by_status = {int(k): v for k, v in load["latencies_s"].items()}
    answered = by_status.get(200, [])
    shed = by_status.get(503, [])
    errors = {k: len(v) for k, v in by_status.items() if k not in (200, 503)}
    lateness = load["lateness_s"]
    figures: dict[str, Any] = {
        "couriers": couriers,
        "rate": rate,
        "duration_s": duration_s,
        "scheduled": load["scheduled"],
        "answers_per_s": round(len(answered) / duration_s, 1),
        "p50_ms": _ms(answered, 50),
        "p90_ms": _ms(answered, 90),
        "p99_ms": _ms(answered, 99),
        "max_ms": _ms(answered, 100),
        "errors": sum(errors.values()),
        "errors_by_status": {str(k): n for k, n in sorted(errors.items())},
        "shed": len(shed),
        "shed_p99_ms": _ms(shed, 99),
        "generator_lateness_p99_ms": _ms(lateness, 99),
        "generator_lateness_max_ms": _ms(lateness, 100),
        **{k: round(v, 3) for k, v in cpu.items()},
    }
    for topic, name in (
        ("dispatch_ticks", "tick_lag_max_s"),
        ("courier_positions", "ping_lag_max_s"),
    ):
        lags = [s.wall_s - s.event_ts_s[topic] for s in samples if topic in s.event_ts_s]
        figures[name] = round(max(lags), 2) if lags else None
    figures["metric_samples"] = len(samples)
    if before is not None and after is not None:
        ticks, figures["tick_interval_max_bucket_s"] = bucket_delta(
            before.tick_buckets, after.tick_buckets
        )
        on_time = after.tick_buckets.get(LATE_TICK_S, 0.0) - before.tick_buckets.get(
            LATE_TICK_S, 0.0
        )
        figures["ticks"] = ticks
        figures["ticks_late"] = ticks - int(on_time)
        figures["full_gcs"], figures["full_gc_max_bucket_s"] = bucket_delta(
            before.full_gc_buckets, after.full_gc_buckets
        )
        figures["shed_by_reason"] = {
            reason: int(n - before.shed_by_reason.get(reason, 0.0))
            for reason, n in sorted(after.shed_by_reason.items())
        }
        window_s = after.wall_s - before.wall_s
        figures["tick_cadence"] = round(ticks * tick_s / window_s, 2) if window_s > 0 else None
    return figures


def run_couriers(args: argparse.Namespace, couriers: int) -> list[dict[str, Any]]:
    """Every rate against one fresh worker holding `couriers` online couriers."""
    rows = []
    bodies = request_bodies(1000, args.seed + 1)
    with workdir("bench-rank-") as work, local_broker(BrokerKind.EMBEDDED) as bootstrap:
        settings: Settings = local_settings(bootstrap, work / "data", BrokerKind.EMBEDDED)
        client = aiokafka_kwargs(settings)
        admin = TopicAdmin(client, replication=1, keep_forever=True)
        asyncio.run(admin.apply(load_topics(app_id=settings.app_id).topics))
        asyncio.run(produce_records(client, onboarding(couriers, args.seed, _now_ms())))
        with WorkerProcess(settings, work / "worker.log") as worker:
            asyncio.run(
                wait_processed(
                    client,
                    settings.app_id,
                    [worker.url],
                    ("courier_events", "courier_state_updates", "courier_pings"),
                    timeout_s=300,
                )
            )
            pid = worker.pid
            if pid is None:
                msg = "worker is not running"
                raise RuntimeError(msg)
            with (
                Pinger(client, couriers, args.ping_every_s, args.seed) as _,
                Sampler(worker).running() as sampler,
            ):
                run_load(worker, bodies, args.warmup_rate, args.warmup_s, 1)
                for rate in args.rates:
                    wait_responsive(worker)
                    time.sleep(2.0)  # a couple of samples before the phase
                    before = sampler.samples[-1] if sampler.samples else None
                    cpu0 = process_cpu(pid)
                    start = time.time()
                    load, generator_cpu = run_load(
                        worker, bodies, rate, args.duration_s, args.load_processes
                    )
                    end = time.time()
                    cpu1 = process_cpu(pid)
                    wait_responsive(worker)
                    time.sleep(2.0)  # the sampler's next read covers the phase's last ticks
                    window = sampler.between(start, time.time())
                    after = window[-1] if window else None
                    seconds = end - start
                    cpu = {
                        "worker_cpu_cores": (cpu1[0] - cpu0[0]) / seconds,
                        "rank_processes_cpu_cores": (cpu1[1] - cpu0[1]) / seconds,
                        "generator_cpu_cores": generator_cpu / seconds,
                    }
                    row = phase_figures(
                        couriers,
                        rate,
                        args.duration_s,
                        load,
                        cpu,
                        sampler.between(start, end + 1.0),
                        before,
                        after,
                        settings.tick_interval_s,
                    )
                    row["load_average_1m"] = round(os.getloadavg()[0], 2)
                    print_row(row)
                    rows.append(row)
    return rows


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


HEADER = (
    f"{'couriers':>8}{'rate/s':>8}{'answers/s':>10}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
    f"{'errors':>8}{'shed':>7}{'cap/dl':>11}{'503 p99':>8}{'CPU w':>7}{'CPU r':>7}{'gen lag':>8}"
    f"{'ticks>3s':>9}{'tick max':>9}{'cadence':>8}{'tick lag':>9}{'ping lag':>9}{'full GC':>8}"
    f"{'load':>6}"
)


def _cell(value: Any, width: int, digits: int = 1) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.{digits}f}"
    return f"{value:>{width}}"


def print_row(row: dict[str, Any]) -> None:
    """One line of the table (CPU in cores: the worker's process, the rank server's processes)."""
    late = None if "ticks" not in row else f"{row['ticks_late']}/{row['ticks']}"
    reasons = row.get("shed_by_reason")
    split = (
        None if reasons is None else f"{reasons.get('capacity', 0)}/{reasons.get('deadline', 0)}"
    )
    longest = row.get("full_gc_max_bucket_s")
    gcs = (
        None
        if "full_gcs" not in row
        else f"{row['full_gcs']}" + (f"<{longest * 1000:g}" if longest is not None else "")
    )
    print(
        _cell(row["couriers"], 8)
        + _cell(int(row["rate"]), 8)
        + _cell(row["answers_per_s"], 10)
        + _cell(row["p50_ms"], 8)
        + _cell(row["p90_ms"], 8)
        + _cell(row["p99_ms"], 8)
        + _cell(row["errors"], 8)
        + _cell(row["shed"], 7)
        + _cell(split, 11)
        + _cell(row["shed_p99_ms"], 8)
        + _cell(row["worker_cpu_cores"], 7, 2)
        + _cell(row["rank_processes_cpu_cores"], 7, 2)
        + _cell(row["generator_lateness_p99_ms"], 8)
        + _cell(late, 9)
        + _cell(row.get("tick_interval_max_bucket_s"), 9)
        + _cell(row.get("tick_cadence"), 8, 2)
        + _cell(row["tick_lag_max_s"], 9)
        + _cell(row["ping_lag_max_s"], 9)
        + _cell(gcs, 8)
        + _cell(row["load_average_1m"], 6, 2),
        flush=True,
    )


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Answers/s and latency percentiles against the offered rate, one line per courier count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for couriers in sorted({r["couriers"] for r in rows}):
        mine = [r for r in rows if r["couriers"] == couriers]
        rates = [r["rate"] for r in mine]
        left.plot(rates, [r["answers_per_s"] for r in mine], "o-", label=f"{couriers} answered")
        left.plot(
            rates, [r["shed"] / r["duration_s"] for r in mine], "x--", label=f"{couriers} shed"
        )
        for q, style in (("p50_ms", "o:"), ("p99_ms", "s-")):
            values = [r[q] if r[q] is not None else np.nan for r in mine]
            right.plot(rates, values, style, label=f"{couriers} couriers {q[:3]}")
    left.plot(
        [0, max(r["rate"] for r in rows)], [0, max(r["rate"] for r in rows)], color="grey", lw=0.5
    )
    left.set_xlabel("offered requests/s")
    left.set_ylabel("per second")
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_xlabel("offered requests/s")
    right.set_ylabel("latency of answers (ms, from due time)")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_bench(args: argparse.Namespace) -> int:
    """Run every courier count and rate; print the table; write JSON and the plot."""
    load_before = os.getloadavg()
    print(
        f"one worker, one shard ({SHARD}); couriers online and pinging every "
        f"{args.ping_every_s:g} s; open-loop POST /rank for {args.duration_s:g} s per rate "
        f"from {args.load_processes} generator process(es); load average {load_before[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(HEADER)
    rows: list[dict[str, Any]] = []
    for couriers in args.couriers:
        rows.extend(run_couriers(args, couriers))
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    figures = {
        "label": args.label,
        "runs": rows,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cpus": os.cpu_count(),
        "load_processes": args.load_processes,
        "ping_every_s": args.ping_every_s,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    plot(rows, Path(args.plot), f"POST /rank on one worker ({args.label})")
    print(f"wrote {out} and {args.plot}")
    return 0
