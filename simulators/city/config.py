"""Configuration of a simulated city: frozen, validated dataclasses and named presets.

Every duration is in seconds (`*_s`), every distance in metres (`*_m`), every timestamp in epoch
milliseconds (`*_ts_ms`). Local time is UTC plus `utc_offset_min`, fixed for the whole run.
Invalid values raise `ConfigError` with a message naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

#: Vehicle kinds the contracts accept (`courier_online.vehicle`).
VEHICLE_KINDS = frozenset({"walk", "bike", "ebike", "scooter", "car"})


class ConfigError(ValueError):
    """A simulation configuration value is out of range or inconsistent."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_range(name: str, bounds: tuple[float, float], low: float = 0.0) -> None:
    lo, hi = bounds
    _require(
        math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi,
        f"{name} must be an ordered (low, high) pair with low >= {low}, got {bounds}",
    )


def _check_probability(name: str, value: float) -> None:
    _require(0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], got {value}")


@dataclass(frozen=True)
class MerchantConfig:
    """Merchants: where they are, how popular, and how long their kitchens take.

    Attributes:
        n_merchants: number of merchants.
        spread_m: standard deviation of merchant positions around the city centre (clustered
            downtown); positions beyond 90 % of the city radius are redrawn.
        popularity_sigma: lognormal sigma of per-merchant order weights (0: all equal).
        prep_median_s_range: range of per-merchant median preparation times (uniform).
        prep_sigma: lognormal sigma of one order's preparation time around its merchant's median.
        slow_share: share of slow merchants, whose median is multiplied by `slow_factor`.
        slow_factor: how much slower a slow merchant is (>= 1).
        accept_delay_s_range: time from order placement to `merchant_accepted` (uniform).
        estimate_sigma: lognormal sigma of one order's tablet estimate
            (`merchant_accepted.estimated_ready_ts_ms`) around the kitchen's usual time for it.
        estimate_bias_sigma: lognormal sigma of each merchant's fixed tablet bias: every
            estimate of the merchant is multiplied by the same factor, on top of the per-order
            noise.
        kitchen_slowdown_per_order: a kitchen takes this much longer (as a share of its usual
            time) per order of the merchant already in preparation when an order is placed
            (placed earlier, not ready yet, not cancelled). The tablet estimate ignores it.
        kitchen_slowdown_max: at most this multiple of the usual time (>= 1).
    """

    n_merchants: int = 60
    spread_m: float = 2_500.0
    popularity_sigma: float = 0.8
    prep_median_s_range: tuple[float, float] = (480.0, 1_080.0)
    prep_sigma: float = 0.3
    slow_share: float = 0.1
    slow_factor: float = 1.8
    accept_delay_s_range: tuple[float, float] = (30.0, 90.0)
    estimate_sigma: float = 0.2
    estimate_bias_sigma: float = 0.25
    kitchen_slowdown_per_order: float = 0.1
    kitchen_slowdown_max: float = 2.0

    def __post_init__(self) -> None:
        _require(self.n_merchants >= 1, f"n_merchants must be >= 1, got {self.n_merchants}")
        _require(self.spread_m > 0, f"spread_m must be positive, got {self.spread_m}")
        _require(self.popularity_sigma >= 0, "popularity_sigma must be >= 0")
        _check_range("prep_median_s_range", self.prep_median_s_range, low=1.0)
        _require(0 <= self.prep_sigma <= 2, f"prep_sigma must be in [0, 2], got {self.prep_sigma}")
        _check_probability("slow_share", self.slow_share)
        _require(self.slow_factor >= 1, f"slow_factor must be >= 1, got {self.slow_factor}")
        _check_range("accept_delay_s_range", self.accept_delay_s_range)
        _require(0 <= self.estimate_sigma <= 2, "estimate_sigma must be in [0, 2]")
        _require(0 <= self.estimate_bias_sigma <= 2, "estimate_bias_sigma must be in [0, 2]")
        _require(
            0 <= self.kitchen_slowdown_per_order <= 10,
            "kitchen_slowdown_per_order must be in [0, 10]",
        )
        _require(
            1 <= self.kitchen_slowdown_max <= 10,
            f"kitchen_slowdown_max must be in [1, 10], got {self.kitchen_slowdown_max}",
        )


@dataclass(frozen=True)
class DemandConfig:
    """Orders: a time-of-day intensity with lunch and dinner peaks, destinations and promises.

    The order rate at local hour h is `base + lunch·g(h; lunch_peak_local_h, lunch_width_h) +
    dinner·g(h; dinner_peak_local_h, dinner_width_h)` orders per hour, with g a Gaussian bump of
    height 1; arrivals are a non-homogeneous Poisson process with that rate.

    Attributes:
        base_orders_per_h: rate outside the peaks.
        lunch_peak_orders_per_h: extra rate at the top of the lunch peak.
        lunch_peak_local_h: local hour of the lunch peak (12.25 = 12:15).
        lunch_width_h: standard deviation of the lunch bump in hours.
        dinner_peak_orders_per_h: extra rate at the top of the dinner peak.
        dinner_peak_local_h: local hour of the dinner peak.
        dinner_width_h: standard deviation of the dinner bump in hours.
        delivery_radius_m: customers live uniformly within this distance of their merchant
            (and within the city).
        promise_min_s: shortest promise (placement to promised delivery).
        promise_max_s: longest promise.
        promise_buffer_s: promise = estimated prep + estimated travel + buffer, clipped to
            [promise_min_s, promise_max_s].
        max_items: orders have 1..max_items items.
    """

    base_orders_per_h: float = 40.0
    lunch_peak_orders_per_h: float = 150.0
    lunch_peak_local_h: float = 12.25
    lunch_width_h: float = 0.6
    dinner_peak_orders_per_h: float = 200.0
    dinner_peak_local_h: float = 19.0
    dinner_width_h: float = 0.9
    delivery_radius_m: float = 3_500.0
    promise_min_s: float = 35 * 60.0
    promise_max_s: float = 45 * 60.0
    promise_buffer_s: float = 10 * 60.0
    max_items: int = 6

    def __post_init__(self) -> None:
        for name in ("base_orders_per_h", "lunch_peak_orders_per_h", "dinner_peak_orders_per_h"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, f"{name} must be >= 0, got {value}")
        for name in ("lunch_peak_local_h", "dinner_peak_local_h"):
            value = getattr(self, name)
            _require(0 <= value < 24, f"{name} must be an hour in [0, 24), got {value}")
        for name in ("lunch_width_h", "dinner_width_h"):
            value = getattr(self, name)
            _require(0 < value <= 12, f"{name} must be in (0, 12] hours, got {value}")
        _require(self.delivery_radius_m > 0, "delivery_radius_m must be positive")
        _check_range(
            "(promise_min_s, promise_max_s)", (self.promise_min_s, self.promise_max_s), low=60.0
        )
        _require(self.promise_buffer_s >= 0, "promise_buffer_s must be >= 0")
        _require(self.max_items >= 1, f"max_items must be >= 1, got {self.max_items}")


@dataclass(frozen=True)
class CustomerConfig:
    """Customer cancellations; a customer never cancels an order that was picked up.

    Attributes:
        early_cancel_prob: probability that a customer changes their mind soon after ordering.
        early_cancel_s_range: when such a customer cancels, after placement (uniform).
        patience_median_s: median patience (lognormal) after placement.
        patience_sigma: lognormal sigma of patience.
        late_cancel_prob: probability of cancelling when patience runs out before pickup.
    """

    early_cancel_prob: float = 0.02
    early_cancel_s_range: tuple[float, float] = (60.0, 300.0)
    patience_median_s: float = 45 * 60.0
    patience_sigma: float = 0.25
    late_cancel_prob: float = 0.6

    def __post_init__(self) -> None:
        _check_probability("early_cancel_prob", self.early_cancel_prob)
        _check_range("early_cancel_s_range", self.early_cancel_s_range, low=1.0)
        _require(self.patience_median_s > 0, "patience_median_s must be positive")
        _require(0 <= self.patience_sigma <= 2, "patience_sigma must be in [0, 2]")
        _check_probability("late_cancel_prob", self.late_cancel_prob)


@dataclass(frozen=True)
class VehicleProfile:
    """One kind of courier vehicle: its share of the fleet, road speed and capacity."""

    kind: str
    share: float
    speed_mps: float
    capacity: int

    def __post_init__(self) -> None:
        _require(self.kind in VEHICLE_KINDS, f"vehicle kind must be one of {sorted(VEHICLE_KINDS)}")
        _require(self.share >= 0, f"vehicle share must be >= 0, got {self.share}")
        _require(0 < self.speed_mps <= 40, f"speed_mps must be in (0, 40], got {self.speed_mps}")
        _require(1 <= self.capacity <= 20, f"capacity must be in 1..20, got {self.capacity}")


DEFAULT_VEHICLES = (
    VehicleProfile("bike", 0.4, 4.5, 2),
    VehicleProfile("ebike", 0.3, 5.5, 3),
    VehicleProfile("scooter", 0.2, 6.5, 3),
    VehicleProfile("car", 0.1, 7.0, 4),
)


@dataclass(frozen=True)
class FleetConfig:
    """Couriers: shifts, vehicles, movement and pings.

    Attributes:
        n_couriers: number of couriers (each works one shift).
        home_radius_m: couriers start their shift uniformly within this distance of the centre.
        shift_start_s_range: shift start relative to the scenario start (uniform); a start before
            the scenario begins means online at the scenario start.
        shift_length_s_range: shift length (uniform).
        vehicles: vehicle profiles; shares are normalised.
        courier_speed_sigma: lognormal sigma of a courier's personal speed factor.
        leg_speed_sigma: lognormal sigma of the speed noise of each leg.
        detour_factor: road distance over straight-line distance (>= 1).
        pickup_handling_s_range: time at the merchant from arrival (or readiness) to pickup.
        dropoff_handling_s_range: time at the customer from arrival to handover.
        offline_mid_route_prob: per commit, probability that the courier goes offline before
            reaching the pickup (abandoning what it holds and was not picked up).
        break_s_range: how long such a courier stays offline before coming back (uniform).
        ping_interval_s: seconds between two fixes of an online courier.
        gps_noise_m: standard deviation of the position noise of each fix.
        gateway_id: record key of the gateway's ping batches.
    """

    n_couriers: int = 90
    home_radius_m: float = 5_000.0
    shift_start_s_range: tuple[float, float] = (-900.0, 3_600.0)
    shift_length_s_range: tuple[float, float] = (5_400.0, 10_800.0)
    vehicles: tuple[VehicleProfile, ...] = DEFAULT_VEHICLES
    courier_speed_sigma: float = 0.1
    leg_speed_sigma: float = 0.15
    detour_factor: float = 1.3
    pickup_handling_s_range: tuple[float, float] = (30.0, 120.0)
    dropoff_handling_s_range: tuple[float, float] = (30.0, 150.0)
    offline_mid_route_prob: float = 0.02
    break_s_range: tuple[float, float] = (300.0, 900.0)
    ping_interval_s: int = 4
    gps_noise_m: float = 4.0
    gateway_id: str = "gateway-1"

    def __post_init__(self) -> None:
        _require(self.n_couriers >= 1, f"n_couriers must be >= 1, got {self.n_couriers}")
        _require(self.home_radius_m >= 0, "home_radius_m must be >= 0")
        lo, hi = self.shift_start_s_range
        _require(lo <= hi, f"shift_start_s_range must be ordered, got {self.shift_start_s_range}")
        _check_range("shift_length_s_range", self.shift_length_s_range, low=60.0)
        _require(len(self.vehicles) >= 1, "at least one vehicle profile is needed")
        _require(sum(v.share for v in self.vehicles) > 0, "vehicle shares must not all be zero")
        _require(0 <= self.courier_speed_sigma <= 1, "courier_speed_sigma must be in [0, 1]")
        _require(0 <= self.leg_speed_sigma <= 1, "leg_speed_sigma must be in [0, 1]")
        _require(
            1 <= self.detour_factor <= 3,
            f"detour_factor must be in [1, 3], got {self.detour_factor}",
        )
        _check_range("pickup_handling_s_range", self.pickup_handling_s_range)
        _check_range("dropoff_handling_s_range", self.dropoff_handling_s_range)
        _check_probability("offline_mid_route_prob", self.offline_mid_route_prob)
        _check_range("break_s_range", self.break_s_range, low=1.0)
        _require(
            1 <= self.ping_interval_s <= 60,
            f"ping_interval_s must be in 1..60, got {self.ping_interval_s}",
        )
        _require(0 <= self.gps_noise_m <= 100, "gps_noise_m must be in [0, 100]")
        _require(bool(self.gateway_id), "gateway_id must not be empty")


@dataclass(frozen=True)
class AppConfig:
    """The courier app's answers to offers.

    An offer is accepted with probability `sigmoid(accept_intercept + offset - accept_per_km ·
    pickup_km - accept_per_extra_order · (orders - 1))`, where pickup_km is the straight-line
    distance from the courier to the offer's first pickup and offset the courier's own, drawn
    once per courier (normal, `accept_offset_sd`). A courier that is offline, past its shift end
    or would exceed its capacity declines.

    Attributes:
        accept_intercept: logit of accepting a single order at the courier's position.
        accept_per_km: logit decrease per km of pickup distance.
        accept_per_extra_order: logit decrease per additional order in the bundle.
        accept_offset_sd: standard deviation of each courier's personal logit offset (some
            couriers decline far more often than others).
        response_delay_median_s: median time to answer (lognormal).
        response_delay_sigma: lognormal sigma of the answer time.
        response_delay_max_s: answer times are capped here.
        late_response_prob: probability that the answer comes after the lease expired.
        late_response_s_range: how long after the lease expiry such an answer comes (uniform).
    """

    accept_intercept: float = 3.0
    accept_per_km: float = 0.45
    accept_per_extra_order: float = 0.7
    accept_offset_sd: float = 1.0
    response_delay_median_s: float = 6.0
    response_delay_sigma: float = 0.6
    response_delay_max_s: float = 60.0
    late_response_prob: float = 0.02
    late_response_s_range: tuple[float, float] = (1.0, 30.0)

    def __post_init__(self) -> None:
        for name in ("accept_intercept", "accept_per_km", "accept_per_extra_order"):
            _require(math.isfinite(getattr(self, name)), f"{name} must be finite")
        _require(self.accept_per_km >= 0, "accept_per_km must be >= 0")
        _require(self.accept_per_extra_order >= 0, "accept_per_extra_order must be >= 0")
        _require(0 <= self.accept_offset_sd <= 5, "accept_offset_sd must be in [0, 5]")
        _require(self.response_delay_median_s > 0, "response_delay_median_s must be positive")
        _require(0 <= self.response_delay_sigma <= 2, "response_delay_sigma must be in [0, 2]")
        _require(self.response_delay_max_s >= 1, "response_delay_max_s must be at least 1 second")
        _check_probability("late_response_prob", self.late_response_prob)
        _check_range("late_response_s_range", self.late_response_s_range, low=0.001)


@dataclass(frozen=True)
class CityConfig:
    """A whole scenario: the city, its time window, its actors and the dispatch cadence.

    Attributes:
        seed: seeds every random stream; the same seed gives the same city and the same demand.
        name: label used in reports.
        center_lat: city centre latitude (degrees).
        center_lon: city centre longitude (degrees).
        radius_m: city radius; customers live within it.
        start_ts_ms: scenario start (event time).
        duration_s: orders are placed during [start, start + duration).
        utc_offset_min: local time = UTC + this offset (drives the demand curve).
        tick_interval_s: event time between two `dispatch_tick`s of each shard.
        drain_max_s: after the scenario, ticking continues until every order is settled, for at
            most this long.
        max_order_age_s: an order neither picked up nor finished this long after placement is
            given up by the simulation (counted `expired` by the KPIs if the dispatcher did not
            expire it first).
        shard_precision: geohash precision of shards (record keys).
        id_prefix: prefix of every id the simulation makes (orders, couriers, merchants,
            events), so that several runs can share one broker.
        merchants: merchant settings.
        demand: demand settings.
        customers: cancellation settings.
        fleet: courier settings.
        app: courier-app settings (answers to offers).
    """

    seed: int = 7
    name: str = "city"
    center_lat: float = 40.7580
    center_lon: float = -73.9855
    radius_m: float = 7_000.0
    start_ts_ms: int = 1_781_622_000_000  # 2026-06-16 11:00 at UTC-4
    duration_s: float = 2.5 * 3600
    utc_offset_min: int = -240
    tick_interval_s: float = 15.0
    drain_max_s: float = 3_600.0
    max_order_age_s: float = 5_400.0
    shard_precision: int = 4
    id_prefix: str = ""
    merchants: MerchantConfig = field(default_factory=MerchantConfig)
    demand: DemandConfig = field(default_factory=DemandConfig)
    customers: CustomerConfig = field(default_factory=CustomerConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    app: AppConfig = field(default_factory=AppConfig)

    def __post_init__(self) -> None:
        _require(-85 <= self.center_lat <= 85, f"center_lat out of range: {self.center_lat}")
        _require(-180 <= self.center_lon <= 180, f"center_lon out of range: {self.center_lon}")
        _require(
            500 <= self.radius_m <= 100_000,
            f"radius_m must be in [500, 100000], got {self.radius_m}",
        )
        _require(
            0 <= self.start_ts_ms <= 4_000_000_000_000,
            f"start_ts_ms out of range: {self.start_ts_ms}",
        )
        _require(60 <= self.duration_s <= 7 * 86_400, "duration_s must be in [60 s, 7 days]")
        _require(-14 * 60 <= self.utc_offset_min <= 14 * 60, "utc_offset_min must be within ±14 h")
        _require(
            1.0 <= self.tick_interval_s <= 600,
            f"tick_interval_s must be in [1, 600], got {self.tick_interval_s}",
        )
        _require(self.drain_max_s >= 0, "drain_max_s must be >= 0")
        _require(self.max_order_age_s >= 60, "max_order_age_s must be at least 60 s")
        _require(1 <= self.shard_precision <= 12, "shard_precision must be in 1..12")
        _require(
            all(c.isalnum() or c in "_.:@-" for c in self.id_prefix) and len(self.id_prefix) <= 32,
            "id_prefix may hold only letters, digits and _.:@- (at most 32 characters)",
        )

    @property
    def scenario_end_ts_ms(self) -> int:
        """End of the order-placement window."""
        return self.start_ts_ms + round(self.duration_s * 1000)

    @property
    def tick_interval_ms(self) -> int:
        """`tick_interval_s` in milliseconds."""
        return round(self.tick_interval_s * 1000)

    def local_hour(self, ts_ms: float) -> float:
        """Local hour of day (0 <= h < 24, fractional) at `ts_ms`."""
        seconds = ts_ms / 1000 + self.utc_offset_min * 60
        return (seconds % 86_400) / 3600


def local_start_ts_ms(year: int, month: int, day: int, hour: float, utc_offset_min: int) -> int:
    """Epoch ms of a local wall-clock time at a fixed UTC offset."""
    tz = timezone(timedelta(minutes=utc_offset_min))
    midnight = datetime(year, month, day, tzinfo=tz)
    return int((midnight + timedelta(hours=hour)).timestamp() * 1000)


def lunch_rush(seed: int = 7) -> CityConfig:
    """Midtown Manhattan (two geohash-4 shards), 11:00-13:30 local on a weekday, peak at 12:15.

    About 330 orders from 60 merchants, 90 couriers on staggered shifts, pings every 4 s,
    dispatch ticks every 15 s of event time.
    """
    return CityConfig(
        seed=seed,
        name="lunch-rush",
        start_ts_ms=local_start_ts_ms(2026, 6, 16, 11.0, -240),
        duration_s=2.5 * 3600,
        utc_offset_min=-240,
    )


def small_town(seed: int = 7) -> CityConfig:
    """A small, quick scenario (tests and smoke runs): 20 minutes at lunch, ~15 orders.

    Same city centre as `lunch_rush`, a third of the radius (one or two shards), 15 merchants,
    20 couriers on shifts covering the whole window.
    """
    return CityConfig(
        seed=seed,
        name="small-town",
        start_ts_ms=local_start_ts_ms(2026, 6, 16, 12.0, -240),
        duration_s=20 * 60.0,
        utc_offset_min=-240,
        radius_m=3_000.0,
        drain_max_s=2_700.0,
        merchants=MerchantConfig(n_merchants=15, spread_m=1_500.0),
        demand=DemandConfig(
            base_orders_per_h=25.0, lunch_peak_orders_per_h=35.0, delivery_radius_m=2_000.0
        ),
        fleet=FleetConfig(
            n_couriers=20,
            home_radius_m=2_500.0,
            shift_start_s_range=(-900.0, 0.0),
            shift_length_s_range=(7_200.0, 9_000.0),
        ),
    )


#: Named presets, for command lines.
PRESETS = {"lunch_rush": lunch_rush, "small_town": small_town}
