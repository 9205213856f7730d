"""The report of a simulation run, written into one folder.

Files: `kpis.json` (every KPI), `kpis.md` (the KPI table), `ctod.png` (click-to-door
distribution and lateness), `eta_calibration.png` (announced p50/p90 against realized) and
`map.png` (one moment: couriers by state, open orders, assignments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulators.city.kpis import EtaSource, compute_kpis, eta_samples, order_outcomes
from simulators.city.moment import busiest_tick_ts_ms, moment_at
from simulators.city.plots import ctod_plot, eta_calibration_plot, local_clock, map_plot
from simulators.city.runner import SimulationLog

#: KPIs shown first in the table, with their labels.
HEADLINE = (
    ("orders", "orders"),
    ("delivered", "delivered"),
    ("cancelled", "cancelled"),
    ("expired", "expired"),
    ("open_at_end", "open at end"),
    ("on_time_rate", "on-time rate"),
    ("ctod_p50_min", "click-to-door p50 (min)"),
    ("ctod_p90_min", "click-to-door p90 (min)"),
    ("acceptance_rate", "acceptance rate"),
    ("courier_utilization", "courier utilization"),
    ("eta_p50_abs_err_min", "ETA p50 abs error (min)"),
    ("eta_p90_abs_err_min", "ETA p90 abs error (min)"),
    ("eta_p90_coverage", "ETA p90 coverage"),
    ("fallback_rate", "fallback rate"),
    ("fallback_reasons", "fallbacks by reason"),
    ("circuit_breaker_ticks", "circuit-breaker ticks"),
    ("invariant_violations", "invariant violations"),
)

_RATES = {"on_time_rate", "acceptance_rate", "courier_utilization", "eta_p90_coverage"}


def _format(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in _RATES or key == "fallback_rate":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


def kpi_table(kpis: dict[str, Any]) -> str:
    """The KPIs as a markdown table: the headline KPIs first, then the others."""
    rows = ["| KPI | value |", "| --- | ---: |"]
    shown = set()
    for key, label in HEADLINE:
        if key in kpis:
            rows.append(f"| {label} | {_format(key, kpis[key])} |")
            shown.add(key)
    for key, value in kpis.items():
        if key not in shown:
            rows.append(f"| {key} | {_format(key, value)} |")
    return "\n".join(rows) + "\n"


def write_report(
    log: SimulationLog,
    folder: Path,
    *,
    invariant_violations: int | None = None,
    circuit_breaker_ticks: int | None = None,
    eta_source: EtaSource = "proposal",
    moment_ts_ms: int | None = None,
    echo: bool = True,
) -> dict[str, Path]:
    """Write the run's report into `folder` (created if needed); return the files by name.

    Args:
        log: the run.
        folder: where the files go.
        invariant_violations: the consistency checker's count, if it ran.
        circuit_breaker_ticks: the dispatcher's count, if known (else read from the outputs).
        eta_source: which announced ETA the ETA KPIs use (see `simulators.city.kpis`).
        moment_ts_ms: time of the map; default: the tick with the most open orders.
        echo: also print the KPI table.
    """
    folder.mkdir(parents=True, exist_ok=True)
    kpis = compute_kpis(
        log,
        invariant_violations=invariant_violations,
        circuit_breaker_ticks=circuit_breaker_ticks,
        eta_source=eta_source,
    )
    kpis["world"] = dict(log.world_stats)
    outcomes = order_outcomes(log)
    when = moment_ts_ms if moment_ts_ms is not None else busiest_tick_ts_ms(log)
    files = {
        "kpis.json": folder / "kpis.json",
        "kpis.md": folder / "kpis.md",
        "ctod.png": folder / "ctod.png",
        "eta_calibration.png": folder / "eta_calibration.png",
        "map.png": folder / "map.png",
    }
    files["kpis.json"].write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
    table = kpi_table(kpis)
    title = (
        f"# {log.config.name} (seed {log.config.seed}): "
        f"{local_clock(log.config, log.start_ts_ms)}-{local_clock(log.config, log.end_ts_ms)} "
        "local\n\n"
    )
    files["kpis.md"].write_text(title + table, encoding="utf-8")
    ctod_plot(list(outcomes.values()), files["ctod.png"])
    eta_calibration_plot(eta_samples(log, outcomes, eta_source), files["eta_calibration.png"])
    map_plot(moment_at(log, when), log.config, files["map.png"])
    if echo:
        print(title + table)
        print(f"report written to {folder}")
    return files
