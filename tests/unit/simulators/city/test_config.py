import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.city.config import (
    PRESETS,
    AppConfig,
    CityConfig,
    ConfigError,
    CustomerConfig,
    DemandConfig,
    FleetConfig,
    MerchantConfig,
    VehicleProfile,
    local_start_ts_ms,
    lunch_rush,
)


def test_lunch_rush_runs_from_eleven_to_half_past_one_local() -> None:
    """The lunch-rush preset covers 11:00-13:30 local time with its lunch peak inside."""
    config = lunch_rush()
    assert config.local_hour(config.start_ts_ms) == pytest.approx(11.0)
    assert config.local_hour(config.scenario_end_ts_ms) == pytest.approx(13.5)
    assert 11.0 < config.demand.lunch_peak_local_h < 13.5


def test_presets_are_named() -> None:
    """The preset registry holds the lunch rush under its name."""
    assert PRESETS["lunch_rush"](3) == lunch_rush(3)


def test_config_is_frozen() -> None:
    """A config cannot be changed after it was made."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        lunch_rush().seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (CityConfig, "radius_m", 10.0),
        (CityConfig, "tick_interval_s", 0.0),
        (CityConfig, "duration_s", 1.0),
        (CityConfig, "center_lat", 95.0),
        (CityConfig, "id_prefix", "bad prefix!"),
        (MerchantConfig, "n_merchants", 0),
        (MerchantConfig, "prep_median_s_range", (600.0, 300.0)),
        (MerchantConfig, "slow_share", 1.5),
        (DemandConfig, "base_orders_per_h", -1.0),
        (DemandConfig, "lunch_peak_local_h", 25.0),
        (DemandConfig, "promise_max_s", 100.0),
        (CustomerConfig, "late_cancel_prob", -0.1),
        (FleetConfig, "n_couriers", 0),
        (FleetConfig, "ping_interval_s", 0),
        (FleetConfig, "detour_factor", 0.5),
        (FleetConfig, "vehicles", ()),
        (AppConfig, "late_response_prob", 2.0),
        (AppConfig, "accept_per_km", -1.0),
    ],
)
def test_out_of_range_values_are_refused(factory: Any, field: str, value: Any) -> None:
    """Each out-of-range field is refused with a ConfigError that names it."""
    with pytest.raises(ConfigError, match=field if field != "vehicles" else "vehicle profile"):
        factory(**{field: value})


def test_unknown_vehicle_kind_is_refused() -> None:
    """A vehicle kind outside the contract's enum is refused."""
    with pytest.raises(ConfigError, match="vehicle kind"):
        VehicleProfile("horse", 1.0, 5.0, 2)


@given(st.integers(min_value=0, max_value=4_000_000_000_000), st.integers(-840, 840))
def test_local_hour_is_an_hour_of_day(ts_ms: int, offset_min: int) -> None:
    """The local hour is always within [0, 24)."""
    config = CityConfig(utc_offset_min=offset_min)
    assert 0.0 <= config.local_hour(ts_ms) < 24.0


@given(st.floats(min_value=0.0, max_value=23.99), st.integers(-840, 840))
def test_local_start_maps_back_to_its_hour(hour: float, offset_min: int) -> None:
    """A local start time read back through local_hour gives the same hour."""
    ts_ms = local_start_ts_ms(2026, 6, 16, hour, offset_min)
    config = CityConfig(utc_offset_min=offset_min)
    assert config.local_hour(ts_ms) == pytest.approx(hour, abs=1e-6)
