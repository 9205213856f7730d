import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.geo import decode_center, encode, encode_many, haversine_m, project_m, shard_of

lats = st.floats(min_value=-89.999, max_value=89.999, allow_nan=False)
lons = st.floats(min_value=-179.999, max_value=179.999, allow_nan=False)


def test_encode_matches_the_reference_geohash() -> None:
    """The classic example point encodes to its published geohash."""
    assert encode(57.64911, 10.40744, 11) == "u4pruydqqvj"


@given(st.lists(st.tuples(lats, lons), min_size=1, max_size=50), st.integers(1, 12))
def test_vectorized_encoding_equals_scalar_encoding(
    points: list[tuple[float, float]], precision: int
) -> None:
    """Encoding an array gives, element by element, the scalar encoding."""
    lat = np.array([p[0] for p in points])
    lon = np.array([p[1] for p in points])
    assert encode_many(lat, lon, precision).tolist() == [encode(a, b, precision) for a, b in points]


@given(lats, lons, st.integers(1, 11))
def test_a_cell_contains_its_own_center(lat: float, lon: float, precision: int) -> None:
    """The centre of a point's cell encodes to the same cell."""
    cell = encode(lat, lon, precision)
    assert encode(*decode_center(cell), precision) == cell


@given(lats, lons, st.integers(2, 8))
def test_shard_is_a_prefix_of_longer_hashes(lat: float, lon: float, precision: int) -> None:
    """A shard (short prefix) is the prefix of the point's longer geohash."""
    assert encode(lat, lon, 9).startswith(shard_of(lat, lon, precision))


def test_out_of_range_coordinates_are_rejected() -> None:
    """Latitudes beyond ±90 raise ValueError instead of producing a hash."""
    with pytest.raises(ValueError, match="out of range"):
        encode_many(np.array([91.0]), np.array([0.0]), 5)


def test_projection_matches_great_circle_distance_at_metro_scale() -> None:
    """Within a metro, planar distance after projection is within 0.5% of haversine."""
    lat = np.array([40.70, 40.80])
    lon = np.array([-74.00, -73.90])
    x, y = project_m(lat, lon, 40.75, -73.95)
    planar = float(np.hypot(x[1] - x[0], y[1] - y[0]))
    great_circle = float(haversine_m(lat[0], lon[0], lat[1], lon[1]))
    assert abs(planar - great_circle) / great_circle < 0.005


@given(
    lats.filter(lambda v: abs(v) < 80), lons, st.floats(-20_000, 20_000), st.floats(-20_000, 20_000)
)
def test_unprojection_inverts_projection(lat0: float, lon0: float, x: float, y: float) -> None:
    """Projecting an unprojected point gives back its metres."""
    from contracts.geo import unproject_m

    lat, lon = unproject_m(x, y, lat0, lon0)
    x2, y2 = project_m(lat, lon, lat0, lon0)
    assert abs(float(x2) - x) < 1e-6 and abs(float(y2) - y) < 1e-6
