"""Travel-time providers."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.eta import GridTravelTime, StraightLineEta


def test_grid_travel_is_whole_minutes_rounded_up() -> None:
    """MDRP travel is ceil(distance / meters_per_minute) minutes, in seconds, p50 == p90."""
    eta = GridTravelTime(320.0)
    origin = np.array([[0.0, 0.0], [0.0, 0.0], [100.0, 100.0]])
    dest = np.array([[320.0, 0.0], [321.0, 0.0], [100.0, 100.0]])
    q = eta.travel_s(origin, dest)
    assert q.p50_s.tolist() == [60.0, 120.0, 0.0]
    assert np.array_equal(q.p50_s, q.p90_s)


def test_grid_travel_broadcasts_to_a_matrix() -> None:
    """Origins (n, 1, 2) against destinations (1, m, 2) give an (n, m) matrix."""
    eta = GridTravelTime(100.0)
    a = np.array([[0.0, 0.0], [300.0, 400.0]])
    q = eta.travel_s(a[:, None, :], a[None, :, :])
    assert q.p50_s.shape == (2, 2)
    assert q.p50_s[0, 1] == q.p50_s[1, 0] == 300.0


def test_straight_line_p90_is_at_least_p50() -> None:
    """The straight-line provider's p90 is never below its p50."""
    eta = StraightLineEta(speed_mps=4.0, detour_factor=1.2, p90_factor=1.3)
    rng = np.random.default_rng(0)
    q = eta.travel_s(rng.uniform(0, 5000, (50, 2)), rng.uniform(0, 5000, (50, 2)))
    assert (q.p90_s >= q.p50_s).all() and (q.p50_s >= 0).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: GridTravelTime(0.0),
        lambda: StraightLineEta(speed_mps=-1.0),
        lambda: StraightLineEta(detour_factor=0.5),
        lambda: StraightLineEta(p90_factor=0.9),
    ],
)
def test_invalid_providers_fail_fast(make: object) -> None:
    """Out-of-range speeds and factors raise ValueError at construction."""
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
