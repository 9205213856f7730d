"""`dispatchflow bench live`: the live benchmark's command line (see `simulators.live_bench`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from dispatchflow.commands import CommandRegistry
from simulators.city import PRESETS
from simulators.live_bench import (
    METRICS,
    ROW_KEYS,
    BenchPlan,
    live_bench,
    means,
    parse_seeds,
    prep_floor,
    table,
)
from simulators.plots import seed_bars

HELP = (
    "full city days through the worker core in process, for each evaluated seed under the "
    "dispatch variants fixed (15-minute prep), merchant (the merchant's estimates) and learned "
    "(prep model, live travel legs, priced declines; models trained in rounds on the training "
    "seeds' days only); writes one JSON row per seed and variant, prints the means and plots them"
)


def register(registry: CommandRegistry) -> None:
    """Attach `bench live` to `registry`."""
    p = registry.add("live", _bench_live, HELP, bench=True)
    p.add_argument(
        "--seeds", required=True, help="evaluated city seeds: comma-separated, ranges like 1-5"
    )
    p.add_argument(
        "--train-seeds",
        required=True,
        help="training city seeds (never evaluated): comma-separated, ranges like 101-108",
    )
    p.add_argument("--json", type=Path, required=True, metavar="OUT", help="rows as a JSON list")
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="PNG of the metrics by variant (default: OUT with .png)",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="lunch_rush", help="the city")
    p.add_argument(
        "--rounds", type=int, default=2, help="training rounds (1: models of the merchant days)"
    )
    p.add_argument("--workers", type=int, default=2, help="city days run at once (processes)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where event logs and the model registry go (default: a temporary folder)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _bench_live(args: argparse.Namespace) -> int:
    try:
        seeds = parse_seeds(args.seeds)
        train_seeds = parse_seeds(args.train_seeds)
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            plan = BenchPlan(
                seeds,
                train_seeds,
                args.workdir or Path(tmp),
                preset=args.preset,
                rounds=args.rounds,
                workers=args.workers,
            )
            rows = live_bench(plan, progress=not args.no_progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([{k: r[k] for k in ROW_KEYS} for r in rows], indent=2))
    averages = means(rows)
    print(
        f"means over evaluated seeds {','.join(map(str, seeds))} "
        f"(models trained on seeds {','.join(map(str, train_seeds))} only):\n"
    )
    print(table(averages))
    floor = prep_floor([PRESETS[args.preset](seed) for seed in seeds])
    print(
        f"\nfloor: the food's ready time predicted at placement from each kitchen's true median "
        f"and slowdown (known only to the simulator) misses by {floor.p50_abs_err_min:.2f} min "
        f"(p50) and {floor.p90_abs_err_min:.2f} min (p90) over {floor.orders} orders"
    )
    plot = args.plot or args.json.with_suffix(".png")
    seed_bars(
        rows,
        METRICS,
        plot,
        f"{args.preset}: seeds {','.join(map(str, seeds))} (bars: means, dots: seeds)",
    )
    print(f"\nwrote {args.json} and {plot}")
    return 0
