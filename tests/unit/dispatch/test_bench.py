"""The latency benchmark (with injected clocks)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from dispatch.bench import TickRun, measure
from dispatch.policy import DEFAULT_POLICY
from dispatch.synthetic import ShardShape
from dispatchflow.cli import main


def test_measure_times_every_measured_tick_with_the_injected_clocks() -> None:
    """With a clock advancing 5 ms per reading, every tick takes 5 ms."""
    ticks = itertools.count(step=0.005)
    row = measure(
        ShardShape(5, 10),
        DEFAULT_POLICY,
        TickRun(seed=0, warmup=1, ticks=3, wall_clock=lambda: next(ticks), cpu_clock=lambda: 0.0),
    )
    assert row.ticks == 3
    assert abs(row.p50_ms - 5.0) < 1e-6 and abs(row.p99_ms - 5.0) < 1e-6
    assert set(row.as_json()) == {"orders", "couriers", "p50_ms", "p99_ms"}


def test_bench_command_writes_json_rows(tmp_path: Path) -> None:
    """`dispatchflow bench dispatch` writes one JSON row per size with the four keys."""
    out = tmp_path / "dispatch.json"
    code = main(
        [
            "bench",
            "dispatch",
            "--orders",
            "5",
            "8",
            "--couriers",
            "20",
            "--ticks",
            "2",
            "--warmup",
            "0",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "p.png"),
            "--no-progress",
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["orders"] for r in rows] == [5, 8]
    assert all(set(r) == {"orders", "couriers", "p50_ms", "p99_ms"} for r in rows)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_command_rejects_bad_sizes() -> None:
    """Non-positive sizes are a usage error, not a crash."""
    assert main(["bench", "dispatch", "--orders", "0", "--no-progress"]) == 2


def test_bench_command_times_the_policy_with_its_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--set changes the timed policy, and the table names the variant."""
    args = ["bench", "dispatch", "--orders", "5", "--couriers", "20", "--ticks", "1"]
    args += ["--json", str(tmp_path / "d.json"), "--plot", str(tmp_path / "p.png")]
    assert main([*args, "--set", "max_candidates=24", "--no-progress"]) == 0
    assert "default[max_candidates=24]" in capsys.readouterr().out


def test_bench_command_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """A --set naming no policy field is a usage error saying so."""
    assert main(["bench", "dispatch", "--set", "nope=1", "--no-progress"]) == 2
    assert "no field 'nope'" in capsys.readouterr().err
