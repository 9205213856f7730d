"""Running a scenario against a dispatcher, tick by tick in event time, and keeping the log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tqdm import tqdm

from simulators.city.config import CityConfig
from simulators.city.protocol import Dispatch, SimRecord
from simulators.city.scenario import Scenario
from simulators.city.world import CityWorld


@dataclass
class SimulationLog:
    """Everything that went in and out of the dispatcher during one run.

    Attributes:
        config: the scenario.
        shards: the city's shards (each got every tick).
        inputs: every input record, in the order delivered (event-time ordered).
        outputs: every output record, in the order the dispatcher produced them.
        start_ts_ms: scenario start.
        scenario_end_ts_ms: end of the order-placement window.
        end_ts_ms: event time of the last tick (end of the drain).
        open_order_ids: orders still neither delivered, cancelled nor expired at the end (the
            world's view).
        settled: whether every order was delivered, cancelled, expired or given up (older than
            `max_order_age_s` and not picked up) when the run stopped; False means the drain
            time ran out.
        steps: number of `run_until` calls (ticks).
        world_stats: counters of the world (late answers, abandoned orders, ...).
        wall_s: wall-clock seconds the run took (not deterministic; excluded from comparisons).
    """

    config: CityConfig
    shards: tuple[str, ...]
    inputs: list[SimRecord] = field(default_factory=list)
    outputs: list[SimRecord] = field(default_factory=list)
    start_ts_ms: int = 0
    scenario_end_ts_ms: int = 0
    end_ts_ms: int = 0
    open_order_ids: tuple[str, ...] = ()
    settled: bool = False
    steps: int = 0
    world_stats: dict[str, int] = field(default_factory=dict)
    wall_s: float = field(default=0.0, compare=False)

    @property
    def max_order_age_s(self) -> float:
        """Age past which an order that was not picked up counts as given up."""
        return self.config.max_order_age_s


def run_simulation(
    config: CityConfig,
    dispatch: Dispatch,
    progress: bool = True,
    scenario: Scenario | None = None,
) -> SimulationLog:
    """Run `config` against `dispatch` and return the log.

    `scenario` replaces what `config` would draw (merchants, orders, couriers), e.g. a burst of
    extra orders; by default it is `build_scenario(config)`.

    Each step advances the world to the next tick time t_next, hands the dispatcher the input
    records of (t, t_next] followed by one `dispatch_tick` per shard at t_next, and feeds the
    outputs back to the world at t_next. After the scenario ends (no new orders), ticking goes
    on until every order is settled or `drain_max_s` has passed. Deterministic for a seed and
    a deterministic dispatcher.
    """
    wall_start = time.perf_counter()
    world = CityWorld(config, scenario)
    log = SimulationLog(
        config=config,
        shards=world.shards,
        start_ts_ms=config.start_ts_ms,
        scenario_end_ts_ms=config.scenario_end_ts_ms,
    )
    tick_ms = config.tick_interval_ms
    drain_end = config.scenario_end_ts_ms + round(config.drain_max_s * 1000)
    total = -(-(drain_end - config.start_ts_ms) // tick_ms)
    bar = tqdm(
        total=total,
        unit="tick",
        desc=f"simulating {config.name}",
        disable=None if progress else True,
        leave=False,
    )
    t_next = config.start_ts_ms
    try:
        while True:
            t_next += tick_ms
            inputs = world.advance(t_next)
            inputs.extend(world.tick_records(t_next))
            outputs = list(dispatch.run_until(inputs, t_next))
            log.inputs.extend(inputs)
            log.outputs.extend(outputs)
            world.apply(outputs)
            log.steps += 1
            bar.update(1)
            if log.steps % 20 == 0:
                counts = world.counts()
                bar.set_postfix(
                    open=counts.get("placed", 0),
                    delivered=counts.get("delivered", 0),
                    refresh=False,
                )
            if t_next >= config.scenario_end_ts_ms:
                log.settled = world.settled()
                if log.settled or t_next >= drain_end:
                    break
    finally:
        bar.close()
    log.end_ts_ms = t_next
    log.open_order_ids = tuple(world.open_order_ids())
    log.world_stats = dict(world.stats)
    log.wall_s = time.perf_counter() - wall_start
    return log
