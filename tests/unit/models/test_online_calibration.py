import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.online_calibration import (
    OnlineCalibratedModel,
    OnlineCalibrationError,
    OnlineMarginTracker,
    score_scale_of,
    tracker_for,
)
from models.residual import ResidualQuantileModel, TrainingData

from .conftest import synthetic_legs

T0 = 1_700_000_000_000


def test_outcome_completed_at_or_after_request_time_is_not_used() -> None:
    """An outcome moves the offset only for requests strictly after its completion time."""
    tracker = OnlineMarginTracker(step=1.0)
    tracker.record(T0 + 1000, missed=True)
    assert tracker.offset_at(T0 + 999) == 0.0
    assert tracker.offset_at(T0 + 1000) == 0.0
    assert tracker.offset_at(T0 + 1001) == pytest.approx(0.9)


def test_late_request_never_sees_outcomes_completed_after_it() -> None:
    """A request older than one already served gets an offset from earlier outcomes only."""
    tracker = OnlineMarginTracker(step=1.0)
    tracker.record(T0 + 100, missed=True)
    tracker.record(T0 + 500, missed=True)
    early = tracker.offset_at(T0 + 200)
    assert tracker.offset_at(T0 + 1000) == pytest.approx(1.8)
    assert tracker.offset_at(T0 + 300) == pytest.approx(early)
    assert tracker.offset_at(T0 + 50) == 0.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.booleans()), min_size=1, max_size=60))
def test_offset_is_step_times_sum_of_miss_minus_alpha(outcomes: list[tuple[int, bool]]) -> None:
    """Unbounded, the offset equals step × Σ(miss − (1 − coverage)) over outcomes applied."""
    tracker = OnlineMarginTracker(step=0.5, coverage=0.9)
    for done, missed in outcomes:
        tracker.record(T0 + done, missed)
    expected = 0.5 * sum(float(m) - 0.1 for _, m in outcomes)
    assert tracker.offset_at(T0 + 10_001) == pytest.approx(expected)
    assert tracker.state().pending == 0


def test_offset_stays_within_its_bound() -> None:
    """A feed of misses alone cannot push the offset past max_offset."""
    tracker = OnlineMarginTracker(step=1.0, max_offset=3.0)
    for i in range(100):
        tracker.record(T0 + i, missed=True)
    assert tracker.offset_at(T0 + 1000) == 3.0


@pytest.mark.parametrize(
    "kwargs", [{"step": 0.0}, {"step": float("nan")}, {"step": 1.0, "coverage": 1.0}]
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    """Non-positive or non-finite steps and coverage outside (0, 1) raise a typed error."""
    with pytest.raises(OnlineCalibrationError):
        OnlineMarginTracker(**kwargs)


def test_coverage_converges_on_a_stationary_stream() -> None:
    """From a far too small margin, served coverage settles near the target (stationary)."""
    rng = np.random.default_rng(3)
    tracker = OnlineMarginTracker(step=0.05, coverage=0.9)
    covered = []
    for i in range(6000):
        now = T0 + i * 60_000
        margin = tracker.offset_at(now)  # static margin 0: covers half of N(0, 1)
        score = rng.normal()
        covered.append(score <= margin)
        tracker.record(now + 30 * 60_000, bool(score > margin))
    late = np.mean(covered[3000:])
    assert 0.87 <= late <= 0.93


def _shifted(data: TrainingData, factor: float) -> TrainingData:
    return TrainingData(
        data.features, data.base_eta_s, data.actual_s * factor, data.ts_ms, data.feature_names
    )


def test_replay_prediction_ignores_outcomes_not_yet_completed(
    travel_model: ResidualQuantileModel,
) -> None:
    """A row's served p90 changes only with outcomes completed before its request time."""
    rows = synthetic_legs(np.random.default_rng(11), 40, days=1.0)
    ts = rows.ts_ms.copy()
    actual = np.full(40, 10_800.0)  # three hours: several later requests precede completion
    far = actual.copy()
    far[0] = 1e6  # row 0 now completes after every other request
    a = OnlineCalibratedModel(travel_model).replay(rows.features, rows.base_eta_s, ts, actual)
    b = OnlineCalibratedModel(travel_model).replay(rows.features, rows.base_eta_s, ts, far)
    done0 = ts[0] + 10_800_000
    before, after = ts <= done0, ts > done0
    assert before.sum() >= 2 and after.any()
    # Until row 0 completes in `a`, both replays have seen the same outcomes.
    np.testing.assert_array_equal(a.p90_s[before], b.p90_s[before])
    np.testing.assert_array_equal(a.p50_s, b.p50_s)
    assert np.any(a.p90_s[after] != b.p90_s[after])


def test_replay_recovers_coverage_after_a_shift(travel_model: ResidualQuantileModel) -> None:
    """When durations grow 30 % after training, the online p90 regains ~90 % coverage."""
    rows = _shifted(synthetic_legs(np.random.default_rng(12), 4000, days=20.0), 1.3)
    static = travel_model.predict(rows.features, rows.base_eta_s)
    online = OnlineCalibratedModel(travel_model).replay(
        rows.features, rows.base_eta_s, rows.ts_ms, rows.actual_s
    )
    late = slice(2000, None)
    cov_static = np.mean(rows.actual_s[late] <= static.p90_s[late])
    cov_online = np.mean(rows.actual_s[late] <= online.p90_s[late])
    assert cov_static < 0.85
    assert 0.86 <= cov_online <= 0.94


def test_tracker_step_scales_with_the_models_scores(travel_model: ResidualQuantileModel) -> None:
    """The default tracker's step is the learning rate times the model's score scale."""
    tracker = tracker_for(travel_model, learning_rate=0.1)
    assert tracker.step == pytest.approx(0.1 * score_scale_of(travel_model))
    assert score_scale_of(travel_model) > 0.0
