import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simulators.city.config import AppConfig
from simulators.city.courier_app import accept_probability, response_delay_ms

metres = st.floats(min_value=0, max_value=30_000)


@given(metres, metres, st.integers(min_value=1, max_value=5))
def test_acceptance_falls_with_pickup_distance(near_m: float, far_m: float, n: int) -> None:
    """A farther pickup is never more likely to be accepted."""
    near_m, far_m = sorted((near_m, far_m))
    app = AppConfig()
    assert accept_probability(app, far_m, n) <= accept_probability(app, near_m, n)


@given(metres, st.integers(min_value=1, max_value=5))
def test_acceptance_falls_with_bundle_size(pickup_m: float, n: int) -> None:
    """A bigger bundle is never more likely to be accepted."""
    app = AppConfig()
    assert accept_probability(app, pickup_m, n + 1) <= accept_probability(app, pickup_m, n)


def test_answers_usually_come_within_the_lease() -> None:
    """Without late answers, delays are positive and capped by response_delay_max_s."""
    app = AppConfig(late_response_prob=0.0, response_delay_max_s=20.0)
    rng = np.random.default_rng(0)
    delays = [response_delay_ms(app, rng, 0, 30_000) for _ in range(500)]
    assert min(delays) >= 1 and max(delays) <= 20_000


def test_late_answers_come_after_the_lease() -> None:
    """With late answers certain, every answer comes after the lease expired."""
    app = AppConfig(late_response_prob=1.0)
    rng = np.random.default_rng(0)
    assert all(response_delay_ms(app, rng, 1_000, 31_000) > 30_000 for _ in range(100))


@given(metres, st.integers(min_value=1, max_value=5), st.floats(min_value=-3, max_value=3))
def test_a_higher_offset_accepts_more(pickup_m: float, n: int, offset: float) -> None:
    """A courier with a higher personal offset is never less likely to accept the same offer."""
    app = AppConfig()
    assert accept_probability(app, pickup_m, n, offset + 0.5) >= accept_probability(
        app, pickup_m, n, offset
    )
