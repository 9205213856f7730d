from pathlib import Path

import numpy as np

from features.offline import write_event_log
from features.synthetic import generate_event_log
from models.bench import PREP_CALIBRATION, selection_figures, train_prep_from_log
from models.residual import ResidualQuantileModel, TrainConfig
from models.selection import CalibrationCandidate

from .conftest import select_travel, synthetic_legs


def test_bench_figures_carry_the_calibration_choice() -> None:
    """The bench JSON keys name the chosen candidate and its validation coverage."""
    model, choice = select_travel(
        synthetic_legs(np.random.default_rng(11), 1000),
        (
            CalibrationCandidate("a", calibration_days=8.0),
            CalibrationCandidate("b", calibration_days=12.0),
        ),
    )
    figures = selection_figures(model)
    score = choice.chosen_score
    assert score is not None
    assert figures["calibration_choice"] == choice.candidate.name
    assert figures["validation_p90_coverage"] == score.p90_coverage
    assert [c["name"] for c in figures["calibration_selection"]["candidates"]] == ["a", "b"]


def test_model_without_selection_reports_no_choice(travel_model: ResidualQuantileModel) -> None:
    """A model trained with fixed settings reports null choice keys rather than inventing one."""
    figures = selection_figures(travel_model)
    assert figures == {"calibration_choice": None, "validation_p90_coverage": None}


def test_prep_model_from_an_event_log_chooses_from_its_grid(tmp_path: Path) -> None:
    """Training from an event log runs the calibration selection and records the outcome."""
    events = generate_event_log(
        np.random.default_rng(2), n_orders=400, duration_ms=4 * 86_400_000, n_couriers=6
    )
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    small = TrainConfig(rounds_p50=20, rounds_p90=20, max_depth=3, nthread=1)
    model = train_prep_from_log(log, progress=False, config=small)
    sel = model.metadata["calibration_selection"]
    assert sel["calibration_choice"] in {c.name for c in PREP_CALIBRATION}
    assert sel["validated"] == (sel["validation_p90_coverage"] is not None)
