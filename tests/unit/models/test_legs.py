import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.legs import Leg, TravelFeatureConfig, travel_features
from models.timeparts import utc_offset_ms, zone

CFG = TravelFeatureConfig(
    timezone="Europe/Paris", grid_rotation_deg=20.0, landmarks=((48.85, 2.35),)
)


def test_feature_matrix_has_one_column_per_name() -> None:
    """Columns match feature_names(), including landmark distances."""
    x = travel_features(
        np.array([48.8]),
        np.array([2.3]),
        np.array([48.9]),
        np.array([2.4]),
        np.array([0]),
        np.array([1]),
        np.array([100.0]),
        CFG,
    )
    assert x.shape == (1, len(CFG.feature_names()))
    assert x[0, CFG.feature_names().index("leg")] == 1.0


def test_rows_do_not_depend_on_the_batch() -> None:
    """Each row's features are the same alone or in a batch."""
    rng = np.random.default_rng(0)
    n = 50
    args = [
        48.8 + rng.normal(0, 0.05, n),
        2.3 + rng.normal(0, 0.05, n),
        48.8 + rng.normal(0, 0.05, n),
        2.3 + rng.normal(0, 0.05, n),
        rng.integers(0, 10**12, n),
        rng.integers(0, 3, n),
        rng.uniform(0, 900, n),
    ]
    full = travel_features(*args, CFG)  # type: ignore[arg-type,call-arg]
    for i in (0, 17, 49):
        one = travel_features(*[a[i : i + 1] for a in args], CFG)  # type: ignore[arg-type,call-arg]
        np.testing.assert_array_equal(one[0], full[i])


@settings(max_examples=50)
@given(st.lists(st.integers(1_400_000_000_000, 1_800_000_000_000), min_size=1, max_size=40))
def test_utc_offsets_match_zoneinfo(ts: list[int]) -> None:
    """Vectorized DST-aware offsets equal zoneinfo's for every timestamp."""
    from datetime import UTC, datetime

    tz = zone("America/New_York")
    got = utc_offset_ms(np.array(ts, dtype=np.int64), tz)
    for t, g in zip(ts, got, strict=True):
        off = datetime.fromtimestamp(t / 1000, tz=UTC).astimezone(tz).utcoffset()
        assert off is not None and g == int(off.total_seconds() * 1000)


def test_leg_names_parse() -> None:
    """Leg names parse case-insensitively; unknown names raise ValueError."""
    assert Leg.parse("Dropoff") is Leg.DROPOFF
    with pytest.raises(ValueError):
        Leg.parse("walk")
