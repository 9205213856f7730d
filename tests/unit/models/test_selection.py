from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.residual import ClampConfig, ResidualTrainer, Target, TrainConfig, TrainingData
from models.selection import (
    CalibrationCandidate,
    CandidateScore,
    ValidationDesign,
    describe_selection,
    pick,
    rolling_folds,
)

from .conftest import SMALL, START_MS, fit_travel, select_travel, synthetic_legs

DAY_MS = 86_400_000
GRID = (
    CalibrationCandidate("split-10d", calibration_days=10.0, calibration_blocks=1),
    CalibrationCandidate("block-median-10d", calibration_days=10.0, calibration_blocks=5),
)


def _subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    return TrainingData(
        np.ascontiguousarray(data.features[rows]),
        data.base_eta_s[rows],
        data.actual_s[rows],
        data.ts_ms[rows],
        data.feature_names,
    )


def _regime_change(n: int = 1500, days: float = 40.0, change_day: float = 25.0) -> TrainingData:
    """Legs whose noise jumps from small to large at `change_day`."""
    data = synthetic_legs(np.random.default_rng(3), n, days=days)
    rng = np.random.default_rng(4)
    late = data.ts_ms >= START_MS + int(change_day * DAY_MS)
    sigma = np.where(late, 0.6, 0.05)
    actual = np.maximum(data.base_eta_s, 60.0) * 1.5 * np.exp(rng.normal(0.0, sigma))
    return replace(data, actual_s=actual)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=300),
    st.floats(0.02, 0.3),
    st.integers(1, 3),
)
def test_every_inner_row_precedes_its_validation_slice(
    ts: list[int], frac: float, folds: int
) -> None:
    """Rolling slices are disjoint, latest first, and train only on strictly earlier rows."""
    if frac * folds >= 1.0:
        return
    ts_ms = np.array(ts, dtype=np.int64)
    out = rolling_folds(ts_ms, ValidationDesign(validation_frac=frac, folds=folds))
    seen = np.zeros(ts_ms.size, dtype=bool)
    previous_start: int | None = None
    for inner, validation in out:
        assert validation.any() and not np.any(seen & validation)
        seen |= validation
        if inner.any():
            assert ts_ms[inner].max() < ts_ms[validation].min()
        assert not np.any(inner & validation)
        if previous_start is not None:
            assert ts_ms[validation].max() < previous_start
        previous_start = int(ts_ms[validation].min())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.floats(0.1, 30.0)),
        min_size=1,
        max_size=6,
    )
)
def test_pick_takes_the_coverage_closest_to_nominal_then_the_narrowest(
    rows: list[tuple[int, float]],
) -> None:
    """The pick has the least |coverage − 0.9|; among equals, the smallest p90 width."""
    n = 200
    scores = [
        CandidateScore(name=f"c{i}", p90_coverage=k / n, covered_rows=k, p90_width_min=w)
        for i, (k, w) in enumerate(rows)
    ]
    chosen = scores[pick(scores, 0.9, n)]
    assert chosen.covered_rows is not None and chosen.p90_width_min is not None
    best = min(abs(k - 0.9 * n) for k, _ in rows)
    assert abs(chosen.covered_rows - 0.9 * n) == pytest.approx(best)
    ties = [w for k, w in rows if abs(abs(k - 0.9 * n) - best) < 1e-9]
    assert chosen.p90_width_min == min(ties)


def test_pick_ignores_candidates_without_validation_figures() -> None:
    """A candidate that could not be fitted is never picked."""
    scores = [
        CandidateScore(name="failed", error="window too long"),
        CandidateScore(name="ok", p90_coverage=0.5, covered_rows=50, p90_width_min=1.0),
    ]
    assert pick(scores, 0.9, 100) == 1


def test_selection_prefers_the_window_of_the_current_regime() -> None:
    """After the noise grows, the short recent window (which sees it) beats the long one."""
    data = _regime_change()
    grid = (
        CalibrationCandidate("long-20d", calibration_days=20.0),
        CalibrationCandidate("short-5d", calibration_days=5.0),
    )
    _, choice = select_travel(data, grid, ValidationDesign(validation_frac=0.1, folds=2))
    assert choice.validated
    assert choice.candidate.name == "short-5d"


def test_reported_validation_coverage_is_that_of_a_model_fitted_on_earlier_rows() -> None:
    """Each candidate's coverage equals a plain fit on the rows before the slice, scored on it."""
    data = synthetic_legs(np.random.default_rng(6), 1200)
    design = ValidationDesign(validation_frac=0.2, folds=1)
    _, choice = select_travel(data, GRID, design)
    [(inner, validation)] = rolling_folds(data.ts_ms, design)
    val = _subset(data, validation)
    for candidate, score in zip(GRID, choice.scores, strict=True):
        plain = fit_travel(_subset(data, inner), candidate.apply(SMALL))
        pred = plain.predict(val.features, val.base_eta_s)
        assert score.p90_coverage == pytest.approx(np.mean(val.actual_s <= pred.p90_s))


def test_final_model_is_the_chosen_settings_fitted_on_all_rows() -> None:
    """The served model predicts exactly as a plain fit of the chosen settings on all rows."""
    data = synthetic_legs(np.random.default_rng(7), 1200)
    model, choice = select_travel(data, GRID)
    plain = fit_travel(data, choice.candidate.apply(SMALL))
    a = model.predict(data.features, data.base_eta_s)
    b = plain.predict(data.features, data.base_eta_s)
    np.testing.assert_array_equal(a.p50_s, b.p50_s)
    np.testing.assert_array_equal(a.p90_s, b.p90_s)
    assert model.metadata["calibration_selection"]["calibration_choice"] == choice.candidate.name


def test_too_few_rows_fall_back_to_the_first_candidate_and_say_so() -> None:
    """Without enough rows to validate, the first candidate is used and marked unvalidated."""
    data = synthetic_legs(np.random.default_rng(8), 70)
    model, choice = select_travel(data, GRID)
    assert not choice.validated
    assert choice.candidate is GRID[0]
    assert choice.note
    sel = model.metadata["calibration_selection"]
    assert sel["validation_p90_coverage"] is None
    assert "not validated" in describe_selection(sel)


def test_candidates_differing_in_calibration_alone_share_boosters() -> None:
    """Block and bin counts reuse the fitted boosters; only the margin is recomputed."""
    data = synthetic_legs(np.random.default_rng(9), 800)
    trainer = ResidualTrainer(data, target=Target.LOG_RATIO, config=SMALL)
    a = trainer.model(GRID[0].apply(SMALL), kind="travel", clamp=ClampConfig())
    b = trainer.model(GRID[1].apply(SMALL), kind="travel", clamp=ClampConfig())
    assert a.booster_p50 is b.booster_p50 and a.booster_p90 is b.booster_p90
    assert trainer.rounds_for([10.0]) == 0


def test_trainer_rejects_a_changed_booster_setting() -> None:
    """A config that changes what a booster learns is refused, not silently shared."""
    data = synthetic_legs(np.random.default_rng(10), 300)
    trainer = ResidualTrainer(data, target=Target.LOG_RATIO, config=SMALL)
    with pytest.raises(ValueError, match="only in"):
        trainer.model(replace(SMALL, max_depth=2), kind="travel", clamp=ClampConfig())


def test_candidate_sets_only_calibration_settings() -> None:
    """Applying a candidate leaves every booster hyper-parameter unchanged."""
    cfg = TrainConfig(p90_bins=6, max_depth=3)
    out = CalibrationCandidate("x", calibration_days=3.0, calibration_blocks=2).apply(cfg)
    assert (out.calibration_days, out.calibration_blocks, out.p90_bins) == (3.0, 2, 6)
    assert replace(out, calibration_days=7.0, calibration_blocks=7) == cfg


def test_invalid_validation_design_is_a_clear_error() -> None:
    """Slices that would cover all training rows are refused with a ValueError."""
    with pytest.raises(ValueError, match="validation_frac"):
        ValidationDesign(validation_frac=0.5, folds=2)
