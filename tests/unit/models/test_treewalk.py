import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from models.treewalk import TreeWalker


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["reg:squarederror", "reg:quantileerror"]))
def test_walker_equals_xgboost_including_missing_values(seed: int, objective: str) -> None:
    """The Python walker predicts what XGBoost predicts, NaNs following default branches."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.nan_to_num(x[:, 0]) * 2 + rng.normal(size=300)
    params: dict[str, object] = {"objective": objective, "max_depth": 4, "nthread": 1}
    if objective == "reg:quantileerror":
        params["quantile_alpha"] = 0.7
    booster = xgb.train(params, xgb.DMatrix(x, y), 15)
    walker = TreeWalker.from_booster(booster, x[:32])
    probe = rng.normal(size=(40, 6)).astype(np.float32)
    probe[rng.random(probe.shape) < 0.2] = np.nan
    expected = booster.inplace_predict(probe)
    assert walker.predict(probe) == pytest.approx(expected, rel=1e-5, abs=1e-5)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000))
def test_compiled_row_equals_walker_exactly(seed: int) -> None:
    """The compiled straight-line walker returns exactly the walker's value, NaNs included."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    y = np.nan_to_num(x[:, 1]) - np.nan_to_num(x[:, 2]) + rng.normal(size=300)
    booster = xgb.train({"max_depth": 5, "nthread": 1}, xgb.DMatrix(x, y), 12)
    walker = TreeWalker.from_booster(booster, x[:32])
    compiled = walker.compile_row()
    probe = rng.normal(size=(50, 5)).astype(np.float32)
    probe[rng.random(probe.shape) < 0.2] = np.nan
    for row in probe:
        values = [float(v) for v in row]
        assert compiled(values) == walker.predict_row(values)
