"""The tick's circuit breaker: decide greedily when the optimiser would overrun the budget."""

from __future__ import annotations

from collections.abc import Callable

from dispatch.decisions import Decisions
from dispatch.engine import decide
from dispatch.policy import GREEDY_POLICY, Policy
from dispatch.snapshot import Snapshot

#: Smallest tick (orders × couriers) whose duration teaches the circuit breaker its cost rate.
MIN_RATE_SIZE = 2_000


class CircuitBreaker:
    """Decides each tick with its policy, or greedily when it is predicted to overrun its budget.

    The prediction is the tick's size (orders × couriers) times the seconds per unit of size,
    learned per shard (exponentially averaged) from earlier optimised ticks of at least
    `MIN_RATE_SIZE`; until such a tick was seen, nothing is predicted. Without a clock the
    breaker is off (simulations stay deterministic).
    """

    def __init__(self, budget_s: float, clock: Callable[[], float] | None) -> None:
        self.budget_s = budget_s
        self.clock = clock
        self._cost_rate: dict[str, float] = {}

    def decide(
        self, shard: str, snapshot: Snapshot, policy: Policy
    ) -> tuple[Decisions, bool, float]:
        """The tick's decisions, whether the greedy policy made them, and the seconds taken."""
        size = snapshot.orders.n * snapshot.couriers.m
        rate = self._cost_rate.get(shard)
        clock = self.clock
        breaker = clock is not None and rate is not None and rate * size > self.budget_s
        started = clock() if clock is not None else 0.0
        decisions = decide(snapshot, GREEDY_POLICY if breaker else policy)
        duration_s = (clock() - started) if clock is not None else 0.0
        if not breaker and size >= MIN_RATE_SIZE:
            observed = duration_s / size
            self._cost_rate[shard] = observed if rate is None else 0.8 * rate + 0.2 * observed
        return decisions, breaker or decisions.fallback_used, duration_s
