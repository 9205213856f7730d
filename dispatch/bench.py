"""Tick latency of `decide()` on rolling synthetic shards (clocks injected by the caller)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dispatch.engine import decide
from dispatch.policy import Policy
from dispatch.synthetic import ShardShape, ShardStream

Clock = Callable[[], float]


@dataclass(frozen=True)
class TickRun:
    """How a benchmark ticks a shard and times the ticks.

    Attributes:
        seed: seed of the synthetic shard stream.
        warmup: ticks run first and not measured (non-negative).
        ticks: measured ticks (positive).
        wall_clock: wall-clock reading, seconds.
        cpu_clock: CPU-time reading, seconds.
        on_tick: called after every tick, warm-up included (a progress bar).
    """

    seed: int
    warmup: int
    ticks: int
    wall_clock: Clock
    cpu_clock: Clock
    on_tick: Callable[[], None] | None = None


@dataclass(frozen=True)
class LatencyRow:
    """Latency of one shard size.

    Attributes:
        orders: open orders per tick.
        couriers: couriers in the shard.
        p50_ms: median wall-clock tick time, milliseconds.
        p99_ms: 99th-percentile wall-clock tick time, milliseconds.
        max_ms: slowest tick, milliseconds.
        cpu_p50_ms: median CPU time of the tick (insensitive to other processes), ms.
        cpu_p99_ms: 99th-percentile CPU time of the tick, ms.
        commits_per_tick: mean assignments per tick.
        fallback_ticks: ticks decided by the greedy circuit breaker.
        ticks: measured ticks.
    """

    orders: int
    couriers: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float
    commits_per_tick: float
    fallback_ticks: int
    ticks: int

    def as_json(self) -> dict[str, float | int]:
        """The benchmark's JSON row: orders, couriers, p50_ms, p99_ms."""
        return {
            "orders": self.orders,
            "couriers": self.couriers,
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
        }


def measure(shape: ShardShape, policy: Policy, run: TickRun) -> LatencyRow:
    """Run `warmup + ticks` ticks of a rolling shard and time the measured ones.

    Raises:
        ValueError: if `ticks` is not positive or `warmup` is negative.
    """
    if run.ticks < 1 or run.warmup < 0:
        raise ValueError("ticks must be positive and warmup non-negative")
    stream = ShardStream(shape, np.random.default_rng(run.seed))
    snapshot = stream.snapshot
    wall: list[float] = []
    cpu: list[float] = []
    commits: list[int] = []
    fallbacks = 0
    for tick in range(run.warmup + run.ticks):
        w0, c0 = run.wall_clock(), run.cpu_clock()
        decisions = decide(snapshot, policy)
        w1, c1 = run.wall_clock(), run.cpu_clock()
        if tick >= run.warmup:
            wall.append(w1 - w0)
            cpu.append(c1 - c0)
            commits.append(len(decisions.assignments))
            fallbacks += int(decisions.fallback_used)
        snapshot = stream.advance(decisions)
        if run.on_tick is not None:
            run.on_tick()
    wall_ms = np.array(wall) * 1000.0
    cpu_ms = np.array(cpu) * 1000.0
    return LatencyRow(
        orders=shape.orders,
        couriers=shape.couriers,
        p50_ms=float(np.percentile(wall_ms, 50)),
        p99_ms=float(np.percentile(wall_ms, 99)),
        max_ms=float(wall_ms.max()),
        cpu_p50_ms=float(np.percentile(cpu_ms, 50)),
        cpu_p99_ms=float(np.percentile(cpu_ms, 99)),
        commits_per_tick=float(np.mean(commits)),
        fallback_ticks=fallbacks,
        ticks=run.ticks,
    )


def sweep(
    order_counts: Sequence[int], couriers: int, policy: Policy, run: TickRun
) -> list[LatencyRow]:
    """`measure` for each order count at a fixed courier count (seeds `run.seed`, `+1`, …)."""
    return [
        measure(ShardShape(orders=n, couriers=couriers), policy, replace(run, seed=run.seed + i))
        for i, n in enumerate(order_counts)
    ]
