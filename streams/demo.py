"""`dispatchflow demo`: a simulated lunch rush through the real pipeline, then a report.

Starts the embedded broker and a worker, sends a handful of deliberately invalid records (one
per dead-letter reason), runs the seeded city simulator against the worker through Kafka (the
simulator emits ticks in event time and plays the courier app), checks the decision invariants
over the topics, prints the shard state, dead letters by reason and the KPI table, writes the
report (KPIs as JSON and markdown, PNG plots) to a folder it names, and stops everything it
started. The ops console (`dispatchflow ops`) runs beside the worker unless `--no-ops`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.geo import decode_center
from contracts.topics import TopicsFile, load_topics
from dispatch.live.topic_names import CONSUMED_TOPICS
from dispatchflow.settings import BrokerKind, Settings, load_settings
from simulators.city import PRESETS, compute_kpis, run_simulation, write_report
from simulators.synthetic import bad_records
from streams.broker import EmbeddedBroker, free_loopback_ports
from streams.consistency import check_topics
from streams.dead_letter_report import count_by_reason, read_dead_letters
from streams.kafka_config import aiokafka_kwargs
from streams.ops_process import ops_console
from streams.produce import produce_records, wait_processed
from streams.sim_dispatch import KafkaDispatch
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

#: KPIs the demo's JSON must always carry.
REPORT_KEYS = (
    "orders",
    "delivered",
    "cancelled",
    "expired",
    "open_at_end",
    "on_time_rate",
    "ctod_p50_min",
    "ctod_p90_min",
    "eta_p90_coverage",
    "fallback_rate",
    "fallback_reasons",
    "invariant_violations",
)


#: Consumer-group timings of a local worker, per broker kind. The embedded broker holds a join
#: for half the session timeout, so it gets a short one; Apache Kafka answers joins at once.
_GROUP_TIMINGS = {
    BrokerKind.EMBEDDED: {"session_timeout_s": 3.0, "heartbeat_interval_s": 0.5},
    BrokerKind.KAFKA: {"session_timeout_s": 6.0, "heartbeat_interval_s": 1.0},
}


def local_settings(
    bootstrap: str, datadir: Path, kind: BrokerKind = BrokerKind.EMBEDDED, **overrides: Any
) -> Settings:
    """Worker settings for a broker on this machine: quick group timings, no standbys.

    Other settings come from the environment, as for any command.

    Raises:
        SettingsError: an unknown `DISPATCHFLOW_*` variable or an invalid value (one line).
    """
    web_port, rank_port = free_loopback_ports(2)
    values: dict[str, Any] = {
        "broker_url": bootstrap,
        "broker_kind": kind,
        **_GROUP_TIMINGS[kind],
        "table_standby_replicas": 0,
        "replication_factor": 1,
        "datadir": datadir,
        "web_port": web_port,
        "rank_port": rank_port,
        "log_level": "warning",
    }
    values.update(overrides)
    return load_settings(values)


def _print_state(state: dict[str, Any]) -> None:
    header = f"{'shard':<8}{'orders by status':<52}{'couriers':<24}{'positions':>9}"
    print(header)
    print("-" * len(header))
    for shard, info in state["shards"].items():
        orders = ", ".join(f"{k} {v}" for k, v in sorted(info["orders_by_status"].items())) or "-"
        couriers = (
            ", ".join(f"{k} {v}" for k, v in sorted(info["couriers_by_status"].items())) or "-"
        )
        print(f"{shard:<8}{orders:<52}{couriers:<24}{info['positions']:>9}")


def _print_dead_letters(counts: Counter[tuple[str, str]]) -> None:
    print(f"{'source topic':<24}{'reason':<26}{'dead letters':>12}")
    print("-" * 62)
    for (topic, reason), n in sorted(counts.items()):
        print(f"{topic:<24}{reason:<26}{n:>12}")
    print(f"{'total':<50}{sum(counts.values()):>12}")


def default_report_dir() -> Path:
    """`demo-output/<UTC timestamp>` under the current directory."""
    return Path("demo-output") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo end to end; return the exit code (1 if an invariant was violated)."""
    config = PRESETS[args.preset](seed=args.seed)
    report_dir = Path(args.report_dir) if args.report_dir else default_report_dir()
    workdir = Path(tempfile.mkdtemp(prefix="dispatchflow-demo-"))
    started = time.monotonic()
    kind = BrokerKind.KAFKA if args.broker else BrokerKind.EMBEDDED
    try:
        with _broker(args.broker) as bootstrap:
            settings = local_settings(
                bootstrap,
                workdir / "data",
                kind,
                ticker_enabled=False,
                tick_interval_s=float(config.tick_interval_s),
            )
            client = aiokafka_kwargs(settings)
            topics = load_topics(app_id=settings.app_id)
            created = asyncio.run(_prepare_cluster(client, topics))
            print(f"[demo] created {created} of {len(topics.topics)} topics from topics.yaml")
            with (
                WorkerProcess(settings, workdir / "worker.log") as worker,
                ops_console(args.ops, bootstrap, [worker.url], workdir / "ops.log") as ops,
            ):
                print(f"[demo] worker ready after {worker.ready_after_s:.1f} s at {worker.url}")
                if ops is not None:
                    print(f"[demo] ops console at {ops.url} (live until the demo ends)")
                shard = sorted(_shards_of(config))[0]
                bad = bad_records(shard, *decode_center(shard), config.start_ts_ms)
                asyncio.run(produce_records(client, bad))
                invalid = sum(1 for r in bad if r.expect_reason)
                print(f"[demo] sent {len(bad)} records, {invalid} of them invalid on purpose")
                print(
                    f"[demo] simulating {args.preset} (seed {args.seed}) through Kafka; the "
                    f"simulator ticks every {config.tick_interval_s:g} s of event time and "
                    "plays the courier app"
                )
                dispatch = KafkaDispatch(client, [worker.url])
                try:
                    sim_started = time.monotonic()
                    log = run_simulation(config, dispatch, progress=True)
                    sim_wall_s = time.monotonic() - sim_started
                finally:
                    dispatch.close()
                print(
                    f"[demo] simulated {len(log.inputs)} input records in {sim_wall_s:.0f} s of "
                    f"wall time ({dispatch.steps} lockstep steps)"
                )
                asyncio.run(
                    wait_processed(
                        client, settings.app_id, [worker.url], CONSUMED_TOPICS, timeout_s=120
                    )
                )
                report = asyncio.run(check_topics(client, require_terminal=True))
                skipped = sum(report.skipped_records.values())
                print(
                    "[demo] consistency check over the assignment topics: "
                    f"{report.violation_count} violations ({skipped} records that are not valid "
                    "events skipped)"
                )
                for violation, examples in report.violations.items():
                    for example in examples[:3]:
                        print(f"    {violation}: {example}")
                print("\n[demo] shard state:\n")
                _print_state(worker.get_json("/state"))
                metrics = worker.request("/metrics")[1].decode()
                breaker_ticks = _counter(metrics, "dispatchflow_circuit_breaker_ticks_total")
                dlq = topics.dead_letter_topics()
                print("\n[demo] dead letters by reason:\n")
                _print_dead_letters(count_by_reason(asyncio.run(read_dead_letters(client, dlq))))
            print("\n[demo] worker stopped")
        if not args.broker:
            print("[demo] broker stopped\n")
        files = write_report(
            log,
            report_dir,
            invariant_violations=report.violation_count,
            circuit_breaker_ticks=int(breaker_ticks),
        )
        kpis = compute_kpis(
            log,
            invariant_violations=report.violation_count,
            circuit_breaker_ticks=int(breaker_ticks),
        )
        if args.report_json:
            out = Path(args.report_json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
        print(
            f"\n[demo] report in {report_dir}: {', '.join(sorted(p.name for p in files.values()))}"
        )
        print(f"[demo] done in {time.monotonic() - started:.0f} s")
        return 1 if report.violation_count else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class DemoClusterError(RuntimeError):
    """The cluster the demo was pointed at cannot host it."""


@contextlib.contextmanager
def _broker(external: str | None) -> Iterator[str]:
    """The bootstrap address: `external` as given, or an embedded broker started and stopped."""
    if external:
        print(f"[demo] using the cluster at {external}")
        yield external
        return
    with EmbeddedBroker() as broker:
        print(f"[demo] embedded broker at {broker.bootstrap}")
        yield broker.bootstrap


async def _prepare_cluster(client: dict[str, Any], topics: TopicsFile) -> int:
    """Create the missing topics (replication capped by the brokers there); return how many.

    The demo replays a seeded city whose event ids are fixed, so it needs topics with no
    records in them: a cluster that already holds orders raises `DemoClusterError`.
    """
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()
    admin_topics = TopicAdmin(client, replication=min(3, brokers), keep_forever=True)
    created = await admin_topics.apply(topics.topics)
    consumer = AIOKafkaConsumer(**client)
    await consumer.start()
    try:
        tps = [TopicPartition("order_events", p) for p in range(topics["order_events"].partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    if any(ends.values()):
        msg = (
            f"order_events already holds {sum(ends.values())} records: the demo needs a fresh "
            "cluster (start one with `dispatchflow broker`)"
        )
        raise DemoClusterError(msg)
    limited = await _time_limited(client, [t.name for t in topics.topics if t.name not in created])
    if limited:
        msg = (
            f"topics {', '.join(limited[:3])} keep records for a limited time, but the demo "
            "replays a past day, whose records Kafka would delete: use a fresh cluster"
        )
        raise DemoClusterError(msg)
    return len(created)


async def _time_limited(client: dict[str, Any], names: list[str]) -> list[str]:
    """Those of `names` (existing topics) with a finite `retention.ms`."""
    if not names:
        return []
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        limited = []
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                configs = {entry[0]: entry[1] for entry in resource[4]}
                if (
                    configs.get("cleanup.policy") == "delete"
                    and configs.get("retention.ms") != "-1"
                ):
                    limited.append(str(resource[3]))
        return sorted(limited)
    finally:
        await admin.close()


def _shards_of(config: Any) -> set[str]:
    from contracts.geo import shard_of

    return {shard_of(config.center_lat, config.center_lon, config.shard_precision)}


def _counter(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
