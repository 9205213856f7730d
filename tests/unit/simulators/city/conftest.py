from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from simulators.city.config import (
    AppConfig,
    CityConfig,
    CustomerConfig,
    DemandConfig,
    FleetConfig,
    MerchantConfig,
)
from simulators.city.protocol import SimRecord
from simulators.city.runner import SimulationLog, run_simulation
from tests.unit.simulators.city.nearest_idle import NearestIdleDispatch


def small_config(**overrides: Any) -> CityConfig:
    """A 30-minute city of two shards with about 40 orders and 16 couriers (runs in ~1 s)."""
    base = CityConfig(
        seed=11,
        name="small",
        center_lat=40.78,
        radius_m=3_000.0,
        duration_s=1_800.0,
        tick_interval_s=15.0,
        drain_max_s=3_600.0,
        max_order_age_s=3_600.0,
        merchants=MerchantConfig(n_merchants=10, spread_m=1_200.0),
        demand=DemandConfig(
            base_orders_per_h=80.0,
            lunch_peak_orders_per_h=0.0,
            dinner_peak_orders_per_h=0.0,
            delivery_radius_m=2_000.0,
        ),
        customers=CustomerConfig(early_cancel_prob=0.1, late_cancel_prob=0.8),
        fleet=FleetConfig(
            n_couriers=16,
            home_radius_m=2_500.0,
            shift_start_s_range=(0.0, 120.0),
            shift_length_s_range=(3_000.0, 4_000.0),
            offline_mid_route_prob=0.15,
        ),
        app=AppConfig(late_response_prob=0.1),
    )
    return dataclasses.replace(base, **overrides)


@dataclasses.dataclass
class Run:
    """One simulation of the small city against the nearest-idle double."""

    config: CityConfig
    log: SimulationLog
    dispatch: NearestIdleDispatch

    def inputs_of(self, kind: str) -> list[dict[str, Any]]:
        return [r.event for r in self.log.inputs if r.event["type"] == kind]

    def outputs_of(self, kind: str) -> list[dict[str, Any]]:
        return [r.event for r in self.log.outputs if r.event["type"] == kind]

    @property
    def records(self) -> list[SimRecord]:
        return self.log.inputs


def run_small(**overrides: Any) -> Run:
    """Run the small city (with `overrides`) against the nearest-idle double."""
    config = small_config(**overrides)
    dispatch = NearestIdleDispatch()
    log = run_simulation(config, dispatch, progress=False)
    return Run(config, log, dispatch)


@pytest.fixture(scope="session")
def small_run() -> Run:
    """One run of the small city, shared by the tests that only read it."""
    return run_small()
