import numpy as np

from models.bench import selection_figures
from models.residual import ResidualQuantileModel
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
