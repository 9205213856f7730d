"""The city's actors as the world plays them: orders, couriers, their stops, and fix noise.

`CityWorld` (simulators.city.world) owns and changes them; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.city.legs import Leg
from simulators.city.scenario import CourierPlan, OrderPlan

TERMINAL = frozenset({"delivered", "cancelled", "expired"})


class NoiseBuffer:
    """Position noise drawn in blocks (fast): two standard normals and a uniform per fix."""

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self._rng = rng
        self._block = block
        self._rows: list[list[float]] = []
        self._i = 0

    def next(self) -> tuple[float, float, float]:
        """The next fix's noise: east and north standard normals, and a uniform."""
        if self._i >= len(self._rows):
            normals = self._rng.standard_normal((self._block, 2))
            uniforms = self._rng.random((self._block, 1))
            self._rows = np.hstack([normals, uniforms]).tolist()
            self._i = 0
        east, north, u = self._rows[self._i]
        self._i += 1
        return east, north, u


@dataclass
class CityOrder:
    """An order as the city sees it: its plan, where it stands, and who holds it."""

    plan: OrderPlan
    status: str = "scheduled"  # scheduled | placed | delivered | cancelled | expired
    courier_id: str | None = None
    decision_id: str | None = None
    picked: bool = False
    arrivals: int = 0

    @property
    def terminal(self) -> bool:
        """Delivered, cancelled or expired."""
        return self.status in TERMINAL


@dataclass(frozen=True)
class Stop:
    """One planned stop of a courier: a pickup or a drop-off of one order."""

    kind: str  # pickup | dropoff
    order_id: str
    lat: float
    lon: float


@dataclass
class CityCourier:
    """A courier as the city plays it: its plan, current leg, session, stops and held orders."""

    plan: CourierPlan
    phase_ms: int
    leg: Leg
    online: bool = False
    session: int = 0
    version: int = 0
    activity: str = "idle"  # idle | travel | wait | handover
    stops: list[Stop] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # order id -> committing decision id
    picked: set[str] = field(default_factory=set)
    pending: dict[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    leg_speed_mps: float = 0.0
    leg_heading_deg: float = 0.0
    onlines: int = 0
    offlines: int = 0

    @property
    def courier_id(self) -> str:
        """The courier's id."""
        return self.plan.courier_id

    def position(self, ts_ms: int) -> tuple[float, float]:
        """Where it is at `ts_ms` on its current leg (lat, lon)."""
        return self.leg.position(ts_ms)
