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
from tests.model_sets import tiny_models

DAY_MS = 86_400_000


def _train(log: Path, registry: Path, *extra: str) -> int:
    common = ["--train", str(log), "--registry", str(registry), "--no-progress"]
    return main(["train", "--dataset", "events", *common, *extra])


def _printed(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_a_set_trained_from_an_event_log_as_a_candidate_runs_in_shadow(
    tmp_path: Path, event_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The staged set is published as one version; the one served before it is pinned."""
    registry = tmp_path / "models"
    ModelRegistry(registry).publish_set(tiny_models())
    assert _train(event_log, registry, "--candidate") == 0
    printed = _printed(capsys)
    assert printed["kinds"] == ["prep", "total", "travel"]
    assert (printed["version"], printed["served"], printed["candidate"]) == (
        "v0002",
        "v0001",
        "v0002",
    )
    loaded = ModelRegistry(registry)
    loaded.refresh()
    served, candidate = loaded.current_set(), loaded.candidate_set()
    assert served is not None and served.version == "v0001"
    assert candidate is not None and sorted(candidate.models) == ["prep", "total", "travel"]


def test_promoting_the_candidate_serves_it_and_ends_the_shadow_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`models promote` pins the version and clears it as the candidate."""
    registry = tmp_path / "models"
    published = ModelRegistry(registry)
    for _ in range(2):
        published.publish_set(tiny_models())
    published.pin("v0001")
    published.set_candidate("v0002")
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
