"""The live benchmark: full city runs through the worker core, dispatch variants side by side.

For each evaluated seed and each variant (`dispatch.live.engine_config.VARIANTS`): `fixed`
(food ready 15 minutes after placement unless the merchant says it is), `merchant` (the
merchant's estimates: today's behaviour) and `learned` (the prep model, travel legs with live
context and priced declines, from models trained on the training seeds' simulated days only),
a whole city day (`--preset`, the demo's lunch rush by default) runs through the very worker
core the stream worker runs (`simulators.inprocess`), in process.

The models come from what the system logged, in rounds: round 1 runs each training seed's day
under `merchant` and trains on its event log (`models.staged.train_from_logs`: the offline
materialization of the feature definitions); each later round runs the training days under
`learned` with the previous round's models and trains again on those logs (the placement ETA
learns the delays of the dispatch that serves it). Every round is published to the registry;
the last one is served. No evaluated seed's day is ever trained on.

Rows (`ROW_KEYS`), one per seed and variant: orders, on-time rate, click-to-door mean and p90,
courier and food waiting at the merchant, the error and p90 coverage of the drop-off time
announced at placement, and the acceptance rate (definitions: `simulators.city.kpis`).
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from dispatch.live.engine_config import VARIANTS
from dispatch.live.eta import LegPredictor, ServiceLegPredictor, StraightLinePredictor
from dispatchflow.settings import Settings
from models.registry import ModelRegistry
from models.service import EtaService
from models.staged import train_from_logs
from simulators.city import PRESETS, CityConfig, compute_kpis, run_simulation
from simulators.city.scenario import build_scenario, kitchen_factor
from simulators.inprocess import InProcessDispatch

#: The keys of every result row, in order.
ROW_KEYS: tuple[str, ...] = (
    "variant",
    "seed",
    "orders",
    "on_time_rate",
    "ctod_mean_min",
    "ctod_p90_min",
    "courier_wait_min",
    "food_wait_min",
    "eta_p50_abs_err_min",
    "eta_p90_abs_err_min",
    "eta_p90_coverage",
    "acceptance_rate",
)
#: Metrics of a row (its keys but the variant and seed).
METRICS: tuple[str, ...] = ROW_KEYS[2:]


@dataclass(frozen=True)
class CityRun:
    """One city day to run.

    Attributes:
        preset: name in `simulators.city.PRESETS`.
        seed: the city's seed.
        variant: the dispatch variant.
        registry: the model registry to serve from (None: no models).
        log_path: where to write the day's event log (None: not written).
    """

    preset: str
    seed: int
    variant: str
    registry: Path | None = None
    log_path: Path | None = None


def _predictor(registry: ModelRegistry | None) -> LegPredictor:
    if registry is None:
        return StraightLinePredictor()
    # No timeout: a replay must not depend on how loaded the machine is.
    return ServiceLegPredictor(EtaService(registry, model_timeout_s=None), timeout_s=None)


def run_city(run: CityRun) -> dict[str, Any]:
    """Run one city day through the worker core; its row (`ROW_KEYS`) and its log written."""
    config = PRESETS[run.preset](run.seed)
    registry = None
    if run.registry is not None:
        registry = ModelRegistry(run.registry)
        registry.refresh()
    settings = Settings(tick_interval_s=config.tick_interval_s, dispatch_variant=run.variant)
    dispatch = InProcessDispatch.from_settings(settings, _predictor(registry), models=registry)
    try:
        log = run_simulation(config, dispatch, progress=False)
    finally:
        dispatch.close()
    if run.log_path is not None:
        run.log_path.parent.mkdir(parents=True, exist_ok=True)
        with run.log_path.open("wb") as fh:
            for record in log.inputs:
                fh.write(orjson.dumps(record.event))
                fh.write(b"\n")
    kpis = compute_kpis(log, eta_source="placement")
    return {"variant": run.variant, "seed": run.seed} | {k: kpis[k] for k in METRICS}


def _run_all(
    runs: Sequence[CityRun], workers: int, progress: bool, what: str
) -> list[dict[str, Any]]:
    """The rows of `runs`, in order, `workers` processes at a time."""
    bar = tqdm(total=len(runs), desc=what, unit="day", disable=not progress)
    try:
        if workers <= 1:
            out = []
            for run in runs:
                out.append(run_city(run))
                bar.update(1)
            return out
        # Spawned, not forked: a fork after training inherits XGBoost's OpenMP threads' locks
        # held, and the children of the next round wait on them forever.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            futures = [pool.submit(run_city, run) for run in runs]
            for _ in concurrent.futures.as_completed(futures):
                bar.update(1)
            return [f.result() for f in futures]
    finally:
        bar.close()


@dataclass(frozen=True)
class BenchPlan:
    """What `live_bench` runs.

    Attributes:
        seeds: evaluated seeds.
        train_seeds: training seeds (disjoint from `seeds`).
        workdir: where logs and the model registry go.
        preset: the city.
        rounds: training rounds (at least 1).
        workers: city days run at once.
    """

    seeds: tuple[int, ...]
    train_seeds: tuple[int, ...]
    workdir: Path
    preset: str = "lunch_rush"
    rounds: int = 2
    workers: int = 1

    def __post_init__(self) -> None:
        if not self.seeds or not self.train_seeds:
            raise ValueError("need at least one evaluated and one training seed")
        shared = sorted(set(self.seeds) & set(self.train_seeds))
        if shared:
            raise ValueError(f"seeds {shared} are both evaluated and trained on")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        if self.rounds < 1 or self.workers < 1:
            raise ValueError("rounds and workers must be at least 1")


def train_rounds(plan: BenchPlan, progress: bool = True) -> tuple[Path, str]:
    """Train the models in rounds on the training days (module docstring); registry, version."""
    registry_dir = plan.workdir / "models"
    registry = ModelRegistry(registry_dir)
    version = ""
    for r in range(1, plan.rounds + 1):
        variant = "merchant" if r == 1 else "learned"
        served = registry_dir if r > 1 else None
        runs = [
            CityRun(
                plan.preset,
                seed,
                variant,
                served,
                plan.workdir / "logs" / f"round{r}-seed{seed}.jsonl",
            )
            for seed in plan.train_seeds
        ]
        _run_all(runs, plan.workers, progress, f"round {r}: training days ({variant})")
        models = train_from_logs(
            [run.log_path for run in runs if run.log_path is not None], progress=progress
        )
        version = registry.publish_set(models.as_dict())
        registry.pin(version)
    return registry_dir, version


def live_bench(plan: BenchPlan, progress: bool = True) -> list[dict[str, Any]]:
    """Every evaluated seed under every variant; rows by seed, then variant."""
    registry, _ = train_rounds(plan, progress)
    runs = [
        CityRun(plan.preset, seed, variant, registry if variant == "learned" else None)
        for seed in plan.seeds
        for variant in VARIANTS
    ]
    return _run_all(runs, plan.workers, progress, "evaluated days")


@dataclass(frozen=True)
class PrepFloor:
    """How well the food's ready time can be known at placement, in the simulated city.

    The error of predicting each order's preparation time with its kitchen's true median,
    slowed by the orders already in preparation there (what the simulator draws from; no
    model knows it). The food is never handed over before it is ready, so a drop-off announced
    at placement inherits this error, unless the dispatcher held couriers to the announced
    time (food waiting longer): a reference for the ETA figures, not a proven bound.

    Attributes:
        orders: orders counted.
        p50_abs_err_min: median absolute error, minutes.
        p90_abs_err_min: 90th percentile of the absolute error, minutes.
    """

    orders: int
    p50_abs_err_min: float
    p90_abs_err_min: float


def prep_floor(configs: Sequence[CityConfig]) -> PrepFloor:
    """The `PrepFloor` over every order of the cities `configs` (no dispatch is run)."""
    errors: list[float] = []
    for config in configs:
        scenario = build_scenario(config)
        mcfg = config.merchants
        median = {m.merchant_id: m.prep_median_s for m in scenario.merchants}
        for order in scenario.orders:
            factor = kitchen_factor(
                order.kitchen_queue, mcfg.kitchen_slowdown_per_order, mcfg.kitchen_slowdown_max
            )
            prep_s = (order.ready_ts_ms - order.placed_ts_ms) / 1000.0
            errors.append(abs(prep_s - median[order.merchant_id] * factor) / 60.0)
    if not errors:
        return PrepFloor(0, math.nan, math.nan)
    p50, p90 = np.percentile(errors, [50, 90])
    return PrepFloor(len(errors), float(p50), float(p90))


def means(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean of each metric per variant over the rows' seeds (None values left out)."""
    out: dict[str, dict[str, float]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out[variant] = {}
        for key in METRICS:
            values = [float(r[key]) for r in mine if r[key] is not None]
            out[variant][key] = sum(values) / len(values) if values else math.nan
    return out


def table(averages: dict[str, dict[str, float]]) -> str:
    """The means as a Markdown table, variants as rows."""
    head = "| variant | " + " | ".join(METRICS) + " |"
    rule = "| --- |" + " ---: |" * len(METRICS)
    lines = [head, rule]
    for variant, values in averages.items():
        cells = [f"{values[k]:.4g}" if math.isfinite(values[k]) else "n/a" for k in METRICS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_seeds(text: str) -> tuple[int, ...]:
    """`1,2,5-7` as (1, 2, 5, 6, 7).

    Raises:
        ValueError: a part that is not an integer or an ascending range.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        if dash and low.strip().isdigit() and high.strip().isdigit() and int(low) <= int(high):
            seeds.extend(range(int(low), int(high) + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ValueError(f"{part!r} is not a seed or an ascending range like 5-9")
    return tuple(dict.fromkeys(seeds))
