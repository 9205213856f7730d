"""`dispatchflow bench ingest`: pings/s of our worker and of a plain loop, on the same input.

Each phase starts a fresh broker (`--broker-kind`: the embedded one by default, or Apache Kafka),
produces the generated pings up front, then lets the consumer under test drain them and times it
from its first applied fix to its last. Phases:

* ours, batched: the worker (Faust) on `courier_pings` records of `--batch` fixes each;
* plain, batched: `streams.bench_plain` on the same records;
* ours, one ping per record, on `--single-pings` records.

Figures are wall-clock pings/s plus CPU time per ping of the consumer process, and the machine's
load average, because on a shared machine the wall-clock figure depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tqdm import tqdm

from contracts.topics import load_topics
from dispatchflow.settings import BrokerKind
from simulators.synthetic import Record
from streams.demo import local_settings
from streams.kafka_config import aiokafka_kwargs
from streams.local_broker import local_broker
from streams.produce import produce_records, wait_processed
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

_APPLIED = re.compile(rb"^dispatchflow_positions_applied_total ([0-9.e+]+)", re.M)
START_TS_MS = 1_795_000_000_000


def _homes(
    rng: np.random.Generator, n_couriers: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return (
        40.7580 + rng.uniform(-0.08, 0.08, n_couriers),
        -73.9855 + rng.uniform(-0.08, 0.08, n_couriers),
    )


def generate_online(n_couriers: int, seed: int, ts_ms: int = START_TS_MS - 1000) -> list[Record]:
    """`courier_online` of each courier of `generate_pings(..., seed)`, at its home position.

    Couriers who ping are online in a marketplace; their shard holds them, so their fixes are
    plain position updates (no sightings for the directory).
    """
    home_lat, home_lon = _homes(np.random.default_rng(seed), n_couriers)
    return [
        online_record(f"c{c}", float(home_lat[c]), float(home_lon[c]), ts_ms)
        for c in range(n_couriers)
    ]


def online_record(courier_id: str, lat: float, lon: float, ts_ms: int) -> Record:
    """A `courier_events` record: `courier_id` online at (`lat`, `lon`), a bike for two orders."""
    event = {
        "event_id": f"online-{courier_id}",
        "type": "courier_online",
        "v": 1,
        "ts_ms": ts_ms,
        "courier_id": courier_id,
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "capacity": 2,
        "vehicle": "bike",
    }
    return Record("courier_events", courier_id.encode(), orjson.dumps(event), ts_ms)


def generate_pings(
    n_pings: int,
    batch: int,
    n_couriers: int,
    seed: int,
    start_ts_ms: int = START_TS_MS,
    id_prefix: str = "",
) -> list[Record]:
    """`n_pings` fixes of `n_couriers` couriers in one metro, `batch` fixes per record.

    Event ids are `id_prefix` plus the record's index: calls that must not be taken for
    redeliveries of each other (the worker dead-letters a reused id) need distinct prefixes.
    """
    rng = np.random.default_rng(seed)
    home_lat, home_lon = _homes(rng, n_couriers)
    records = []
    for b in range(n_pings // batch):
        couriers = rng.integers(0, n_couriers, batch)
        jitter = rng.normal(0, 2e-4, (batch, 2))
        ts = start_ts_ms + b * 1000
        fixes = [
            {
                "courier_id": f"c{c}",
                "lat": round(float(home_lat[c] + jitter[j, 0]), 6),
                "lon": round(float(home_lon[c] + jitter[j, 1]), 6),
                "ts_ms": ts + j,
                "speed_mps": 4.5,
                "heading_deg": 90.0,
                "accuracy_m": 8.0,
            }
            for j, c in enumerate(couriers.tolist())
        ]
        if batch == 1:
            fix: dict[str, Any] = fixes[0]
            event = {"event_id": f"{id_prefix}p{b}", "type": "courier_ping", "v": 1, **fix}
            records.append(
                Record("courier_pings", fix["courier_id"].encode(), orjson.dumps(event), ts)
            )
        else:
            event = {
                "event_id": f"{id_prefix}b{b}",
                "type": "courier_ping_batch",
                "v": 1,
                "ts_ms": ts + batch,
                "pings": fixes,
            }
            records.append(Record("courier_pings", b"gateway-1", orjson.dumps(event), ts + batch))
    return records


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure_worker(
    worker: WorkerProcess, expected: int, progress: Callable[[int], None]
) -> dict[str, Any]:
    """Poll the worker's metrics until `expected` fixes are applied; time first to last."""
    pid = worker.pid
    if pid is None:
        msg = "worker is not running"
        raise RuntimeError(msg)
    started_s = cpu0 = None
    first = 0.0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        _, body = worker.request("/metrics")
        match = _APPLIED.search(body)
        applied = float(match.group(1)) if match else 0.0
        now = time.perf_counter()
        if applied > 0 and started_s is None:
            started_s, cpu0, first = now, cpu_seconds(pid), applied
        progress(int(applied))
        if applied >= expected and started_s is not None and cpu0 is not None:
            seconds = now - started_s
            cpu = cpu_seconds(pid) - cpu0
            counted = expected - first
            return {"pings": counted, "seconds": seconds, "cpu_seconds": cpu}
        time.sleep(0.1)  # each scrape costs the worker CPU; keep them rare
    msg = f"worker did not apply {expected} fixes within 900 s"
    raise TimeoutError(msg)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory, removed after the phase; kept (and named) when the phase fails."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        print(f"bench phase failed; its logs and data are kept in {path}", file=sys.stderr)
        raise
    shutil.rmtree(path, ignore_errors=True)


def _phase_ours(
    records: list[Record], expected: int, label: str, online: list[Record], kind: BrokerKind
) -> dict[str, Any]:
    with workdir("bench-ingest-") as work, local_broker(kind, work / "kafka") as bootstrap:
        settings = local_settings(bootstrap, work / "data", kind)
        client = aiokafka_kwargs(settings)
        admin = TopicAdmin(client, replication=1, keep_forever=True)
        asyncio.run(admin.apply(load_topics(app_id=settings.app_id).topics))
        # Couriers come online first (a worker run that ends once they are all placed), so
        # the measured run is steady-state ingest: pings of couriers their shards hold.
        asyncio.run(produce_records(client, online))
        with WorkerProcess(settings, work / "onboarding.log") as onboarding:
            asyncio.run(
                wait_processed(
                    client,
                    settings.app_id,
                    [onboarding.url],
                    ("courier_events", "courier_state_updates"),
                    timeout_s=300,
                )
            )
        asyncio.run(produce_records(client, records))
        with (
            WorkerProcess(settings, work / "worker.log") as worker,
            tqdm(total=expected, desc=label, unit="ping", leave=False) as bar,
        ):
            result = _measure_worker(worker, expected, lambda n: bar.update(max(0, n - bar.n)))
    return result


def _phase_plain(records: list[Record], expected: int, kind: BrokerKind) -> dict[str, Any]:
    with workdir("bench-plain-") as work, local_broker(kind, work / "kafka") as bootstrap:
        client = {"bootstrap_servers": bootstrap}
        kept = {"cleanup.policy": "delete", "retention.ms": "-1"}

        async def create() -> None:
            admin = AIOKafkaAdminClient(**client)
            await admin.start()
            try:
                await admin.create_topics(
                    [
                        NewTopic("courier_pings", 8, 1, topic_configs=kept),
                        NewTopic(
                            "bench_plain_changelog",
                            8,
                            1,
                            topic_configs={"cleanup.policy": "compact"},
                        ),
                    ]
                )
            finally:
                await admin.close()

        asyncio.run(create())
        asyncio.run(produce_records(client, records))
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.bench_plain",
                "--bootstrap",
                bootstrap,
                "--expected",
                str(expected),
                "--datadir",
                str(work / "plain-db"),
            ],
            check=False,
            capture_output=True,
            timeout=900,
        )
    if output.returncode != 0:
        lines = output.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise SystemExit(f"bench ingest: the plain loop failed: {lines[-1]}")
    result: dict[str, Any] = json.loads(output.stdout)
    return result


def _rate(result: dict[str, Any]) -> tuple[float, float]:
    return result["pings"] / result["seconds"], result["cpu_seconds"] / result["pings"] * 1e6


def run_bench(args: argparse.Namespace) -> int:
    """Run every phase, print the table, write the JSON; exit code 0."""
    load_before = os.getloadavg()
    batched = generate_pings(args.pings, args.batch, args.couriers, args.seed)
    singles = generate_pings(args.single_pings, 1, args.couriers, args.seed + 1)
    print(
        f"input: {args.pings} pings in records of {args.batch} (a gateway's one-second batch), "
        f"{args.couriers} couriers online; {args.single_pings} pings one per record"
    )
    kind = BrokerKind(args.broker_kind)
    print(f"broker: {kind.value} (a fresh one per phase)")
    ours = _phase_ours(
        batched, args.pings, "ours, batched", generate_online(args.couriers, args.seed), kind
    )
    plain = _phase_plain(batched, args.pings, kind)
    ours_single = _phase_ours(
        singles,
        args.single_pings,
        "ours, one per record",
        generate_online(args.couriers, args.seed + 1),
        kind,
    )
    load_after = os.getloadavg()
    rows = [
        ("dispatchflow worker", args.batch, *_rate(ours)),
        ("plain aiokafka + rocksdict + changelog", args.batch, *_rate(plain)),
        ("dispatchflow worker", 1, *_rate(ours_single)),
    ]
    print(f"\n{'consumer':<40}{'pings/record':>13}{'pings/s':>12}{'CPU µs/ping':>13}")
    print("-" * 78)
    for name, batch, rate, cpu in rows:
        print(f"{name:<40}{batch:>13}{rate:>12,.0f}{cpu:>13.1f}")
    print(
        f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"on {os.cpu_count()} CPUs (the broker shares them)"
    )
    figures = {
        "ours_pings_per_s": round(rows[0][2]),
        "plain_pings_per_s": round(rows[1][2]),
        "ours_single_pings_per_s": round(rows[2][2]),
        "batch_size": args.batch,
        "pings": args.pings,
        "single_pings": args.single_pings,
        "couriers": args.couriers,
        "ours_cpu_us_per_ping": round(rows[0][3], 2),
        "plain_cpu_us_per_ping": round(rows[1][3], 2),
        "ours_single_cpu_us_per_ping": round(rows[2][3], 2),
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(load_after[0], 2),
        "cpus": os.cpu_count(),
        "broker_kind": kind.value,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0
