"""`dispatchflow ops`: serve the ops console over a cluster's topics."""

from __future__ import annotations

import argparse
import asyncio
import sys

from dispatchflow.commands import CommandRegistry
from dispatchflow.settings import ENV_PREFIX, setting_help


def _positive(text: str) -> float:
    """A positive number (for argparse)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _ops(args: argparse.Namespace) -> int:
    from console.exceptions import ExceptionRules
    from console.service import OpsOptions, StartError, run_console
    from dispatchflow.settings import load_settings
    from streams.kafka_config import aiokafka_kwargs

    settings = load_settings({"broker_url": args.broker_url} if args.broker_url else {})
    options = OpsOptions(
        client_kwargs=aiokafka_kwargs(settings),
        host=args.host,
        port=args.port,
        worker_urls=tuple(args.worker),
        rules=ExceptionRules(far_m=args.idle_far_m),
        retention_ms=round(args.retention_min * 60_000),
        broker_timeout_s=args.broker_timeout_s,
    )
    try:
        asyncio.run(run_console(options))
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def register(registry: CommandRegistry) -> None:
    """Attach `ops`."""
    ops = registry.add(
        "ops",
        _ops,
        "serve the ops console: a web page and JSON API over every shard's topics, read from the "
        "beginning without joining the workers' group. It shows a live map of couriers, open "
        "orders and merchants, each order's decision history (proposed, committed, released "
        "with the reason; cost terms in minutes, the runner-up, ETA p50/p90, policy and model "
        "versions), exceptions (ready orders without a courier, orders predicted late, idle "
        "couriers far from demand, dead letters by reason) and per-shard KPIs. Broker security "
        f"settings come from the {ENV_PREFIX}* env vars, as for the worker.",
    )
    ops.add_argument(
        "--broker",
        dest="broker_url",
        metavar="HOST:PORT",
        help=setting_help("broker_url", "bootstrap servers host:port[,host:port]"),
    )
    ops.add_argument("--port", type=int, default=8090, help="port to serve on (0: a free one)")
    ops.add_argument("--host", default="127.0.0.1", help="address to serve on")
    ops.add_argument(
        "--worker",
        action="append",
        default=[],
        metavar="URL",
        help="a worker's base URL (repeatable), e.g. http://127.0.0.1:6066: its /metrics give "
        "the tick p99, lag and circuit-breaker counts (shown as n/a without one)",
    )
    ops.add_argument(
        "--idle-far-m",
        type=_positive,
        default=2000.0,
        help="an idle courier farther than this many metres from any demand is an exception",
    )
    ops.add_argument(
        "--retention-min",
        type=_positive,
        default=180.0,
        help="minutes of event time ended orders and offline couriers stay in view",
    )
    ops.add_argument(
        "--broker-timeout-s",
        type=_positive,
        default=15.0,
        help="seconds to wait for the broker at start before giving up",
    )
