"""Replaying MDRP instances under dispatch policies, in parallel, with metrics and solutions."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dispatch.policy import Policy
from simulators.mdrp.breakdown import CtodBreakdown, order_parts, summarize
from simulators.mdrp.checker import check_solution
from simulators.mdrp.foodwait import FoodWaitBands, history_bands, prep_bands
from simulators.mdrp.instance import load_instance
from simulators.mdrp.metrics import InstanceMetrics, compute_metrics
from simulators.mdrp.simulator import MdrpSimulator
from simulators.mdrp.solution import write_solution

#: Most worker processes a replay uses (the machines this runs on have two cores).
MAX_WORKERS = 2


@dataclass(frozen=True)
class ReplayTask:
    """One instance under one policy.

    Attributes:
        instance_dir: instance directory.
        policy: the policy to run (a registered one or a variant of it).
        tick_min: minutes between ticks.
        solutions_dir: where to write the benchmark files (`<dir>/<instance>/`), or None.
        foresight_min: diagnostic: minutes ahead of placement at which `decide()` sees orders
            (0 follows the benchmark; see `simulators.mdrp.simulator`).
    """

    instance_dir: str
    policy: Policy
    tick_min: int = 1
    solutions_dir: str | None = None
    foresight_min: int = 0


@dataclass(frozen=True)
class ReplayResult:
    """What one replay produced.

    Attributes:
        policy: name of the policy that ran (with its settings, if any).
        metrics: benchmark metrics (with the checker's verdict).
        ctod_min: click-to-door minutes of every delivered order (for plots).
        violations: checker violations (empty when valid).
        rejected: decisions the simulator rejected (a correct policy has none).
        decide_seconds: wall time inside `decide()`.
        ticks: ticks simulated.
        fallback_ticks: ticks decided by the greedy circuit breaker.
        breakdown: where the click-to-door minutes went (see `simulators.mdrp.breakdown`).
        by_prep: food waiting by preparation time (see `simulators.mdrp.foodwait`).
        by_history: food waiting by the merchant's earlier orders that day.
    """

    policy: str
    metrics: InstanceMetrics
    ctod_min: tuple[int, ...]
    violations: tuple[str, ...]
    rejected: int
    decide_seconds: float
    ticks: int
    fallback_ticks: int
    breakdown: CtodBreakdown
    by_prep: FoodWaitBands
    by_history: FoodWaitBands


def run_task(task: ReplayTask) -> ReplayResult:
    """Simulate, check and measure one instance (top-level so worker processes can run it)."""
    instance = load_instance(task.instance_dir)
    result = MdrpSimulator(
        instance, task.policy, tick_min=task.tick_min, foresight_min=task.foresight_min
    ).run()
    check = check_solution(instance, result.solution)
    metrics = compute_metrics(instance, result.solution, check)
    if task.solutions_dir is not None:
        write_solution(result.solution, Path(task.solutions_dir) / instance.name)
    placement = {o: int(t) for o, t in zip(instance.order_id, instance.placement_min, strict=True)}
    ctod = tuple(o.dropoff_min - placement[o.order] for o in result.solution.orders)
    parts = order_parts(instance, result.solution, result.earliest_pickup_min)
    return ReplayResult(
        policy=task.policy.name,
        metrics=metrics,
        ctod_min=ctod,
        violations=check.violations,
        rejected=sum(result.rejected.values()),
        decide_seconds=result.decide_seconds,
        ticks=result.ticks,
        fallback_ticks=result.fallback_ticks,
        breakdown=summarize(instance.name, parts),
        by_prep=prep_bands(instance, parts),
        by_history=history_bands(instance, parts),
    )


def run_tasks(
    tasks: Sequence[ReplayTask],
    *,
    workers: int = MAX_WORKERS,
    progress: bool = True,
    runner: Callable[[ReplayTask], ReplayResult] = run_task,
) -> list[ReplayResult]:
    """Run every task, in up to `workers` processes, with a progress bar.

    Returns:
        Results in the order of `tasks`.
    """
    workers = max(1, min(workers, MAX_WORKERS, len(tasks) or 1, os.cpu_count() or 1))
    results: list[ReplayResult | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc="replay", unit="run", disable=not progress)
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                results[i] = runner(task)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(runner, task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return [r for r in results if r is not None]


def ctod_values(results: Sequence[ReplayResult]) -> np.ndarray:
    """All delivered orders' click-to-door minutes across results."""
    return np.array([v for r in results for v in r.ctod_min], dtype=np.float64)
