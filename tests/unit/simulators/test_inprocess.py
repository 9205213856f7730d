"""The in-process driver decides the same whatever the machine's speed."""

from __future__ import annotations

from pathlib import Path

from dispatch.live.engine_config import EngineConfig
from dispatch.live.worker import WorkerConfig
from simulators.city.protocol import SimRecord
from simulators.inprocess import InProcessDispatch
from tests import events
from tests.unit.dispatch.live.core_world import LAT, LON, SHARD, T0, event

S = 1_000
COURIERS = 50


def crowded_shard() -> list[SimRecord]:
    """50 couriers online and pinging near 50 open orders, then three ticks."""
    records: list[SimRecord] = []
    fixes = []
    for i in range(COURIERS):
        lat, lon = LAT + 0.0004 * (i % 10), LON + 0.0005 * (i // 10)
        courier = events.courier_online(f"c{i}", T0, lat=lat, lon=lon)
        records.append(SimRecord("courier_events", f"c{i}".encode(), courier))
        fixes.append(events.fix(f"c{i}", T0 + S, lat=lat, lon=lon))
        order = events.order_created(f"o{i}", T0 + S, lat=LAT, lon=LON)
        records.append(SimRecord("order_events", SHARD.encode(), order))
    records.append(SimRecord("courier_pings", b"gw", events.ping_batch("b1", T0 + S, fixes)))
    for n in (1, 2, 3):
        tick = event("dispatch_tick", f"tick-{n}", T0 + (1 + n) * S, shard=SHARD)
        records.append(SimRecord("dispatch_ticks", SHARD.encode(), tick))
    return records


def test_no_in_process_tick_is_decided_by_the_circuit_breaker(tmp_path: Path) -> None:
    """However far over its budget a tick runs, an in-process run never falls back to greedy.

    The ticks are large enough (orders × couriers) to teach a timed breaker its cost rate,
    and no tick meets the budget: a breaker timed by the wall clock would decide greedily.
    """
    config = WorkerConfig(engine=EngineConfig(tick_budget_s=1e-9))
    dispatch = InProcessDispatch(config, workdir=tmp_path)
    try:
        dispatch.run_until(crowded_shard(), T0 + 10 * S)
        assert dispatch.telemetry.counts["ticks"] == 3
        assert dispatch.telemetry.counts["circuit_breaker_ticks"] == 0
    finally:
        dispatch.close()
