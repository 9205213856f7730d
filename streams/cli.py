"""Subcommands that run or manage the stream worker: `broker`, `topics`, `worker`, `demo`."""

from __future__ import annotations

import argparse
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
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        broker = EmbeddedBroker(port=args.port).start()
    except BrokerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"embedded broker ready at {broker.bootstrap} (pid {broker.pid}); Ctrl+C stops it")
        sys.stdout.flush()
        stop.wait()
    finally:
        broker.stop()
        print("embedded broker stopped")
    return 0


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
    worker.execute_from_commandline()  # exits the process
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    try:
        return run_demo(args)
    except BrokerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


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


def register(registry: CommandRegistry) -> None:
    """Attach `broker`, `topics`, `worker` and `demo`."""
    broker = registry.add(
        "broker",
        _broker,
        "run the embedded Kafka-compatible broker (memory storage) until Ctrl+C or SIGTERM",
    )
    broker.add_argument("--port", type=int, default=None, help="port (default: a free one)")

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
        "start the embedded broker and a worker, run a simulated lunch rush through them (plus a "
        "few invalid records), check the decision invariants, print shard state, dead letters and "
        "KPIs, write a report with plots, and stop everything",
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
