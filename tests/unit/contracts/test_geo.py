"""Geometry and geohash (`contracts.geo`), each primitive against its definition."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.geo import (
    EARTH_RADIUS_M,
    GeoError,
    bearing_deg,
    decode_center,
    distance_m,
    encode,
    encode_ints,
    encode_many,
    geohash_to_int,
    haversine_m,
    int_to_geohash,
    offset_m,
    project_m,
    shard_of,
)

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


@pytest.mark.parametrize("lat, lon", [(91.0, 0.0), (0.0, 180.5), (math.nan, 0.0), (0.0, math.inf)])
def test_out_of_range_coordinates_are_rejected(lat: float, lon: float) -> None:
    """Coordinates out of range or not finite raise `GeoError` (a ValueError), never a hash."""
    with pytest.raises(GeoError, match="out of range"):
        encode_many(np.array([lat]), np.array([lon]), 5)


# ---------------------------------------------------------------------- geohash definition
def _bisection(lat: float, lon: float, precision: int) -> str:
    """Geohash by interval bisection, the definition (longitude first; a mid point goes up)."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    bits: list[int] = []
    while len(bits) < 5 * precision:
        if len(bits) % 2 == 0:
            mid = (lon_lo + lon_hi) / 2
            bits.append(int(lon >= mid))
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bits.append(int(lat >= mid))
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
    digits = [int("".join(map(str, bits[i : i + 5])), 2) for i in range(0, len(bits), 5)]
    return "".join("0123456789bcdefghjkmnpqrstuvwxyz"[d] for d in digits)


@settings(max_examples=300)
@given(lats, lons, st.integers(1, 12))
def test_encoding_equals_the_bisection_definition(lat: float, lon: float, precision: int) -> None:
    """A point's geohash is the one bisection gives."""
    assert encode(lat, lon, precision) == _bisection(lat, lon, precision)


@pytest.mark.parametrize("precision", [4, 6, 9])
def test_points_next_to_cell_edges_fall_in_the_bisection_cell(precision: int) -> None:
    """On a cell edge and one ulp either side of it, the cell is the one bisection gives."""
    rng = np.random.default_rng(precision)
    lat_cells, lon_cells = 1 << (5 * precision // 2), 1 << ((5 * precision + 1) // 2)
    lat_edges = -90.0 + rng.integers(1, lat_cells, 200) * (180.0 / lat_cells)
    lon_edges = -180.0 + rng.integers(1, lon_cells, 200) * (360.0 / lon_cells)
    near = [np.nextafter(e, -np.inf) for e in lat_edges] + list(lat_edges)
    near += [np.nextafter(e, np.inf) for e in lat_edges]
    lat = np.array(near)
    lon = np.resize(np.concatenate([lon_edges, np.nextafter(lon_edges, -np.inf)]), lat.size)
    expected = [_bisection(float(a), float(b), precision) for a, b in zip(lat, lon, strict=True)]
    assert encode_many(lat, lon, precision).tolist() == expected


@pytest.mark.parametrize("precision", [4, 6, 9])
def test_one_point_next_to_a_cell_edge_falls_in_the_bisection_cell(precision: int) -> None:
    """`encode` of points on and one ulp either side of cell edges is the bisection's cell."""
    rng = np.random.default_rng(precision + 100)
    lat_cells, lon_cells = 1 << (5 * precision // 2), 1 << ((5 * precision + 1) // 2)
    lat_edges = -90.0 + rng.integers(1, lat_cells, 100) * (180.0 / lat_cells)
    lon_edges = -180.0 + rng.integers(1, lon_cells, 100) * (360.0 / lon_cells)
    for lat_edge, lon_edge in zip(lat_edges.tolist(), lon_edges.tolist(), strict=True):
        for lat in (math.nextafter(lat_edge, -math.inf), lat_edge, math.nextafter(lat_edge, 90)):
            for lon in (math.nextafter(lon_edge, -math.inf), lon_edge):
                assert encode(lat, lon, precision) == _bisection(lat, lon, precision)


@settings(max_examples=200)
@given(lats, lons, st.integers(1, 12))
def test_integer_geohashes_are_the_string_cells(lat: float, lon: float, precision: int) -> None:
    """The integer form of a point's cell converts to and from its string."""
    value = int(encode_ints(np.array([lat]), np.array([lon]), precision)[0])
    assert int_to_geohash(value, precision) == encode(lat, lon, precision)
    assert geohash_to_int(encode(lat, lon, precision)) == value


def test_a_parent_cell_is_a_shift_of_the_integer() -> None:
    """Dropping 5 bits per character gives the integer of the shorter prefix."""
    value = int(encode_ints(np.array([40.758]), np.array([-73.9855]), 9)[0])
    assert int_to_geohash(value >> 25, 4) == shard_of(40.758, -73.9855)


def test_a_string_that_is_no_geohash_is_rejected() -> None:
    """Characters outside the geohash alphabet raise `GeoError`."""
    with pytest.raises(GeoError):
        geohash_to_int("dr5a")


# ---------------------------------------------------------------------- distances and offsets
def _haversine_reference(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The scalar haversine formula, term for term."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


@given(lats, lons, lats, lons)
def test_distance_is_the_haversine_formula(a: float, b: float, c: float, d: float) -> None:
    """`distance_m` and `haversine_m` give the scalar formula's distance, symmetric, >= 0."""
    reference = _haversine_reference(a, b, c, d)
    assert distance_m(a, b, c, d) == pytest.approx(reference, rel=1e-12, abs=1e-9)
    assert float(haversine_m([a], [b], [c], [d])[0]) == pytest.approx(
        reference, rel=1e-12, abs=1e-9
    )
    assert distance_m(a, b, c, d) == pytest.approx(distance_m(c, d, a, b), abs=1e-6)
    assert distance_m(a, b, c, d) >= 0


@given(
    lats.filter(lambda v: abs(v) < 80), lons, st.floats(-20_000, 20_000), st.floats(-20_000, 20_000)
)
def test_offset_is_the_unprojected_point(lat: float, lon: float, east: float, north: float) -> None:
    """`offset_m` moves by metres along the local east and north axes: the projection's inverse."""
    m_per_deg = math.pi / 180 * EARTH_RADIUS_M
    expected = (lat + north / m_per_deg, lon + east / (m_per_deg * math.cos(math.radians(lat))))
    assert offset_m(lat, lon, east, north) == expected


@given(st.floats(-20_000, 20_000), st.floats(-20_000, 20_000))
def test_offset_moves_by_the_requested_distance(east_m: float, north_m: float) -> None:
    """An offset point lies at the requested distance (within 0.5 %)."""
    lat, lon = offset_m(40.75, -73.98, east_m, north_m)
    expected = (east_m**2 + north_m**2) ** 0.5
    assert distance_m(40.75, -73.98, lat, lon) == pytest.approx(expected, rel=5e-3, abs=0.5)


def test_bearing_points_east_and_north() -> None:
    """Due north is 0 degrees and due east 90 degrees."""
    assert bearing_deg(40.0, -73.0, 40.1, -73.0) == pytest.approx(0.0, abs=1e-6)
    assert bearing_deg(40.0, -73.0, 40.0, -72.9) == pytest.approx(90.0, abs=0.1)


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
