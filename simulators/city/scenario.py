"""The seeded city drawn before a run: merchants, every order with its fate, couriers and shifts.

Everything the outside world decides independently of the dispatcher (what is ordered where and
when, how long kitchens take, when a customer would give up, who works when) is drawn here,
from its own random streams, so two dispatchers run against the same seed face the same city.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contracts.geo import distance_m, encode_many, shard_of
from contracts.geo import offset_m as offset
from simulators.city.config import CityConfig
from simulators.city.demand import arrival_times_ms

#: Names of the independent random streams of a run, in spawn order (never reorder: seeds;
#: new streams go at the end, so the draws of the others stay the same).
STREAMS = (
    "merchants",
    "orders",
    "customers",
    "fleet",
    "travel",
    "app",
    "gps",
    "incidents",
    "tablets",
    "habits",
)


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent, seeded generator per stream name in `STREAMS`."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


@dataclass(frozen=True)
class Merchant:
    """A merchant: position, shard, popularity weight, median prep time and tablet bias.

    `estimate_bias` multiplies every ready-time estimate its tablet sends.
    """

    merchant_id: str
    lat: float
    lon: float
    shard: str
    weight: float
    prep_median_s: float
    estimate_bias: float = 1.0


@dataclass(frozen=True)
class OrderPlan:
    """One order and what the world will do with it, independent of dispatch.

    Attributes:
        order_id: the order's id.
        merchant_id: where it is prepared.
        shard: the pickup's shard (record key of the order's events).
        pickup: merchant position (lat, lon).
        dropoff: customer position (lat, lon).
        placed_ts_ms: `order_created` time.
        promise_ts_ms: promised delivery time.
        prep_estimate_s: the platform's preparation estimate at placement.
        accepted_ts_ms: `merchant_accepted` time.
        estimated_ready_ts_ms: the merchant's ready estimate.
        ready_ts_ms: when the food is actually ready (`order_ready`): the kitchen's usual time
            for the order, slowed by the orders already in preparation at the merchant.
        kitchen_queue: orders of the merchant in preparation when this one was placed.
        cancel_ts_ms: when the customer cancels if the order was not picked up by then (None:
            never).
        n_items: items in the order.
        subtotal_cents: order value.
    """

    order_id: str
    merchant_id: str
    shard: str
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    placed_ts_ms: int
    promise_ts_ms: int
    prep_estimate_s: float
    accepted_ts_ms: int
    estimated_ready_ts_ms: int
    ready_ts_ms: int
    cancel_ts_ms: int | None
    n_items: int
    subtotal_cents: int
    kitchen_queue: int = 0


@dataclass(frozen=True)
class CourierPlan:
    """One courier's shift: where it starts, its vehicle, speed, capacity and habits.

    `accept_offset` is added to the logit of accepting any offer (`courier_app`).
    """

    courier_id: str
    home: tuple[float, float]
    vehicle: str
    speed_mps: float
    capacity: int
    shift_start_ts_ms: int
    shift_end_ts_ms: int
    accept_offset: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """Everything drawn for one seed: merchants, orders (by placement time), couriers, shards."""

    merchants: tuple[Merchant, ...]
    orders: tuple[OrderPlan, ...]
    couriers: tuple[CourierPlan, ...]
    shards: tuple[str, ...]


def _disc_point(
    rng: np.random.Generator, center: tuple[float, float], radius_m: float
) -> tuple[float, float]:
    r = radius_m * math.sqrt(float(rng.random()))
    theta = 2 * math.pi * float(rng.random())
    return offset(center[0], center[1], r * math.cos(theta), r * math.sin(theta))


def city_shards(config: CityConfig, extra: list[tuple[float, float]]) -> tuple[str, ...]:
    """Shards covering the city disc (sampled on a grid) and the `extra` points, sorted."""
    steps = np.linspace(-config.radius_m, config.radius_m, 61)
    east, north = np.meshgrid(steps, steps)
    inside = east**2 + north**2 <= config.radius_m**2
    lats, lons = [], []
    for e, n in zip(east[inside].tolist(), north[inside].tolist(), strict=True):
        lat, lon = offset(config.center_lat, config.center_lon, e, n)
        lats.append(lat)
        lons.append(lon)
    for lat, lon in extra:
        lats.append(lat)
        lons.append(lon)
    cells = encode_many(np.array(lats), np.array(lons), config.shard_precision)
    return tuple(sorted(set(cells.tolist())))


def _merchants(
    config: CityConfig, rng: np.random.Generator, tablets: np.random.Generator
) -> list[Merchant]:
    cfg = config.merchants
    center = (config.center_lat, config.center_lon)
    out = []
    for i in range(cfg.n_merchants):
        for _ in range(100):
            east, north = rng.normal(0.0, cfg.spread_m, size=2).tolist()
            if math.hypot(east, north) <= 0.9 * config.radius_m:
                break
        else:
            east, north = 0.0, 0.0
        lat, lon = offset(center[0], center[1], east, north)
        median = float(rng.uniform(*cfg.prep_median_s_range))
        if float(rng.random()) < cfg.slow_share:
            median *= cfg.slow_factor
        weight = float(rng.lognormal(0.0, cfg.popularity_sigma))
        out.append(
            Merchant(
                merchant_id=f"{config.id_prefix}m{i}",
                lat=lat,
                lon=lon,
                shard=shard_of(lat, lon, config.shard_precision),
                weight=weight,
                prep_median_s=median,
                estimate_bias=float(tablets.lognormal(0.0, cfg.estimate_bias_sigma)),
            )
        )
    return out


def _nominal_speed_mps(config: CityConfig) -> float:
    vehicles = config.fleet.vehicles
    total = sum(v.share for v in vehicles)
    return sum(v.share * v.speed_mps for v in vehicles) / total


class _Kitchens:
    """Each merchant's orders in preparation: placed, not ready yet, not cancelled."""

    def __init__(self) -> None:
        self._busy: dict[str, list[tuple[int, int | None]]] = {}

    def queue(self, merchant_id: str, placed_ts_ms: int) -> int:
        """Orders of the merchant in preparation at `placed_ts_ms` (forgets finished ones)."""
        busy = [
            (ready, cancel)
            for ready, cancel in self._busy.get(merchant_id, [])
            if ready > placed_ts_ms and (cancel is None or cancel > placed_ts_ms)
        ]
        self._busy[merchant_id] = busy
        return len(busy)

    def add(self, merchant_id: str, ready_ts_ms: int, cancel_ts_ms: int | None) -> None:
        """A new order in preparation until `ready_ts_ms` (or its cancellation)."""
        self._busy.setdefault(merchant_id, []).append((ready_ts_ms, cancel_ts_ms))


def kitchen_factor(queue: int, per_order: float, most: float) -> float:
    """How much slower a kitchen is with `queue` orders already in preparation.

    Example:
        >>> kitchen_factor(0, 0.1, 2.0), kitchen_factor(3, 0.1, 2.0), kitchen_factor(30, 0.1, 2.0)
        (1.0, 1.3, 2.0)
    """
    return min(1.0 + per_order * queue, most)


def _orders(
    config: CityConfig,
    merchants: list[Merchant],
    rng: np.random.Generator,
    customers: np.random.Generator,
) -> list[OrderPlan]:
    demand, mcfg, ccfg = config.demand, config.merchants, config.customers
    kitchens = _Kitchens()
    weights = np.array([m.weight for m in merchants])
    weights = weights / weights.sum()
    speed = _nominal_speed_mps(config)
    center = (config.center_lat, config.center_lon)
    out = []
    for i, placed in enumerate(arrival_times_ms(config, rng)):
        merchant = merchants[int(rng.choice(len(merchants), p=weights))]
        pickup = (merchant.lat, merchant.lon)
        for _ in range(100):
            dropoff = _disc_point(rng, pickup, demand.delivery_radius_m)
            if distance_m(*dropoff, *center) <= config.radius_m:
                break
        else:
            dropoff = _disc_point(rng, center, config.radius_m)
        usual_s = merchant.prep_median_s * float(rng.lognormal(0.0, mcfg.prep_sigma))
        estimate_s = (
            usual_s * merchant.estimate_bias * float(rng.lognormal(0.0, mcfg.estimate_sigma))
        )
        queue = kitchens.queue(merchant.merchant_id, placed)
        factor = kitchen_factor(queue, mcfg.kitchen_slowdown_per_order, mcfg.kitchen_slowdown_max)
        prep_s = usual_s * factor
        accept_delay_s = float(rng.uniform(*mcfg.accept_delay_s_range))
        travel_s = distance_m(*pickup, *dropoff) * config.fleet.detour_factor / speed
        promise_s = min(
            max(merchant.prep_median_s + travel_s + demand.promise_buffer_s, demand.promise_min_s),
            demand.promise_max_s,
        )
        n_items = int(rng.integers(1, demand.max_items + 1))
        subtotal = int(n_items * rng.integers(600, 2_400))
        ready = placed + round(max(prep_s, accept_delay_s + 1) * 1000)
        cancel_ts: int | None = None
        if float(customers.random()) < ccfg.early_cancel_prob:
            cancel_ts = placed + round(float(customers.uniform(*ccfg.early_cancel_s_range)) * 1000)
        patience_s = ccfg.patience_median_s * float(customers.lognormal(0.0, ccfg.patience_sigma))
        if float(customers.random()) < ccfg.late_cancel_prob:
            late = placed + round(patience_s * 1000)
            cancel_ts = late if cancel_ts is None else min(cancel_ts, late)
        kitchens.add(merchant.merchant_id, ready, cancel_ts)
        out.append(
            OrderPlan(
                order_id=f"{config.id_prefix}o{i}",
                merchant_id=merchant.merchant_id,
                shard=merchant.shard,
                pickup=pickup,
                dropoff=dropoff,
                placed_ts_ms=placed,
                promise_ts_ms=placed + round(promise_s * 1000),
                prep_estimate_s=round(merchant.prep_median_s, 1),
                accepted_ts_ms=placed + round(accept_delay_s * 1000),
                estimated_ready_ts_ms=placed + round(max(estimate_s, accept_delay_s) * 1000),
                ready_ts_ms=ready,
                cancel_ts_ms=cancel_ts,
                n_items=n_items,
                subtotal_cents=subtotal,
                kitchen_queue=queue,
            )
        )
    return out


def _couriers(
    config: CityConfig, rng: np.random.Generator, habits: np.random.Generator
) -> list[CourierPlan]:
    fleet = config.fleet
    shares = np.array([v.share for v in fleet.vehicles], dtype=np.float64)
    shares = shares / shares.sum()
    center = (config.center_lat, config.center_lon)
    out = []
    for i in range(fleet.n_couriers):
        profile = fleet.vehicles[int(rng.choice(len(fleet.vehicles), p=shares))]
        home = _disc_point(rng, center, min(fleet.home_radius_m, config.radius_m))
        start_s = float(rng.uniform(*fleet.shift_start_s_range))
        length_s = float(rng.uniform(*fleet.shift_length_s_range))
        start = config.start_ts_ms + round(start_s * 1000)
        end = start + round(length_s * 1000)
        start = max(start, config.start_ts_ms)
        end = max(end, start + 60_000)
        out.append(
            CourierPlan(
                courier_id=f"{config.id_prefix}c{i}",
                home=home,
                vehicle=profile.kind,
                speed_mps=profile.speed_mps * float(rng.lognormal(0.0, fleet.courier_speed_sigma)),
                capacity=profile.capacity,
                shift_start_ts_ms=start,
                shift_end_ts_ms=end,
                accept_offset=float(habits.normal(0.0, config.app.accept_offset_sd)),
            )
        )
    return out


def build_scenario(config: CityConfig) -> Scenario:
    """Draw the city of `config` (deterministic for its seed)."""
    streams = rng_streams(config.seed)
    merchants = _merchants(config, streams["merchants"], streams["tablets"])
    orders = _orders(config, merchants, streams["orders"], streams["customers"])
    couriers = _couriers(config, streams["fleet"], streams["habits"])
    shards = city_shards(config, [(m.lat, m.lon) for m in merchants])
    return Scenario(tuple(merchants), tuple(orders), tuple(couriers), shards)
