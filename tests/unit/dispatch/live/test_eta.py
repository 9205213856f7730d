"""Travel times for live dispatch (`ShardEta`, `StraightLinePredictor`) and `RouteCalibrator`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.live.eta import (
    FloatArray,
    LegPrediction,
    RouteCalibrator,
    ShardEta,
    StraightLinePredictor,
)
from tests.unit.dispatch.live.shard_world import LAT, LON, T0


@dataclass
class ScriptedPredictor:
    """A predictor answering with given values, whatever they are (NaN, infinite, negative)."""

    p50_s: FloatArray
    p90_s: FloatArray
    fallback: np.ndarray
    version: str = "scripted"

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
        context: Mapping[str, FloatArray] | None = None,
    ) -> LegPrediction:
        """The scripted answer (one value per leg)."""
        assert origin_lat.shape == self.p50_s.shape
        return LegPrediction(self.p50_s, self.p90_s, self.fallback)


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(0, 5),
    cols=st.integers(1, 5),
    data=st.data(),
)
def test_shard_eta_answers_finite_ordered_quantiles_for_any_prediction(
    rows: int, cols: int, data: st.DataObject
) -> None:
    """Whatever the predictor returns, p50 and p90 are finite, p50 >= 0, p90 >= p50, in shape."""
    n = rows * cols
    p50 = np.array(data.draw(st.lists(any_float, min_size=n, max_size=n)), dtype=np.float64)
    p90 = np.array(data.draw(st.lists(any_float, min_size=n, max_size=n)), dtype=np.float64)
    fallback = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    eta = ShardEta(ScriptedPredictor(p50, p90, fallback), LAT, LON, T0)
    origins = np.zeros((rows, 1, 2))
    destinations = np.stack([np.arange(cols) * 100.0, np.arange(cols) * 50.0], axis=-1)[None]
    quantiles = eta.travel_s(origins, destinations)
    assert quantiles.p50_s.shape == quantiles.p90_s.shape == (rows, cols)
    assert np.isfinite(quantiles.p50_s).all() and np.isfinite(quantiles.p90_s).all()
    assert (quantiles.p50_s >= 0).all() and (quantiles.p90_s >= quantiles.p50_s).all()
    assert (eta.legs, eta.fallbacks) == (n, int(fallback.sum()))


def test_shard_eta_replaces_a_nan_prediction_by_a_finite_one() -> None:
    """A predictor answering NaN everywhere yields zeros, not NaN, for both quantiles."""
    nan = np.full(3, np.nan)
    eta = ShardEta(ScriptedPredictor(nan, nan, np.ones(3, dtype=bool)), LAT, LON, T0)
    quantiles = eta.travel_s(np.zeros((3, 2)), np.ones((3, 2)) * 500.0)
    assert quantiles.p50_s.tolist() == [0.0] * 3 and quantiles.p90_s.tolist() == [0.0] * 3
    assert eta.fallbacks == 3


def test_shard_eta_of_no_legs_is_empty() -> None:
    """No origin/destination pairs give empty answers without calling the predictor."""
    empty = np.empty(0)
    eta = ShardEta(ScriptedPredictor(empty, empty, np.empty(0, dtype=bool)), LAT, LON, T0)
    quantiles = eta.travel_s(np.empty((0, 2)), np.empty((0, 2)))
    assert quantiles.p50_s.shape == (0,) and eta.legs == 0


@pytest.mark.parametrize("leg_m", [(1_000.0, 0.0), (0.0, 1_000.0), (3_000.0, -4_000.0)])
def test_shard_eta_presents_the_straight_line_in_planar_metres(leg_m: tuple[float, float]) -> None:
    """A leg of d metres in the shard's frame takes d × detour ÷ speed (p50), × p90_factor (p90)."""
    line = StraightLinePredictor(speed_mps=5.0, detour=1.3, p90_factor=1.4)
    eta = ShardEta(line, LAT, LON, T0)
    quantiles = eta.travel_s(np.array([[200.0, 100.0]]), np.array([[200.0, 100.0]]) + leg_m)
    expected_s = math.hypot(*leg_m) * 1.3 / 5.0
    assert quantiles.p50_s[0] == pytest.approx(expected_s, rel=0.005)
    assert quantiles.p90_s[0] == pytest.approx(expected_s * 1.4, rel=0.005)


def test_straight_line_takes_no_time_to_stay_put() -> None:
    """Origin equal to destination costs zero seconds and is not a fallback."""
    point = np.array([LAT]), np.array([LON])
    prediction = StraightLinePredictor().predict(*point, *point, T0)
    assert prediction.p50_s.tolist() == [0.0] and prediction.p90_s.tolist() == [0.0]
    assert prediction.fallback.tolist() == [False]


@pytest.mark.parametrize(
    "params", [{"speed_mps": 0.0}, {"speed_mps": -1.0}, {"detour": 0.9}, {"p90_factor": 0.5}]
)
def test_straight_line_rejects_impossible_parameters(params: dict[str, Any]) -> None:
    """Non-positive speed, detour below 1 or p90 factor below 1 is a ValueError."""
    with pytest.raises(ValueError, match="speed must be positive"):
        StraightLinePredictor(**params)


# ---------------------------------------------------------------------- calibration
def test_the_margin_is_zero_until_min_samples_deliveries() -> None:
    """With fewer than `min_samples` scores the margin is 0."""
    calibrator = RouteCalibrator(min_samples=30)
    for _ in range(29):
        calibrator.observe(1_000.0, 600.0)
    assert calibrator.margin_s == 0.0
    calibrator.observe(1_000.0, 600.0)
    assert calibrator.margin_s == pytest.approx(400.0)


def test_non_finite_deliveries_are_not_scored() -> None:
    """A NaN or infinite realized time or raw p90 adds no score."""
    calibrator = RouteCalibrator()
    for realized_s, raw_p90_s in [(math.nan, 1.0), (1.0, math.inf), (-math.inf, 1.0)]:
        calibrator.observe(realized_s, raw_p90_s)
    assert len(calibrator.scores) == 0


def test_the_calibrator_keeps_only_the_last_window_scores() -> None:
    """After more than `window` deliveries only the most recent `window` scores remain."""
    calibrator = RouteCalibrator(window=50, min_samples=10)
    for i in range(120):
        calibrator.observe(float(i), 0.0)
    assert list(calibrator.scores) == [float(i) for i in range(70, 120)]


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(st.floats(-5_000, 5_000), min_size=30, max_size=400),
    coverage=st.sampled_from([0.5, 0.8, 0.9, 0.95]),
)
def test_the_margin_covers_at_least_coverage_of_the_kept_scores(
    scores: list[float], coverage: float
) -> None:
    """At least a `coverage` share of the scores in the window are at or below the margin."""
    calibrator = RouteCalibrator(coverage=coverage, window=300, min_samples=30)
    for score in scores:
        calibrator.observe(score, 0.0)
    kept = np.fromiter(calibrator.scores, dtype=np.float64)
    assert float(np.mean(kept <= calibrator.margin_s)) >= coverage


def test_raw_p90_plus_margin_covers_about_90_percent_of_a_stationary_stream() -> None:
    """On fresh deliveries of a stationary stream, raw p90 + margin covers ~90% (raw alone less)."""
    rng = np.random.default_rng(20240605)
    covered_raw: list[float] = []
    covered: list[float] = []
    for _ in range(20):
        calibrator = RouteCalibrator(coverage=0.9, window=300, min_samples=30)
        raw_p90_s = rng.uniform(600.0, 1_800.0, size=300)
        realized_s = raw_p90_s * rng.lognormal(0.1, 0.25, size=300)  # p90 too optimistic
        for r, p in zip(realized_s, raw_p90_s, strict=True):
            calibrator.observe(float(r), float(p))
        fresh_p90_s = rng.uniform(600.0, 1_800.0, size=5_000)
        fresh_s = fresh_p90_s * rng.lognormal(0.1, 0.25, size=5_000)
        covered_raw.append(float(np.mean(fresh_s <= fresh_p90_s)))
        covered.append(float(np.mean(fresh_s <= fresh_p90_s + calibrator.margin_s)))
    assert np.mean(covered_raw) < 0.75
    assert 0.88 <= np.mean(covered) <= 0.92
    assert min(covered) >= 0.83 and max(covered) <= 0.97


@pytest.mark.parametrize(
    "params", [{"coverage": 0.0}, {"coverage": 1.0}, {"window": 0}, {"min_samples": 0}]
)
def test_the_calibrator_rejects_impossible_parameters(params: dict[str, Any]) -> None:
    """Coverage outside (0, 1) or a non-positive window or minimum is a ValueError."""
    with pytest.raises(ValueError, match="coverage must be in"):
        RouteCalibrator(**params)
