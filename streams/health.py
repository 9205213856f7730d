"""Liveness and readiness of a worker, as the web views report them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Health:
    """Mutable health flags, set by agents and rebalance hooks, read by `/healthz` and `/readyz`."""

    crashed_agents: dict[str, str] = field(default_factory=dict)
    positions_replaying: bool = False
    ranking_ready: Callable[[], bool] = lambda: True

    def agent_crashed(self, agent: str, error: BaseException) -> None:
        """Record that `agent` died with `error`."""
        self.crashed_agents[agent] = f"{type(error).__name__}: {error}"

    @property
    def alive(self) -> bool:
        """True while no agent has crashed."""
        return not self.crashed_agents
