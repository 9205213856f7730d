"""Subcommands contributed by `dispatch`: `dispatchflow bench dispatch`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from dispatch.bench import LatencyRow, TickRun, sweep
from dispatch.policy import POLICIES, PolicyError, policy_by_name, with_settings
from dispatchflow.commands import CommandRegistry

BENCH_HELP = (
    "Tick latency of decide() on rolling synthetic shards: for each open-order count, a shard "
    "of that many open orders and the given couriers is ticked (decisions applied, orders "
    "refilled) and each tick's decide() is timed. Prints p50/p99 (wall clock and CPU) and "
    "writes JSON rows {orders, couriers, p50_ms, p99_ms} and a PNG plot."
)


def register(registry: CommandRegistry) -> None:
    """Attach this package's subcommands to `registry`."""
    parser = registry.add("dispatch", bench_dispatch, BENCH_HELP, bench=True)
    parser.add_argument(
        "--orders",
        type=int,
        nargs="+",
        default=[100, 250, 500, 1000, 2000],
        help="open orders per shard",
    )
    parser.add_argument("--couriers", type=int, default=5000, help="couriers per shard")
    parser.add_argument(
        "--policy", default="default", help=f"policy ({', '.join(sorted(POLICIES))})"
    )
    add_settings_option(parser)
    parser.add_argument("--ticks", type=int, default=60, help="measured ticks per size")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured ticks first")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic shards")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench-results/dispatch.json"),
        metavar="OUT",
        help="where the JSON rows go",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("bench-results/dispatch_latency.png"),
        help="where the PNG plot goes",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """Add `--set FIELD=VALUE` (repeatable, into `args.settings`) changing fields of --policy."""
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one field of --policy, e.g. --set hold_cost=45 (repeatable; the fields "
        "are those of dispatch.policy.Policy); results are named after the variant, "
        "e.g. default[hold_cost=45]",
    )


def bench_dispatch(args: argparse.Namespace) -> int:
    """Run `dispatchflow bench dispatch`."""
    try:
        policy = with_settings(policy_by_name(args.policy), args.settings)
    except PolicyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if min(args.orders) < 1 or args.couriers < 1 or args.ticks < 1 or args.warmup < 0:
        print("error: --orders, --couriers and --ticks must be positive", file=sys.stderr)
        return 2
    total = len(args.orders) * (args.ticks + args.warmup)
    bar = tqdm(total=total, desc="bench dispatch", unit="tick", disable=args.no_progress)
    try:
        rows = sweep(
            args.orders,
            args.couriers,
            policy,
            TickRun(
                seed=args.seed,
                warmup=args.warmup,
                ticks=args.ticks,
                wall_clock=time.perf_counter,
                cpu_clock=time.thread_time,
                on_tick=bar.update,
            ),
        )
    finally:
        bar.close()
    _print_table(rows, policy.name)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([r.as_json() for r in rows], indent=2) + "\n")
    print(f"wrote {args.json}")
    _plot(rows, args.plot)
    print(f"wrote {args.plot}")
    return 0


def _print_table(rows: list[LatencyRow], policy: str) -> None:
    header = (
        f"{'orders':>7} {'couriers':>8} {'p50_ms':>8} {'p99_ms':>8} {'max_ms':>8}"
        f" {'cpu_p50':>8} {'cpu_p99':>8} {'commits':>8} {'fallback':>8}"
    )
    print(f"decide() tick latency, policy {policy!r}, {rows[0].ticks} measured ticks per size")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.orders:>7} {r.couriers:>8} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f}"
            f" {r.cpu_p50_ms:>8.2f} {r.cpu_p99_ms:>8.2f} {r.commits_per_tick:>8.1f}"
            f" {r.fallback_ticks:>8d}"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-minute load average while measuring: {load:.2f} on {os.cpu_count()} cores)")


def _plot(rows: list[LatencyRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    orders = [r.orders for r in rows]
    ax.plot(orders, [r.p50_ms for r in rows], marker="o", label="p50 (wall)")
    ax.plot(orders, [r.p99_ms for r in rows], marker="o", label="p99 (wall)")
    ax.plot(orders, [r.cpu_p99_ms for r in rows], marker=".", linestyle=":", label="p99 (CPU)")
    ax.axhline(50, color="grey", linestyle="--", label="50 ms budget")
    ax.set_xlabel(f"open orders ({rows[0].couriers} couriers)")
    ax.set_ylabel("decide() per tick (ms)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
