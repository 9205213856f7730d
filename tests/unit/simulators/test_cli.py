"""`dispatchflow replay mdrp` end to end on one small instance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatchflow.cli import main
from simulators.mdrp.metrics import METRIC_KEYS

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO / "tests" / "data" / "shared"
SMALL = SHARED / "benchmarks" / "mdrp" / "instances" / "0o50t75s1p100"


def _local(tmp_path: Path) -> list[str]:
    """Options that keep a replay in `tmp_path`, on the test data, in one quiet process."""
    return [
        "--plots",
        str(tmp_path / "plots"),
        "--shared",
        str(SHARED),
        "--workers",
        "1",
        "--no-progress",
    ]


def test_replay_writes_json_solutions_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints the table and writes JSON in the agreed schema, solutions and PNGs."""
    out = tmp_path / "mdrp.json"
    code = main(
        [
            "replay",
            "mdrp",
            str(SMALL),
            "--json",
            str(out),
            "--solutions",
            str(tmp_path / "sol"),
            *_local(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "ctod_mean" in printed and "greedy" in printed and "paper" in printed
    assert "where click-to-door minutes go" in printed and "wait_at_placement" in printed
    assert "food waiting by preparation time" in printed
    assert "food waiting by merchant's earlier orders" in printed
    payload = json.loads(out.read_text())
    assert set(payload) == {"instances", "mean"}
    keys = {"name", "orders", *METRIC_KEYS, "valid"}
    assert all(set(row) == keys for row in payload["instances"])
    assert set(payload["mean"]) == keys - {"name"}
    assert json.loads((tmp_path / "mdrp.greedy.json").read_text())["instances"]
    for name in ("assignments", "orders", "couriers"):
        assert (tmp_path / "sol" / SMALL.name / f"solution_info_{name}.txt").is_file()
    for png in (tmp_path / "plots").glob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "plots").glob("*.png"))) == 5
    assert (tmp_path / "plots" / "ctod_breakdown.png").is_file()
    assert (tmp_path / "plots" / "food_wait_bands.png").is_file()


def test_replay_reports_bad_paths_and_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing instance path or an unknown policy is a clear error with exit code 2."""
    assert main(["replay", "mdrp", str(tmp_path / "nope"), "--shared", str(SHARED)]) == 2
    assert main(["replay", "mdrp", str(SMALL), "--policy", "nope", "--shared", str(SHARED)]) == 2
    assert "error:" in capsys.readouterr().err


def test_replay_settings_change_the_evaluated_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--set reaches the simulated policy and names the results after the variant.

    The default policy set to behave as greedy scores exactly what greedy scores.
    """
    as_greedy = ["mode=greedy", "bundling=false", "jit=false", "reposition=false"]
    out = tmp_path / "mdrp.json"
    args = ["replay", "mdrp", str(SMALL), "--json", str(out), *_local(tmp_path)]
    code = main([*args, *(item for s in as_greedy for item in ("--set", s))])
    assert code == 0
    assert f"default[{','.join(as_greedy)}]" in capsys.readouterr().out
    variant = json.loads(out.read_text())
    greedy = json.loads((tmp_path / "mdrp.greedy.json").read_text())
    assert variant == greedy
    assert main([*args, "--baseline", "none"]) == 0
    assert json.loads(out.read_text()) != greedy


def test_replay_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """A --set naming no policy field is a clear error with exit code 2."""
    args = ["replay", "mdrp", str(SMALL), "--set", "nope=1", "--shared", str(SHARED)]
    assert main(args) == 2
    assert "no field 'nope'" in capsys.readouterr().err


def test_replay_rejects_a_baseline_equal_to_the_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Comparing a policy with itself is a usage error with exit code 2."""
    args = ["replay", "mdrp", str(SMALL), "--policy", "greedy", "--shared", str(SHARED)]
    assert main([*args, "--baseline", "greedy"]) == 2
    assert "--baseline is the evaluated policy" in capsys.readouterr().err


def test_replay_foresight_is_labelled_a_diagnostic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--foresight-min runs, and both the table and stderr say the results are a diagnostic."""
    code = main(
        [
            "replay",
            "mdrp",
            str(SMALL),
            "--foresight-min",
            "5",
            "--baseline",
            "none",
            *_local(tmp_path),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "orders seen 5 min early (diagnostic)" in captured.out
    assert "not benchmark results" in captured.err


def test_replay_rejects_negative_foresight(capsys: pytest.CaptureFixture[str]) -> None:
    """A negative --foresight-min is a clear error with exit code 2."""
    args = ["replay", "mdrp", str(SMALL), "--foresight-min", "-1", "--shared", str(SHARED)]
    assert main(args) == 2
    assert "--foresight-min" in capsys.readouterr().err
