import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calibration import CalibrationError, conformal_margin


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_split_conformal_margin_covers_exchangeable_data(seed: int) -> None:
    """On exchangeable scores the margin covers ≥ 90 % of fresh scores on average."""
    rng = np.random.default_rng(seed)
    coverages = []
    for _ in range(40):
        cal = rng.standard_t(3, 200)
        fresh = rng.standard_t(3, 200)
        coverages.append(np.mean(fresh <= conformal_margin(cal, 0.9)))
    assert np.mean(coverages) >= 0.88


def test_block_median_ignores_one_exceptional_block() -> None:
    """One shifted block does not move the blockwise margin much, but moves the pooled one."""
    rng = np.random.default_rng(0)
    s = rng.normal(0, 1, 700)
    s[300:400] += 5.0
    ts = np.arange(700)
    pooled = conformal_margin(s, 0.9)
    robust = conformal_margin(s, 0.9, blocks=7, ts_ms=ts)
    assert abs(robust - 1.28) < 0.4 < pooled - 1.28


def test_too_few_scores_is_a_calibration_error() -> None:
    """Calibration with too few rows fails with a typed error."""
    with pytest.raises(CalibrationError):
        conformal_margin(np.zeros(5), 0.9)
