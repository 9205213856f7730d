import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.geo import GeoError
from contracts.geo import encode as geohash_encode
from contracts.geo import haversine_m as haversine_m_np
from models.base_eta import BaseEtaProvider, LatLon, StraightLineProvider

coord = st.tuples(st.floats(40.5, 41.0), st.floats(-74.2, -73.7))


@given(coord, coord)
async def test_straight_line_is_distance_times_detour_over_speed(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    """Scalar, async and batch forms agree with dist × detour ÷ speed."""
    zone = geohash_encode(a[0], a[1], 5)
    p = StraightLineProvider(detour_factor=1.4, zone_speeds_mps={zone: 4.0})
    assert isinstance(p, BaseEtaProvider)
    dist = float(haversine_m_np([a[0]], [a[1]], [b[0]], [b[1]])[0])
    expected = dist * 1.4 / 4.0
    assert await p.eta_s(LatLon(*a), LatLon(*b), 0) == pytest.approx(expected, rel=1e-9)
    batch = p.eta_s_batch(np.array([a[0]]), np.array([a[1]]), np.array([dist]))
    assert batch[0] == pytest.approx(expected, rel=1e-9)


def test_unknown_zone_uses_default_speed() -> None:
    """Origins outside every listed zone use the default speed."""
    p = StraightLineProvider(default_speed_mps=5.0, zone_speeds_mps={"u4pru": 1.0})
    out = p.eta_s_batch(np.array([40.7]), np.array([-74.0]), np.array([1000.0]))
    assert out[0] == pytest.approx(1000.0 * p.detour_factor / 5.0)


def test_invalid_config_and_points_are_rejected() -> None:
    """Detour below 1, non-positive speeds and bad coordinates raise."""
    with pytest.raises(ValueError):
        StraightLineProvider(detour_factor=0.5)
    with pytest.raises(ValueError):
        StraightLineProvider(default_speed_mps=0.0)
    with pytest.raises(GeoError):
        LatLon(100.0, 0.0)
