import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.geo import distance_m
from contracts.geo import offset_m as offset
from simulators.city.legs import Leg


@given(st.integers(min_value=0, max_value=600_000))
def test_leg_position_splits_the_distance_by_elapsed_time(elapsed_ms: int) -> None:
    """At any time during a leg, the covered share of distance equals the elapsed share of time."""
    lat2, lon2 = offset(40.75, -73.98, 3_000, 4_000)
    leg = Leg(40.75, -73.98, lat2, lon2, 1_000_000, 1_600_000)
    lat, lon = leg.position(1_000_000 + elapsed_ms)
    share = min(elapsed_ms / 600_000, 1.0)
    assert distance_m(40.75, -73.98, lat, lon) == pytest.approx(5_000 * share, abs=5.0)


def test_leg_stays_at_its_ends_outside_its_time() -> None:
    """Before departure a leg is at its origin, after arrival at its destination."""
    leg = Leg(40.0, -73.0, 40.1, -73.1, 1_000, 2_000)
    assert leg.position(0) == (40.0, -73.0)
    assert leg.position(5_000) == (40.1, -73.1)
    assert not leg.moving_at(2_000)
