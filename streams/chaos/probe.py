"""The timeline of a chaos run: what the harness samples while the run goes on.

Per lockstep step: its event time, wall time, records sent, the lag (how long the step's records
waited to be handled: the longer of its two settles, inputs then ticks) and the open orders.
Every `interval_s` of wall time: the workers' `/metrics`, turned into throughput (records
consumed per second over all workers), tick duration p99 and circuit-breaker ticks over the
interval. A worker's counters start again at zero when it restarts; a counter that went down is
taken as new from zero. What a worker counted between its last scrape and a kill is lost to the
figures (not to the run).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.metrics import histogram_quantile
from streams.worker_process import WorkerProcess

_BUCKET = re.compile(r'^dispatchflow_tick_duration_seconds_bucket\{le="([^"]+)"\} ([0-9.e+-]+)$')
_BREAKER = re.compile(r"^dispatchflow_circuit_breaker_ticks_total ([0-9.e+-]+)$")
_CONSUMED = re.compile(r'^dispatchflow_events_consumed_total\{topic="[^"]+"\} ([0-9.e+-]+)$')


@dataclass(frozen=True)
class StepSample:
    """One lockstep step.

    Attributes:
        step: its number (1-based).
        at_s: seconds since the run started, at the step's end.
        sim_ts_ms: its event time (the ticks' time).
        wall_s: how long it took.
        inputs: simulator records it sent.
        hostile: hostile records sent before it.
        lag_s: the longest a record of the step waited to be handled.
        open_orders: orders placed and not yet ended (delivered, cancelled, expired).
    """

    step: int
    at_s: float
    sim_ts_ms: int
    wall_s: float
    inputs: int
    hostile: int
    lag_s: float
    open_orders: int


@dataclass(frozen=True)
class MetricSample:
    """The workers' metrics over one interval.

    Attributes:
        at_s: seconds since the run started.
        consumed_per_s: records consumed per second by all workers together.
        tick_p99_ms: p99 of the ticks decided in the interval (None: no tick).
        ticks: ticks decided in the interval.
        breaker_ticks: of which the circuit breaker sent to the greedy policy.
    """

    at_s: float
    consumed_per_s: float
    tick_p99_ms: float | None
    ticks: int
    breaker_ticks: int


@dataclass(frozen=True)
class _Scrape:
    buckets: tuple[tuple[float, float], ...]  # (upper bound s, cumulative count)
    breaker: float
    consumed: float


def parse_metrics(text: str) -> _Scrape:
    """The tick histogram, breaker and consumed counters of one `/metrics` body."""
    buckets: list[tuple[float, float]] = []
    breaker = consumed = 0.0
    for line in text.splitlines():
        if (m := _BUCKET.match(line)) is not None:
            buckets.append((math.inf if m[1] == "+Inf" else float(m[1]), float(m[2])))
        elif (m := _BREAKER.match(line)) is not None:
            breaker = float(m[1])
        elif (m := _CONSUMED.match(line)) is not None:
            consumed += float(m[1])
    return _Scrape(tuple(sorted(buckets)), breaker, consumed)


def _delta(now: _Scrape, before: _Scrape | None) -> _Scrape:
    """What happened between two scrapes of one worker (all of `now` if it restarted)."""
    restarted = before is None or now.consumed < before.consumed or now.breaker < before.breaker
    if restarted or before is None or len(before.buckets) != len(now.buckets):
        return now
    return _Scrape(
        tuple((b, c - p) for (b, c), (_, p) in zip(now.buckets, before.buckets, strict=True)),
        now.breaker - before.breaker,
        now.consumed - before.consumed,
    )


def _sum(scrapes: Iterable[_Scrape]) -> _Scrape:
    total: dict[float, float] = {}
    breaker = consumed = 0.0
    for s in scrapes:
        for bound, count in s.buckets:
            total[bound] = total.get(bound, 0.0) + count
        breaker += s.breaker
        consumed += s.consumed
    return _Scrape(tuple(sorted(total.items())), breaker, consumed)


@dataclass
class Probe:
    """Collects the timeline; `urls` gives the workers to scrape (those up and in the group)."""

    urls: Callable[[], Sequence[str]]
    workers: Sequence[WorkerProcess]
    interval_s: float = 5.0
    started_s: float = field(default_factory=time.monotonic)
    steps: list[StepSample] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last: dict[str, _Scrape] = {}
        self._last_at = time.monotonic()
        self._total = _Scrape((), 0.0, 0.0)

    def now_s(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started_s

    def step(self, sample: StepSample) -> None:
        """Add a step; scrape the workers if `interval_s` has passed."""
        self.steps.append(sample)
        if time.monotonic() - self._last_at >= self.interval_s:
            self.scrape()

    def scrape(self) -> None:
        """Read every worker's `/metrics` and add one interval to the timeline."""
        by_url = {w.url: w for w in self.workers}
        deltas = []
        for url in self.urls():
            worker = by_url.get(url)
            status, body = worker.request("/metrics", timeout_s=2.0) if worker else (0, b"")
            if status != 200:
                continue
            now = parse_metrics(body.decode("utf-8", "replace"))
            deltas.append(_delta(now, self._last.get(url)))
            self._last[url] = now
        window = _sum(deltas)
        self._total = _sum([self._total, window])
        elapsed = max(time.monotonic() - self._last_at, 1e-6)
        self._last_at = time.monotonic()
        ticks = int(window.buckets[-1][1]) if window.buckets else 0
        p99 = histogram_quantile(0.99, window.buckets)
        self.metrics.append(
            MetricSample(
                round(self.now_s(), 3),
                round(window.consumed / elapsed, 1),
                None if p99 is None else round(p99 * 1000, 2),
                ticks,
                int(window.breaker),
            )
        )

    @property
    def tick_p99_ms(self) -> float | None:
        """p99 of every tick the scrapes saw over the run, in ms."""
        p99 = histogram_quantile(0.99, self._total.buckets)
        return None if p99 is None else round(p99 * 1000, 2)

    @property
    def ticks(self) -> int:
        """Ticks the scrapes saw over the run."""
        return int(self._total.buckets[-1][1]) if self._total.buckets else 0

    @property
    def breaker_ticks(self) -> int:
        """Circuit-breaker ticks the scrapes saw over the run."""
        return int(self._total.breaker)

    @property
    def max_lag_s(self) -> float:
        """The longest any step's records waited to be handled."""
        return max((s.lag_s for s in self.steps), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """The timeline, JSON-able."""
        return {
            "steps": [asdict(s) for s in self.steps],
            "metrics": [asdict(m) for m in self.metrics],
        }
