from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.residual import ClampConfig, ResidualQuantileModel, TrainingData


def test_distilled_student_is_compact(travel_model: ResidualQuantileModel) -> None:
    """The served p50 booster is the student (its configured rounds), not the full model."""
    assert travel_model.metadata["distilled"] is True
    assert travel_model.booster_p50.num_boosted_rounds() == 8


def test_p90_is_never_below_p50(
    travel_model: ResidualQuantileModel, travel_data: TrainingData
) -> None:
    """Served p90 ≥ p50 on every row."""
    out = travel_model.predict(travel_data.features, travel_data.base_eta_s)
    assert np.all(out.p90_s >= out.p50_s)


@settings(max_examples=25, deadline=None)
@given(st.floats(-600, 0), st.floats(0, 600), st.floats(0, 1))
def test_residual_clamp_is_enforced(
    travel_model: ResidualQuantileModel,
    travel_data: TrainingData,
    lo: float,
    hi: float,
    frac: float,
) -> None:
    """Whatever the model says, served − base stays within the clamp."""
    clamp = ClampConfig(residual_min_s=lo, residual_max_s=hi, max_reduction_frac=frac)
    model = replace(travel_model, clamp=clamp)
    base = travel_data.base_eta_s[:300]
    out = model.predict(travel_data.features[:300], base)
    floor = np.maximum(lo, -frac * base)
    for served in (out.p50_s, out.p90_s):
        assert np.all(served - base >= floor - 1e-6)
    assert np.all(out.p50_s - base <= hi + 1e-6)
