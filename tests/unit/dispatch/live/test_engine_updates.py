"""The live shard engine's periodic outputs: ETA updates on their cadence, surge by zone."""

from __future__ import annotations

from pathlib import Path

from dispatch.live.engine_config import EngineConfig
from features.definitions import supply_demand_ratio, surge_multiplier
from tests.unit.dispatch.live.shard_world import (
    T0,
    S,
    World,
    committed,
    of_type,
    offset,
)


def test_eta_updates_are_only_emitted_on_cadence_ticks(tmp_path: Path) -> None:
    """Ticks whose count is not a multiple of `eta_update_every_ticks` emit no ETA update."""
    config = EngineConfig(eta_update_every_ticks=4)
    with World(root=tmp_path, config=config) as w:
        proposal = committed(w)  # tick 1
        w.picked_up("o1", "c1", proposal["route"][0]["planned_ts_ms"] + 600 * S)
        for n in range(2, 13):
            effects = w.tick(T0 + 700 * S + n * S)
            if n % 4:
                assert of_type(effects, "eta_update") == [], n
        assert len(w.emitted("eta_update")) >= 1


def test_a_changed_eta_is_announced_at_the_next_cadence_tick(tmp_path: Path) -> None:
    """A late pickup moves the drop-off plan; the next cadence tick announces the new ETA."""
    config = EngineConfig(eta_update_every_ticks=2)
    with World(root=tmp_path, config=config) as w:
        proposal = committed(w)  # tick 1
        late_ms = 10 * 60 * S
        w.picked_up("o1", "c1", proposal["route"][0]["planned_ts_ms"] + late_ms)
        [update] = of_type(w.tick(T0 + 200 * S), "eta_update")  # tick 2
        planned = proposal["route"][1]["planned_ts_ms"] + late_ms
        assert (update["order_id"], update["dropoff_p50_ts_ms"]) == ("o1", planned)
        assert update["dropoff_p90_ts_ms"] >= update["dropoff_p50_ts_ms"]


def test_surge_multipliers_stay_within_one_and_surge_max(tmp_path: Path) -> None:
    """Heavy unmet demand raises the zone's multiplier above 1 but never past `surge_max`."""
    config = EngineConfig(surge_every_ticks=2, surge_max=1.6, surge_smoothing=0.7)
    with World(root=tmp_path, config=config) as w:
        for i in range(40):
            w.create(f"o{i}", T0, prep_s=3_000.0)
        w.online("c1", T0, at=offset(0.0, 3_000.0))
        for n in range(1, 21):
            effects = w.tick(T0 + n * 2 * S)
            assert n % 2 == 0 or of_type(effects, "surge_update") == []
        multipliers = [e["multiplier"] for e in w.emitted("surge_update")]
        assert multipliers and max(multipliers) > 1.0
        assert all(1.0 <= m <= config.surge_max for m in multipliers)


def test_surge_prices_the_zone_supply_and_demand_features(tmp_path: Path) -> None:
    """A zone's surge is the feature layer's multiplier of the zone's supply/demand features."""
    config = EngineConfig(surge_every_ticks=1, surge_max=3.0, surge_smoothing=1.0)
    with World(root=tmp_path, config=config) as w:
        for i in range(6):
            w.create(f"o{i}", T0, prep_s=3_000.0)
        w.online("c1", T0, at=offset(50.0, 0.0))  # in the merchant's zone
        w.online("c2", T0, at=offset(0.0, 3_000.0))
        [update] = [u for u in of_type(w.tick(T0 + S), "surge_update") if u["demand"]]
        supply, demand = w.features.zone_supply_demand(update["zone"], T0 + S)
        assert (update["supply"], update["demand"]) == (supply, demand) == (1, 6)
        ratio = supply_demand_ratio(supply, demand)
        assert ratio is not None
        assert update["multiplier"] == round(surge_multiplier(ratio, config.surge_max), 3)
