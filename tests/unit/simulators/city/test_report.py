from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.city.kpis import compute_kpis
from simulators.city.report import kpi_table, write_report
from simulators.city.runner import SimulationLog
from tests.unit.simulators.city.conftest import Run, small_config

FILES = {"kpis.json", "kpis.md", "ctod.png", "eta_calibration.png", "map.png"}


def test_the_report_writes_its_files(
    small_run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kpis.json, the markdown table and three PNGs land in the folder; the table is printed."""
    files = write_report(small_run.log, tmp_path / "out", invariant_violations=0)
    assert set(files) == FILES
    for name in FILES:
        assert (tmp_path / "out" / name).stat().st_size > 0
        if name.endswith(".png"):
            assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "on-time rate" in capsys.readouterr().out


def test_kpis_json_holds_the_computed_kpis(small_run: Run, tmp_path: Path) -> None:
    """kpis.json is compute_kpis' result plus the world's counters."""
    write_report(small_run.log, tmp_path, invariant_violations=0, echo=False)
    written = json.loads((tmp_path / "kpis.json").read_text())
    expected = compute_kpis(small_run.log, invariant_violations=0)
    assert {k: written[k] for k in expected} == json.loads(json.dumps(expected))
    assert written["world"] == small_run.log.world_stats


def test_a_run_without_deliveries_still_reports(tmp_path: Path) -> None:
    """An empty run writes every file, with n/a for undefined rates."""
    config = small_config()
    empty = SimulationLog(
        config,
        ("dr5r",),
        [],
        [],
        start_ts_ms=config.start_ts_ms,
        end_ts_ms=config.start_ts_ms + 60_000,
    )
    write_report(empty, tmp_path, echo=False)
    assert {p.name for p in tmp_path.iterdir()} == FILES
    assert "| on-time rate | n/a |" in (tmp_path / "kpis.md").read_text()


def test_the_table_lists_headline_kpis_first() -> None:
    """The markdown table starts with orders and formats rates as percentages."""
    table = kpi_table({"extra": 1, "on_time_rate": 0.9123, "orders": 10})
    lines = table.splitlines()
    assert lines[2] == "| orders | 10 |"
    assert lines[3] == "| on-time rate | 91.2% |"
    assert lines[4] == "| extra | 1 |"
