import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.geo import (
    GeoError,
    geohash_encode,
    geohash_int_np,
    geohash_int_to_str,
    geohash_to_int,
    haversine_m,
    haversine_m_np,
)

lat = st.floats(-89.9, 89.9)
lon = st.floats(-179.9, 179.9)


@given(lat, lon, lat, lon)
def test_haversine_is_symmetric_and_non_negative(a: float, b: float, c: float, d: float) -> None:
    """Distance is symmetric, non-negative and matches the vectorized form."""
    ab = haversine_m(a, b, c, d)
    assert ab >= 0
    assert ab == pytest.approx(haversine_m(c, d, a, b), abs=1e-6)
    assert float(haversine_m_np([a], [b], [c], [d])[0]) == pytest.approx(ab, abs=1e-6)


@settings(max_examples=200)
@given(lat, lon, st.integers(1, 9))
def test_vectorized_geohash_matches_scalar(a: float, b: float, precision: int) -> None:
    """The integer geohash decodes to the same cell as the string encoder."""
    value = int(geohash_int_np(np.array([a]), np.array([b]), precision)[0])
    cell = geohash_int_to_str(value, precision)
    assert cell == geohash_encode(a, b, precision)
    assert geohash_to_int(cell) == value


def test_geohash_rejects_out_of_range_coordinates() -> None:
    """Invalid coordinates raise a typed error."""
    with pytest.raises(GeoError):
        geohash_encode(91.0, 0.0)
