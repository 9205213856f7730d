"""`dispatchflow demo`: embedded broker + worker + a synthetic city's events, then the state.

Starts everything it needs, produces a few thousand events (some deliberately invalid), waits
until the worker has committed all of them, prints each shard's state and the dead letters by
reason, and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dispatchflow.settings import BrokerKind, Settings
from simulators.synthetic import CityConfig, SyntheticCity
from streams.broker import EmbeddedBroker, free_loopback_port
from streams.dead_letter_report import count_by_reason, read_dead_letters
from streams.kafka_config import aiokafka_kwargs
from streams.produce import produce_records, wait_caught_up
from streams.topics import TopicAdmin, load_topics
from streams.worker_process import WorkerProcess

#: Topics the worker consumes; the demo waits until all are committed.
CONSUMED_TOPICS = (
    "order_events",
    "merchant_ready",
    "delivery_events",
    "courier_events",
    "courier_pings",
    "courier_positions",
    "courier_sightings",
    "courier_state_updates",
)


def embedded_settings(bootstrap: str, datadir: Path, **overrides: Any) -> Settings:
    """Worker settings for the embedded broker: short group timeouts, no standbys."""
    values: dict[str, Any] = {
        "broker_url": bootstrap,
        "broker_kind": BrokerKind.EMBEDDED,
        "session_timeout_s": 3.0,
        "heartbeat_interval_s": 0.5,
        "table_standby_replicas": 0,
        "replication_factor": 1,
        "datadir": datadir,
        "web_port": free_loopback_port(),
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(**values)


def _print_state(state: dict[str, Any]) -> None:
    header = f"{'shard':<8}{'orders by status':<62}{'couriers':<22}{'positions':>9}"
    print(header)
    print("-" * len(header))
    for shard, info in state["shards"].items():
        orders = ", ".join(f"{k} {v}" for k, v in sorted(info["orders_by_status"].items())) or "-"
        couriers = (
            ", ".join(f"{k} {v}" for k, v in sorted(info["couriers_by_status"].items())) or "-"
        )
        print(f"{shard:<8}{orders:<62}{couriers:<22}{info['positions']:>9}")


def _print_dead_letters(counts: Counter[tuple[str, str]]) -> None:
    print(f"{'source topic':<24}{'reason':<26}{'dead letters':>12}")
    print("-" * 62)
    for (topic, reason), n in sorted(counts.items()):
        print(f"{topic:<24}{reason:<26}{n:>12}")
    print(f"{'total':<50}{sum(counts.values()):>12}")


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo end to end; return the exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="dispatchflow-demo-"))
    config = CityConfig(seed=args.seed, n_couriers=args.couriers, n_orders=args.orders)
    try:
        t0 = time.monotonic()
        with EmbeddedBroker() as broker:
            print(f"[demo] embedded broker at {broker.bootstrap}")
            settings = embedded_settings(broker.bootstrap, workdir / "data")
            client = aiokafka_kwargs(settings)
            topics = load_topics(app_id=settings.app_id)
            asyncio.run(TopicAdmin(client, replication=1).apply(topics.topics))
            print(f"[demo] created {len(topics.topics)} topics from topics.yaml")
            with WorkerProcess(settings, workdir / "worker.log") as worker:
                print(f"[demo] worker ready after {worker.ready_after_s:.1f} s at {worker.url}")
                records = SyntheticCity(config).records()
                invalid = sum(1 for r in records if r.expect_reason)
                n_fixes = sum(
                    r.value.count(b'"courier_id"') for r in records if r.topic == "courier_pings"
                )
                print(
                    f"[demo] producing {len(records)} records ({n_fixes} ping fixes in batches, "
                    f"{invalid} invalid on purpose)"
                )
                asyncio.run(produce_records(client, records))
                asyncio.run(wait_caught_up(client, settings.app_id, CONSUMED_TOPICS, timeout_s=120))
                print("[demo] worker caught up; state of the shards it owns:\n")
                _print_state(worker.get_json("/state"))
                dlq_topics = [t.dead_letter for t in topics.inputs() if t.dead_letter]
                letters = asyncio.run(read_dead_letters(client, dlq_topics))
                print("\n[demo] dead letters by reason:\n")
                _print_dead_letters(count_by_reason(letters))
            print("\n[demo] worker stopped")
        print(f"[demo] broker stopped; done in {time.monotonic() - t0:.1f} s")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
