"""Subcommands contributed by `simulators`: `dispatchflow replay mdrp ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dispatch.cli import add_settings_option
from dispatch.policy import POLICIES, PolicyError, policy_by_name, with_settings
from dispatchflow.commands import CommandRegistry, HelpFormatter
from simulators import live_cli
from simulators.mdrp.breakdown import PARTS, breakdown_columns, class_means
from simulators.mdrp.foodwait import (
    BAND_KEYS,
    HISTORY_EDGES,
    PREP_EDGES_MIN,
    band_labels,
    band_means,
)
from simulators.mdrp.instance import MdrpFormatError, find_instances
from simulators.mdrp.metrics import METRIC_KEYS, InstanceMetrics, mean_metrics
from simulators.mdrp.replay import MAX_WORKERS, ReplayResult, ReplayTask, ctod_values, run_tasks
from simulators.plots import (
    ctod_breakdown,
    ctod_distribution,
    food_wait_bands,
    metric_bars,
    per_instance_scatter,
)
from simulators.reports import (
    ReferenceError,
    format_table,
    paper_means,
    per_instance,
    read_reference,
)

REPLAY_HELP = "replay benchmark instances through the dispatch core and report the metrics"
MDRP_HELP = (
    "Replay Grubhub MDRP instances with our policy and a baseline side by side: simulate "
    "every instance under the benchmark's rules, check each solution with the benchmark's "
    "validity conditions, print the mean metrics beside the paper's published means, and "
    "write PNG plots, JSON metrics and (optionally) benchmark-format solution files."
)


def register(registry: CommandRegistry) -> None:
    """Attach this package's subcommands to `registry` (`replay mdrp`, `bench live`)."""
    live_cli.register(registry)
    replay = registry.add("replay", _replay_usage, REPLAY_HELP)
    kinds = replay.add_subparsers(title="benchmarks", metavar="BENCHMARK")
    mdrp = kinds.add_parser(
        "mdrp",
        help="Grubhub Meal Delivery Routing Problem instances",
        description=MDRP_HELP,
        formatter_class=HelpFormatter,
    )
    mdrp.set_defaults(handler=replay_mdrp)
    mdrp.add_argument(
        "paths", nargs="+", metavar="PATH", help="an instance directory or a parent of many"
    )
    mdrp.add_argument(
        "--policy", default="default", help=f"policy to evaluate ({', '.join(sorted(POLICIES))})"
    )
    add_settings_option(mdrp)
    mdrp.add_argument(
        "--baseline",
        default="greedy",
        help="policy reported beside it ('none' to skip)",
    )
    mdrp.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="write per-instance and mean metrics of --policy here (the baseline's go to "
        "OUT's name with .<baseline> before the suffix)",
    )
    mdrp.add_argument(
        "--solutions",
        type=Path,
        default=None,
        metavar="DIR",
        help="write DIR/<instance>/solution_info_{assignments,orders,couriers}.txt for --policy",
    )
    mdrp.add_argument(
        "--plots", type=Path, default=Path("reports/mdrp"), metavar="DIR", help="PNG plots go here"
    )
    mdrp.add_argument(
        "--shared",
        type=Path,
        default=Path("../shared"),
        help="shared directory holding benchmarks/mdrp/published_reference.csv",
    )
    mdrp.add_argument(
        "--workers",
        type=int,
        default=MAX_WORKERS,
        help=f"worker processes (at most {MAX_WORKERS})",
    )
    mdrp.add_argument("--tick-min", type=int, default=1, help="minutes between dispatch ticks")
    mdrp.add_argument(
        "--foresight-min",
        type=int,
        default=0,
        metavar="N",
        help="diagnostic outside the benchmark's rules: decide() also sees orders N minutes "
        "before they are placed (nothing is assigned before placement; a job for a future order "
        "moves its idle courier to the restaurant), measuring what knowing the future is worth",
    )
    mdrp.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _replay_usage(args: argparse.Namespace) -> int:
    print("usage: dispatchflow replay mdrp PATH... (see --help)", file=sys.stderr)
    return 2


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def replay_mdrp(args: argparse.Namespace) -> int:
    """Run `dispatchflow replay mdrp`; returns 0 when every solution of --policy is valid."""
    try:
        instances = find_instances(args.paths)
        policies = [with_settings(policy_by_name(args.policy), args.settings)]
        if args.baseline != "none":
            policies.append(policy_by_name(args.baseline))
        reference = read_reference(args.shared)
    except (MdrpFormatError, PolicyError, ReferenceError) as error:
        return _error(str(error))
    if len({p.name for p in policies}) < len(policies):
        return _error("--baseline is the evaluated policy itself: name another, 'none', or --set")
    if args.tick_min < 1 or args.workers < 1:
        return _error("--tick-min and --workers must be positive")
    if args.foresight_min < 0:
        return _error("--foresight-min must be >= 0")
    if args.foresight_min:
        print(
            f"diagnostic: decide() sees orders {args.foresight_min} min before placement;"
            " these are not benchmark results",
            file=sys.stderr,
        )
    main = policies[0].name
    tasks = [
        ReplayTask(
            instance_dir=str(path),
            policy=policy,
            tick_min=args.tick_min,
            solutions_dir=str(args.solutions) if (args.solutions and policy.name == main) else None,
            foresight_min=args.foresight_min,
        )
        for path in instances
        for policy in policies
    ]
    try:
        results = run_tasks(tasks, workers=args.workers, progress=not args.no_progress)
    except MdrpFormatError as error:
        return _error(str(error))
    by_policy: dict[str, list[ReplayResult]] = {p.name: [] for p in policies}
    for result in results:
        by_policy[result.policy].append(result)
    by_class = {name: class_means(r.breakdown for r in rows) for name, rows in by_policy.items()}
    bands = _food_wait_bands(by_policy)
    _print_report(by_policy, by_class, bands, reference, args.foresight_min)
    if args.json is not None:
        for name, rows in by_policy.items():
            path = (
                args.json if name == main else args.json.with_suffix(f".{name}{args.json.suffix}")
            )
            _write_json(path, [r.metrics for r in rows])
            print(f"wrote {path}")
    # With foresight every series name carries it, so the plots are not taken for results.
    tag = f" (sees {args.foresight_min} min ahead)" if args.foresight_min else ""
    _write_plots(
        {name + tag: rows for name, rows in by_policy.items()},
        {name + tag: means for name, means in by_class.items()},
        {grouping: {name + tag: m for name, m in per.items()} for grouping, per in bands.items()},
        main + tag,
        args.plots,
    )
    invalid = [r for r in by_policy[main] if not r.metrics.valid]
    for r in invalid:
        print(f"INVALID {r.metrics.name}: {'; '.join(r.violations[:3])}", file=sys.stderr)
    return 1 if invalid else 0


def _write_json(path: Path, rows: list[InstanceMetrics]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"instances": [r.as_dict() for r in rows], "mean": mean_metrics(rows)}
    path.write_text(json.dumps(payload, indent=2) + "\n")


#: Food-waiting groupings: title, band labels and the `ReplayResult` field holding them.
_GROUPINGS = {
    "preparation time (min)": (band_labels(PREP_EDGES_MIN), "by_prep"),
    "merchant's earlier orders that day": (band_labels(HISTORY_EDGES), "by_history"),
}


def _food_wait_bands(
    by_policy: dict[str, list[ReplayResult]],
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Per grouping, per policy: `band_means` of its instances."""
    return {
        grouping: {
            name: band_means((getattr(r, field) for r in rows), labels)
            for name, rows in by_policy.items()
        }
        for grouping, (labels, field) in _GROUPINGS.items()
    }


def _print_report(
    by_policy: dict[str, list[ReplayResult]],
    by_class: dict[str, dict[str, dict[str, float]]],
    bands: dict[str, dict[str, dict[str, dict[str, float]]]],
    reference: list,
    foresight_min: int = 0,
) -> None:
    columns: dict[str, dict[str, object]] = {}
    for name, rows in by_policy.items():
        means = mean_metrics([r.metrics for r in rows])
        means["valid"] = f"{sum(r.metrics.valid for r in rows)}/{len(rows)}"
        columns[name] = means
    columns["paper (Reyes 2018 T17)"] = dict(paper_means(reference))
    n = len(next(iter(by_policy.values())))
    seen = f", orders seen {foresight_min} min early (diagnostic)" if foresight_min else ""
    print(
        format_table(
            f"MDRP mean over {n} instances (perfect ready times{seen})",
            [*METRIC_KEYS, "valid"],
            columns,
        )
    )
    heuristic = per_instance(reference, "Table 4", exact=False)
    exact = per_instance(reference, "Table 4", exact=True)
    names = sorted(set(heuristic) & {r.metrics.name for r in next(iter(by_policy.values()))})
    if names:
        subset: dict[str, dict[str, object]] = {}
        for name, rows in by_policy.items():
            chosen = [r.metrics for r in rows if r.metrics.name in names]
            subset[name] = {
                k: float(np.mean([getattr(m, k) for m in chosen]))
                for k in ("ctod_mean", "rtop_mean")
            }
        subset["paper heuristic (T4)"] = {
            k: float(np.mean([heuristic[i][k] for i in names])) for k in ("ctod_mean", "rtop_mean")
        }
        subset["clairvoyant exact (T4)"] = {
            k: float(np.mean([exact[i][k] for i in names])) for k in ("ctod_mean", "rtop_mean")
        }
        print()
        print(
            format_table(
                f"Mean over the {len(names)} Table 4 instances", ["ctod_mean", "rtop_mean"], subset
            )
        )
    for name, classes in by_class.items():
        labelled = {f"{label} ({int(v['instances'])})": v for label, v in classes.items()}
        print()
        print(
            format_table(
                f"{name}: where click-to-door minutes go (class (instances); per delivered"
                " order, then mean over instances)",
                list(labelled),
                breakdown_columns(labelled),
                digits=3,
            )
        )
    for grouping, per_policy in bands.items():
        for name, band_rows in per_policy.items():
            print()
            print(
                format_table(
                    f"{name}: food waiting by {grouping} (share of delivered orders; minutes"
                    " per delivered order each band adds to the mean, then mean over instances)",
                    list(band_rows),
                    breakdown_columns(band_rows, BAND_KEYS),
                    digits=3,
                )
            )
    print()
    for name, rows in by_policy.items():
        ticks = sum(r.ticks for r in rows)
        seconds = sum(r.decide_seconds for r in rows)
        rejected = sum(r.rejected for r in rows)
        fallback = sum(r.fallback_ticks for r in rows)
        print(
            f"{name}: {ticks} ticks, decide() mean {1000 * seconds / max(ticks, 1):.2f} ms,"
            f" rejected decisions {rejected}, circuit-breaker ticks {fallback}"
        )


def _write_plots(
    by_policy: dict[str, list[ReplayResult]],
    by_class: dict[str, dict[str, dict[str, float]]],
    bands: dict[str, dict[str, dict[str, dict[str, float]]]],
    main: str,
    folder: Path,
) -> None:
    values = {name: ctod_values(rows) for name, rows in by_policy.items()}
    written = [ctod_distribution(values, folder / "ctod_distribution.png")]
    means = {name: mean_metrics([r.metrics for r in rows]) for name, rows in by_policy.items()}
    written.append(
        metric_bars(
            {
                n: {k: float(v) for k, v in m.items() if isinstance(v, float)}
                for n, m in means.items()
            },
            ["ctod_mean", "ctod_p90", "rtop_mean", "undelivered_pct", "cost_per_order"],
            folder / "mean_metrics.png",
        )
    )
    written.append(ctod_breakdown(by_class, PARTS, folder / "ctod_breakdown.png"))
    written.append(food_wait_bands(bands, folder / "food_wait_bands.png"))
    others = [n for n in by_policy if n != main]
    if others:
        base = others[0]
        ours = {r.metrics.name: r.metrics.ctod_mean for r in by_policy[main]}
        theirs = {r.metrics.name: r.metrics.ctod_mean for r in by_policy[base]}
        common = sorted(set(ours) & set(theirs))
        written.append(
            per_instance_scatter(
                [ours[i] for i in common],
                [theirs[i] for i in common],
                main,
                base,
                folder / "ctod_per_instance.png",
            )
        )
    for path in written:
        print(f"wrote {path}")
