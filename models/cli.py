"""Subcommands contributed by `models`: train, evaluate, models, `eta bench` and `bench eta`.

`dispatchflow models` lists a registry, names a version to run in shadow beside the served set,
or promotes one. A worker re-reads its registry (`model_dir`) every `model_refresh_s` seconds:
a candidate runs in shadow from the next re-read (its errors exported as
`dispatchflow_model_abs_error_seconds{role="candidate"}`), a promoted version serves from then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dispatchflow.commands import CommandRegistry, HelpFormatter

_DATASET_HELP = (
    "input format: `doordash` (historical_data-style deliveries → total click-to-door model, "
    "base = DoorDash's order-place + drive estimates) or `nyc` (taxi trips → travel-leg model, "
    "base = straight line × detour ÷ speed)"
)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _known_errors() -> tuple[type[Exception], ...]:
    from features.offline import EventLogError
    from models.calibration import CalibrationError
    from models.datasets import DatasetError
    from models.model_files import ModelLoadError
    from models.registry import RegistryError

    return (DatasetError, CalibrationError, ModelLoadError, RegistryError, EventLogError, OSError)


def _print_table(rows: list[dict[str, Any]]) -> None:
    keys = [
        "dataset",
        "n_test",
        "base_mae_min",
        "base_offset_mae_min",
        "mae_min",
        "p50_abs_err_min",
        "p90_abs_err_min",
        "p90_coverage",
        "fallback_rate",
        "predict_pairs_per_s",
    ]
    print("  ".join(f"{k:>20}" for k in keys))
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k, "")
            cells.append(f"{v:>20.4f}" if isinstance(v, float) else f"{v!s:>20}")
        print("  ".join(cells))


def _print_selection(rows: list[dict[str, Any]]) -> None:
    from models.selection import describe_selection

    for r in rows:
        sel = r.get("calibration_selection")
        if isinstance(sel, dict):
            print(f"{r.get('dataset', '')}: {describe_selection(sel)}")
        if "p90_coverage_static" in r:
            print(
                f"{r.get('dataset', '')}: p90 coverage served {r['p90_coverage']:.4f} "
                f"({r.get('p90_coverage_served')} recalibration from outcomes completed before "
                f"each request); static calibration alone {r['p90_coverage_static']:.4f}"
            )


def _cmd_train(args: argparse.Namespace) -> int:
    from models import bench
    from models.registry import ModelRegistry

    if args.dataset == "events":
        return _train_from_logs(args)
    if len(args.train) != 1:
        return _fail(f"--dataset {args.dataset} trains on one file, got {len(args.train)}")
    try:
        rows = bench.load_train_rows(args.dataset, args.train[0])
        model = bench.train_for(args.dataset, rows, progress=not args.no_progress)
        version = ModelRegistry(args.registry).publish(model)
    except _known_errors() as exc:
        return _fail(str(exc))
    print(
        json.dumps(
            {
                "version": version,
                "registry": str(args.registry),
                "kind": model.kind,
                "n_train": model.metadata.get("n_train"),
                "training_window_ms": model.metadata.get("training_window_ms"),
                "calibration_selection": model.metadata.get("calibration_selection"),
            },
            indent=2,
        )
    )
    return 0


def _train_from_logs(args: argparse.Namespace) -> int:
    """The staged models from event logs, published as a set (and run in shadow if asked)."""
    from models.registry import ModelRegistry
    from models.staged import train_from_logs

    registry = ModelRegistry(args.registry)
    try:
        models = train_from_logs(args.train, progress=not args.no_progress)
        served = registry.target_version()
        version = registry.publish_set(models.as_dict())
        if args.candidate and served is not None:
            registry.pin(served)
            registry.set_candidate(version)
    except _known_errors() as exc:
        return _fail(str(exc))
    except ValueError as exc:  # too few days of history
        return _fail(str(exc))
    trained = models.as_dict()
    print(
        json.dumps(
            {
                "version": version,
                "registry": str(args.registry),
                "kinds": sorted(trained),
                "n_train": {k: m.metadata.get("n_train") for k, m in trained.items()},
                "served": registry.target_version(),
                "candidate": registry.candidate_version(),
            },
            indent=2,
        )
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from models.report import evaluate_registry_model

    try:
        report = evaluate_registry_model(
            args.dataset, args.registry, args.version, args.train, args.test, args.out
        )
    except _known_errors() as exc:
        return _fail(str(exc))
    _print_table([report["metrics"] | {"dataset": args.dataset}])
    print(f"report: {args.out / 'report.json'}  plots: {', '.join(report['plots'])}")
    return 0


def _cmd_eta_bench(args: argparse.Namespace) -> int:
    from models import bench

    try:
        figures, _ = bench.eta_bench(
            args.dataset,
            args.train,
            args.test,
            plots_dir=args.json.parent if args.plots else None,
            progress=not args.no_progress,
        )
    except _known_errors() as exc:
        return _fail(str(exc))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    _print_table([figures])
    _print_selection([figures])
    print(f"wrote {args.json}")
    return 0


def _cmd_bench_eta(args: argparse.Namespace) -> int:
    from models import bench
    from models.registry import ModelRegistry

    out: Path = args.out
    try:
        paths = bench.split_shared(args.shared, out / "eta-splits")
        results = []
        models = {}
        for name in bench.DATASETS:
            train, test = paths[name]
            figures, model = bench.eta_bench(
                name, train, test, plots_dir=out, progress=not args.no_progress
            )
            figures["train_file"], figures["test_file"] = str(train), str(test)
            (out / f"eta_{name}.json").write_text(json.dumps(figures, indent=2))
            figures["model_version"] = ModelRegistry(out / "models" / name).publish(model)
            results.append(figures)
            models[name] = model
        rows = bench.load_rows("nyc", *paths["nyc"])
        vec = bench.vectorized_throughput(models["nyc"], rows.test, n_pairs=args.pairs)
        http = bench.http_latency(models["nyc"], rows.test, rps=args.rps, seconds=args.seconds)
    except _known_errors() as exc:
        return _fail(str(exc))
    inference = {
        "vectorized_travel_legs_per_s_one_core": vec,
        "vectorized_pairs": args.pairs,
        "eta_http": http,
    }
    (out / "eta_inference.json").write_text(json.dumps(inference, indent=2))
    _print_table(results)
    _print_selection(results)
    print()
    print(f"vectorized travel-leg inference: {vec:,.0f} pairs/s on one core (XGBoost nthread=1)")
    print(
        f"POST /eta at {http['rps']:.0f} req/s on loopback: p50 {http['p50_ms']:.2f} ms, "
        f"p99 {http['p99_ms']:.2f} ms, max {http['max_ms']:.2f} ms "
        f"({http['requests']} requests, ok rate {http['ok_rate']:.3f}; "
        f"p99 from scheduled send time {http['p99_from_schedule_ms']:.2f} ms; "
        f"handler p99 {http['handler_p99_ms']:.2f} ms; no-op endpoint at the same rate: "
        f"p50 {http['noop_endpoint_p50_ms']:.2f} ms, p99 {http['noop_endpoint_p99_ms']:.2f} ms; "
        f"1-min load average {http['load_average_1m']:.2f} on {http['cpu_count']} CPUs)"
    )
    print(f"wrote {out}/eta_doordash.json, eta_nyc.json, eta_inference.json and plots")
    return 0


def register(registry: CommandRegistry) -> None:
    """Attach this package's subcommands to `registry`."""
    _register_models(registry)
    p = registry.add(
        "train",
        _cmd_train,
        "train a residual ETA model (p50/p90, conformal p90) on a data file and publish it as "
        "the next version in a model registry directory; the p90 calibration (plain or "
        "block-median conformal, bins, window) is chosen from a small grid by rolling "
        "validation on the latest 30 percent of the training rows, then refitted on all of them",
    )
    p.add_argument(
        "--dataset",
        choices=("doordash", "nyc", "events"),
        required=True,
        help=_DATASET_HELP + "; `events`: event logs (JSON Lines: the records of the input "
        "topics, as `dispatchflow export-log` writes them, or feature events) → the staged "
        "set (prep P1, travel legs with live context, placement ETA; `models.staged`), their "
        "features rebuilt by the same definitions the online store uses, published as one "
        "version",
    )
    p.add_argument(
        "--train",
        type=Path,
        nargs="+",
        required=True,
        help="training data file (CSV or JSONL); with --dataset events, one or more logs "
        "(each log's days are days of their own)",
    )
    p.add_argument("--registry", type=Path, required=True, help="model registry directory")
    p.add_argument(
        "--candidate",
        action="store_true",
        help="with --dataset events: run the new version in shadow beside the one served now "
        "(which is pinned) instead of serving it; `dispatchflow models promote` switches",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = registry.add(
        "evaluate",
        _cmd_evaluate,
        "evaluate a registry model on a test file: report.json (MAE, p50/p90 absolute error, "
        "p90 coverage, bias by segment) and PNG plots (calibration curve, error by hour)",
    )
    p.add_argument("--dataset", choices=("doordash", "nyc"), required=True, help=_DATASET_HELP)
    p.add_argument("--registry", type=Path, required=True, help="model registry directory")
    p.add_argument("--version", default=None, help="model version (default: pinned or newest)")
    p.add_argument(
        "--train",
        type=Path,
        required=True,
        help="the model's training file (history features and the base offset come from it)",
    )
    p.add_argument("--test", type=Path, required=True, help="test data file, after training")
    p.add_argument("--out", type=Path, default=Path("reports/eta"), help="report directory")

    eta = registry.add("eta", _missing_subcommand, "ETA model tools (see `eta bench`)")
    sub = eta.add_subparsers(title="eta commands", metavar="COMMAND")
    b = sub.add_parser(
        "bench",
        help="train on one file, evaluate on another, print a table and write JSON",
        description=(
            "Train the dataset's residual model on --train, evaluate on --test (which must be "
            "later in time), print a table and write JSON with n_test, base_mae_min, "
            "base_offset_mae_min, mae_min, p50_abs_err_min, p90_abs_err_min, p90_coverage, "
            "fallback_rate, predict_pairs_per_s, and calibration_choice / "
            "validation_p90_coverage: the p90 calibration is chosen from a small grid by "
            "rolling validation on the latest 30 percent of the training rows (three slices of "
            "10 percent, each scored against a fit on the rows before it), then refitted on all "
            "training rows. The test rows are served as in production: in request-time order, "
            "the p90 recalibrated online from the outcomes of test rows completed before each "
            "request (p90_coverage is that served figure, p90_coverage_served = online); "
            "p90_coverage_static is the training-time calibration alone."
        ),
        formatter_class=HelpFormatter,
    )
    b.set_defaults(handler=_cmd_eta_bench)
    b.add_argument("--dataset", choices=("doordash", "nyc"), required=True, help=_DATASET_HELP)
    b.add_argument("--train", type=Path, required=True, help="training data file (CSV)")
    b.add_argument("--test", type=Path, required=True, help="test data file (CSV)")
    b.add_argument("--json", type=Path, required=True, help="where to write the figures")
    b.add_argument("--plots", action="store_true", help="also write PNG plots next to the JSON")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = registry.add(
        "eta",
        _cmd_bench_eta,
        "ETA accuracy on the shared DoorDash (last 7 days held out) and NYC (last 20 percent held "
        "out) files, plus vectorized inference speed and POST /eta latency; the p90 "
        "calibration of each model is chosen on its training rows only (calibration_choice "
        "and validation_p90_coverage in the JSON) and recalibrated online from test outcomes "
        "completed before each request, as served (p90_coverage; p90_coverage_static without)",
        bench=True,
    )
    p.add_argument("--shared", type=Path, default=Path("../shared"), help="shared directory")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    p.add_argument("--pairs", type=int, default=1_000_000, help="legs in the vectorized batch")
    p.add_argument("--rps", type=float, default=200.0, help="request rate of the /eta load")
    p.add_argument("--seconds", type=float, default=15.0, help="duration of the /eta load")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


_MODELS_HELP = (
    "list the versions of a model registry, run one in shadow beside the served set "
    "(candidate), stop that (clear-candidate), or serve one from now on (promote); workers "
    "pick the change up at their next registry re-read"
)


def registry_state(root: Path) -> dict[str, Any]:
    """The registry's versions (with their model kinds), the served one and the candidate."""
    from models.registry import SET_FILE, ModelRegistry

    registry = ModelRegistry(root)
    versions = []
    for version in registry.versions():
        listing = root / version / SET_FILE
        kinds = json.loads(listing.read_text())["kinds"] if listing.is_file() else ["single"]
        versions.append({"version": version, "kinds": kinds})
    return {
        "registry": str(root),
        "versions": versions,
        "served": registry.target_version(),
        "pinned": registry.pinned(),
        "candidate": registry.candidate_version(),
    }


def _models(args: argparse.Namespace) -> int:
    from models.registry import ModelRegistry, RegistryError

    registry = ModelRegistry(args.registry)
    try:
        if args.action == "candidate":
            registry.set_candidate(args.version)
        elif args.action == "clear-candidate":
            registry.clear_candidate()
        elif args.action == "promote":
            registry.promote(args.version)
    except (RegistryError, OSError, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(registry_state(args.registry), indent=2))
    return 0


def _register_models(registry: CommandRegistry) -> None:
    """Attach `models` (see `_MODELS_HELP`) to `registry`."""
    p = registry.add("models", _models, _MODELS_HELP)
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    for name, text, needs_version in (
        ("list", "print the versions, the served one and the candidate", False),
        ("candidate", "run VERSION in shadow beside the served set", True),
        ("clear-candidate", "stop the shadow run", False),
        ("promote", "serve VERSION from now on (pinned; no longer the candidate)", True),
    ):
        action = sub.add_parser(name, help=text, description=text)
        action.add_argument("--registry", type=Path, required=True, help="model registry directory")
        if needs_version:
            action.add_argument("version", metavar="VERSION", help="a version, e.g. v0003")


def _missing_subcommand(args: argparse.Namespace) -> int:
    return _fail("missing subcommand; run `dispatchflow eta --help`")
