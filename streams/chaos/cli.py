"""`dispatchflow chaos`: a fault run or an overload run on Apache Kafka, with its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dispatchflow.commands import CommandRegistry
from simulators.city import PRESETS

#: Fault and fuzz counts of a fault run, and of an overload run (which has none by default).
FAULT_DEFAULTS = {"worker_kills": 20, "broker_kills": 3, "zombies": 2, "fuzz": 100_000}
OVERLOAD_DEFAULTS = {"worker_kills": 0, "broker_kills": 0, "zombies": 0, "fuzz": 0}


def _chaos(args: argparse.Namespace) -> int:
    from streams.broker import BrokerStartError
    from streams.chaos import report
    from streams.chaos.run import ChaosOptions, remove_workdir, run_chaos
    from streams.kafka_dist import KafkaDistError

    defaults = OVERLOAD_DEFAULTS if args.overload else FAULT_DEFAULTS
    counts = {k: v if (v := getattr(args, k)) is not None else d for k, d in defaults.items()}
    duration = args.duration_min
    if args.overload and duration is None:
        duration = args.burst_at_min + args.burst_min + 25.0
    options = ChaosOptions(
        seed=args.seed,
        preset=args.preset,
        duration_min=duration,
        workers=args.workers,
        burst_factor=args.burst_factor if args.overload else 1.0,
        burst_at_min=args.burst_at_min,
        burst_min=args.burst_min,
        workdir=Path(args.workdir) if args.workdir else None,
        progress=not args.no_progress,
        **counts,
    )
    name = f"overload-seed{args.seed}" if args.overload else f"chaos-seed{args.seed}"
    out = Path(args.json) if args.json else Path("chaos-results") / f"{name}.json"
    kind = "overload" if args.overload else "fault"
    print(
        f"[chaos] {kind} run, seed {options.seed}: {options.preset}, {options.workers} workers, "
        f"3 Kafka nodes; {counts['worker_kills']} worker kills, {counts['broker_kills']} broker "
        f"kills, {counts['zombies']} zombies, {counts['fuzz']} hostile records"
        + (
            f"; orders x{options.burst_factor:g} for {options.burst_min:g} min"
            if args.overload
            else ""
        )
    )
    try:
        result = run_chaos(options)
    except (BrokerStartError, KafkaDistError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = report.figures(result)
    if args.overload:
        figures.update(report.overload_figures(result))
    report.write_json(figures, out)
    plot = report.plot_timeline(
        result, out.with_suffix(".png"), f"dispatchflow {kind} run, seed {options.seed}"
    )
    report.print_table(figures)
    print(f"\n[chaos] report {out}, timeline {plot}; run folder {result.workdir}")
    failed = report.failures(figures)
    for line in failed:
        print(f"[chaos] FAIL {line}")
    if not failed and not args.workdir:
        remove_workdir(result)
        print("[chaos] passed; run folder removed")
    return 1 if failed else 0


def _bench_scaleout(args: argparse.Namespace) -> int:
    from streams.chaos.scaleout import run_scaleout

    return run_scaleout(args)


def register(registry: CommandRegistry) -> None:
    """Attach `chaos` and `bench scaleout`."""
    chaos = registry.add(
        "chaos",
        _chaos,
        "run a seeded city rush through a three-node Apache Kafka cluster and several workers "
        "while workers and brokers are killed (half the worker restarts with wiped state), "
        "workers are paused past their session timeout (zombies) and hostile records reach every "
        "input topic; then check every output topic against the simulator (lost orders, double "
        "assignments, capacity, commits after an order ended or from a fenced worker, ETA "
        "updates after delivery, every hostile record dead-lettered with its reason and no "
        "other) and the workers' logs (crashes). Prints a table, writes JSON and a PNG "
        "timeline; exits 1 when a figure that must be zero is not. --overload runs a burst of "
        "orders instead",
    )
    chaos.add_argument("--seed", type=int, default=1, help="seeds the city, faults and records")
    chaos.add_argument("--preset", choices=sorted(PRESETS), default="lunch_rush", help="city")
    chaos.add_argument(
        "--duration-min",
        type=float,
        default=None,
        help="shorten the order-placement window to this many minutes (default: the preset's; "
        "--overload: the burst's end plus 25)",
    )
    chaos.add_argument("--workers", type=int, default=3, help="worker processes in the group")
    for flag, key, text in (
        ("--worker-kills", "worker_kills", "SIGKILLs of a worker, restarted 1-20 s later"),
        ("--broker-kills", "broker_kills", "SIGKILLs of a broker, restarted 5-30 s later"),
        ("--zombies", "zombies", "SIGSTOPs of a worker past its session timeout, then SIGCONT"),
        ("--fuzz", "fuzz", "hostile records spread over the input topics"),
    ):
        chaos.add_argument(
            flag,
            type=int,
            default=None,
            help=f"{text} (default {FAULT_DEFAULTS[key]}; with --overload 0)",
        )
    chaos.add_argument(
        "--overload",
        action="store_true",
        help="an overload run: the order rate times --burst-factor for --burst-min minutes",
    )
    chaos.add_argument("--burst-factor", type=float, default=10.0, help="order rate multiplier")
    chaos.add_argument(
        "--burst-at-min", type=float, default=30.0, help="burst start, minutes into the scenario"
    )
    chaos.add_argument("--burst-min", type=float, default=5.0, help="burst length, minutes")
    chaos.add_argument(
        "--json", help="write the figures here (default: chaos-results/<kind>-seed<S>.json)"
    )
    chaos.add_argument(
        "--workdir",
        help="keep the cluster data, worker state and logs in this folder (default: a temporary "
        "one, removed when the run passes)",
    )
    chaos.add_argument("--no-progress", action="store_true", help="no progress bar")

    bench = registry.add(
        "scaleout",
        _bench_scaleout,
        "ping ingest on Apache Kafka with 1, 2 and 3 worker processes over the same partitions: "
        "pings/s in all, CPU seconds per million pings per worker and per stage, and the pause "
        "in ingest while a joining worker makes the group rebalance",
        bench=True,
    )
    bench.add_argument("--pings", type=int, default=600_000, help="pings per measured run")
    bench.add_argument("--batch", type=int, default=500, help="pings per record")
    bench.add_argument("--couriers", type=int, default=5000, help="distinct couriers")
    bench.add_argument("--gateways", type=int, default=64, help="distinct gateway record keys")
    bench.add_argument("--max-workers", type=int, default=3, help="measure 1..this many workers")
    bench.add_argument("--seed", type=int, default=11)
    bench.add_argument("--json", default="bench-results/scaleout.json", help="figures as JSON")
