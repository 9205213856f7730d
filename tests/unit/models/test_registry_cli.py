"""`dispatchflow train --dataset events` and `dispatchflow models`: publish, shadow, promote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dispatchflow.cli import main
from features.offline import write_event_log
from features.synthetic import generate_event_log
from models.registry import ModelRegistry

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-day synthetic event log."""
    events = generate_event_log(
        np.random.default_rng(4), n_orders=200, duration_ms=3 * DAY_MS, n_couriers=6
    )
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    write_event_log(path, events)
    return path


def _train(log: Path, registry: Path, *extra: str) -> int:
    common = ["--train", str(log), "--registry", str(registry), "--no-progress"]
    return main(["train", "--dataset", "events", *common, *extra])


def _printed(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_training_from_an_event_log_publishes_the_staged_set_and_a_candidate_waits_in_shadow(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first set serves; one trained with --candidate runs in shadow, the first pinned."""
    registry = tmp_path / "models"
    assert _train(log, registry) == 0
    first = _printed(capsys)
    assert first["version"] == "v0001" and first["served"] == "v0001"
    assert first["kinds"] == ["prep", "total", "travel"]
    assert _train(log, registry, "--candidate") == 0
    second = _printed(capsys)
    assert (second["version"], second["served"], second["candidate"]) == (
        "v0002",
        "v0001",
        "v0002",
    )
    loaded = ModelRegistry(registry)
    loaded.refresh()
    served, candidate = loaded.current_set(), loaded.candidate_set()
    assert served is not None and served.version == "v0001"
    assert candidate is not None and candidate.version == "v0002"


def test_promoting_the_candidate_serves_it_and_ends_the_shadow_run(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`models promote` pins the version and clears it as the candidate."""
    registry = tmp_path / "models"
    assert _train(log, registry) == 0
    assert _train(log, registry, "--candidate") == 0
    capsys.readouterr()
    assert main(["models", "promote", "--registry", str(registry), "v0002"]) == 0
    state = _printed(capsys)
    assert (state["served"], state["pinned"], state["candidate"]) == ("v0002", "v0002", None)


def test_promoting_an_unknown_version_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version the registry does not hold is refused, nothing changes."""
    assert main(["models", "promote", "--registry", str(tmp_path), "v0009"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown version 'v0009'")


def test_a_log_of_too_few_days_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training needs more days than the calibration window."""
    events = generate_event_log(np.random.default_rng(5), n_orders=30, n_couriers=3)
    path = tmp_path / "short.jsonl"
    write_event_log(path, events)
    assert _train(path, tmp_path / "models") == 1
    assert "need more than 2 days" in capsys.readouterr().err
