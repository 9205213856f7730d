"""The courier app's answers to offers: acceptance probability and response delay."""

from __future__ import annotations

import math

import numpy as np

from simulators.city.config import AppConfig


def accept_probability(
    app: AppConfig, pickup_m: float, n_orders: int, offset: float = 0.0
) -> float:
    """Probability that a free courier accepts an offer (decreasing in distance and bundle size).

    Args:
        app: the acceptance parameters.
        pickup_m: straight-line distance from the courier to the offer's first pickup.
        n_orders: orders in the offered bundle (>= 1).
        offset: the courier's personal logit offset (`CourierPlan.accept_offset`).
    """
    logit = (
        app.accept_intercept
        + offset
        - app.accept_per_km * max(pickup_m, 0.0) / 1000
        - app.accept_per_extra_order * max(n_orders - 1, 0)
    )
    return 1.0 / (1.0 + math.exp(-logit))


def response_delay_ms(
    app: AppConfig, rng: np.random.Generator, proposed_ts_ms: int, lease_expires_ts_ms: int
) -> int:
    """How long after the offer the app answers: usually seconds, sometimes after the lease."""
    if float(rng.random()) < app.late_response_prob:
        after_s = float(rng.uniform(*app.late_response_s_range))
        return max(1, lease_expires_ts_ms - proposed_ts_ms + round(after_s * 1000))
    delay_s = app.response_delay_median_s * float(rng.lognormal(0.0, app.response_delay_sigma))
    return max(1, round(min(delay_s, app.response_delay_max_s) * 1000))
