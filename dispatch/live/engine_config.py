"""Tunables of live dispatch: ticks, leases, cool-downs, defaults, ETA updates and surge."""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatch.policy import DEFAULT_POLICY, Policy
from dispatch.snapshot import ServiceTimes

#: How a tick learns from the loop: `fixed` (food ready `default_prep_s` after placement unless
#: the merchant says it is), `merchant` (the merchant's estimate), `learned` (the prep model,
#: travel legs with live context, declines priced; `dispatch.live.staged`).
VARIANTS = ("fixed", "merchant", "learned")


@dataclass(frozen=True)
class EngineConfig:
    """Tunables of live dispatch (times in seconds unless named otherwise).

    `rank_candidates` is how many couriers request-time ranking prices per request (the
    nearest that may take the job), in place of the tick's `policy.max_candidates`.

    `variant` is one of `VARIANTS`; `decline_prior_responses` is how many answers at the
    marketplace's acceptance rate a courier's own rate is shrunk towards (a courier with few
    answers is priced near the average).
    """

    tick_s: float = 2.0
    tick_budget_s: float = 0.5
    lease_s: float = 30.0
    cooldown_s: float = 300.0
    max_order_age_s: float = 3600.0
    default_prep_s: float = 900.0
    default_promise_s: float = 2700.0
    position_max_age_s: float = 120.0
    default_shift_s: float = 8 * 3600.0
    service: ServiceTimes = field(
        default_factory=lambda: ServiceTimes(pickup_s=120.0, dropoff_s=120.0)
    )
    policy: Policy = field(default_factory=lambda: DEFAULT_POLICY.replace(reposition=False))
    orphan_ttl_s: float = 300.0
    eta_update_every_ticks: int = 5
    eta_update_min_change_s: float = 60.0
    eta_refresh_s: float = 120.0
    surge_every_ticks: int = 5
    surge_max: float = 3.0
    surge_smoothing: float = 0.5
    eta_coverage: float = 0.9
    rank_candidates: int = 400
    variant: str = "learned"
    decline_prior_responses: float = 5.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            msg = f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}"
            raise ValueError(msg)
        if not self.decline_prior_responses >= 0:
            msg = "decline_prior_responses must be non-negative"
            raise ValueError(msg)
        for name in ("tick_s", "lease_s", "max_order_age_s", "default_promise_s"):
            if not getattr(self, name) > 0:
                msg = f"{name} must be positive"
                raise ValueError(msg)
        if self.rank_candidates < 1:
            msg = "rank_candidates must be at least 1"
            raise ValueError(msg)
        if self.eta_update_every_ticks < 1 or self.surge_every_ticks < 1:
            msg = "eta_update_every_ticks and surge_every_ticks must be at least 1"
            raise ValueError(msg)
