from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.residual import (
    ClampConfig,
    ModelLoadError,
    ModelMissingError,
    ResidualQuantileModel,
    TrainingData,
    load_model,
    save_model,
)


def test_saved_model_predicts_identically(
    travel_model: ResidualQuantileModel, travel_data: TrainingData, tmp_path: Path
) -> None:
    """Save → load round-trips the boosters, calibration and metadata."""
    save_model(travel_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    a = travel_model.predict(travel_data.features[:200], travel_data.base_eta_s[:200])
    b = loaded.predict(travel_data.features[:200], travel_data.base_eta_s[:200])
    np.testing.assert_array_equal(a.p50_s, b.p50_s)
    np.testing.assert_array_equal(a.p90_s, b.p90_s)
    assert loaded.metadata["feature_config"] == travel_model.metadata["feature_config"]


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


def test_corrupt_model_file_raises_load_error(
    travel_model: ResidualQuantileModel, tmp_path: Path
) -> None:
    """A byte flipped in a booster file is detected and reported, not loaded."""
    save_model(travel_model, tmp_path / "m")
    f = tmp_path / "m" / "p50.ubj"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(tmp_path / "m")


def test_garbage_metadata_raises_load_error(tmp_path: Path) -> None:
    """Unparseable metadata is a ModelLoadError, never an uncaught exception."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "metadata.json").write_text("{not json")
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "m")


def test_missing_model_directory_raises_missing_error(tmp_path: Path) -> None:
    """An absent model is ModelMissingError."""
    with pytest.raises(ModelMissingError):
        load_model(tmp_path / "nope")
