"""Model directories: save, load, and refusing what is missing or corrupt."""

from pathlib import Path

import numpy as np
import pytest

from models.model_files import ModelLoadError, ModelMissingError, load_model, save_model
from models.residual import ResidualQuantileModel, TrainingData


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
