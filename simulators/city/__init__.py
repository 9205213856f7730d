"""City simulator: a seeded, event-time city that drives a dispatcher and measures it.

The simulator produces the system's input events (orders, merchants, courier shifts, gateway
ping batches, deliveries, dispatch ticks) and plays the courier app against the dispatcher's
outputs, speaking only through the event contracts::

    from simulators.city import lunch_rush, run_simulation, write_report

    log = run_simulation(lunch_rush(seed=7), dispatch)   # dispatch: any `Dispatch`
    write_report(log, Path("reports/lunch"), invariant_violations=checked)

* `CityConfig` (frozen, validated; `ConfigError` on bad values) and the `lunch_rush()` preset.
* `Dispatch.run_until(inputs, until_ts_ms) -> outputs` is what a dispatcher implements;
  `SimRecord(topic, key, event)` is one record either way.
* `run_simulation(config, dispatch, progress=True) -> SimulationLog`: tick by tick in event
  time, then a bounded drain; deterministic for a seed and a deterministic dispatcher.
* `compute_kpis(log, invariant_violations=..., ...)`: the KPI dict (definitions in
  `simulators.city.kpis`); `write_report(log, folder, ...)`: `kpis.json`, `kpis.md` and PNGs.
"""

from simulators.city.config import PRESETS, CityConfig, ConfigError, lunch_rush, small_town
from simulators.city.kpis import compute_kpis
from simulators.city.protocol import Dispatch, SimRecord
from simulators.city.report import kpi_table, write_report
from simulators.city.runner import SimulationLog, run_simulation
from simulators.city.world import CityWorld, SimulationError

__all__ = [
    "PRESETS",
    "CityConfig",
    "CityWorld",
    "ConfigError",
    "Dispatch",
    "SimRecord",
    "SimulationError",
    "SimulationLog",
    "compute_kpis",
    "kpi_table",
    "lunch_rush",
    "run_simulation",
    "small_town",
    "write_report",
]
