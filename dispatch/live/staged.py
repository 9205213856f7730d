"""The staged ETA in live dispatch: when food is ready (P1), the drop-off announced at placement.

Ready times (`ready_times`), for every order a tick sees, by the engine's variant
(`EngineConfig.variant`), first known of:

1. `order_ready`: the merchant said so (p50 = p90 = that time);
2. `learned` only: the prep model (P1) of the served model set, from the order's features at
   placement and the merchant's estimate when it came: its p50 is the commitment time (never
   before now: the food is not ready yet), its p90 the lateness risk;
3. `merchant` and `learned`: the merchant's estimate, then the order's own prep estimate;
4. placement plus `default_prep_s` (`fixed` skips 2 and 3).

A `learned` order that cannot use P1 falls back down the chain, counted by reason
(`no_model`: no prep model loaded; `no_features`: the order has no features at placement).
The features themselves degrade entity → city → global when missing or stale (`features`).

The drop-off announced at placement (`placement_eta`): the ready time of the chain at
placement (p50 and p90), plus the ride from merchant to customer, plus the service halves;
with a `total` model in the set (`learned`), that model's p50 and p90 over the same staged base
(P1 p50 plus the ride's p50). It carries the model set's version, or the leg predictor's when
no set served it (then it is a fallback).

Shadow evaluation (`label`): when an order's food is ready (P1) or it is delivered (placement
ETA), the served set's and the candidate set's predictions from the same features at placement
are scored against the outcome, each reported to telemetry with its role and version.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from dispatch.lifecycle import OrderState
from dispatch.live.engine_config import EngineConfig
from dispatch.live.eta import FloatArray, LegPrediction, LegPredictor, StraightLinePredictor
from dispatch.live.telemetry import NullTelemetry, Telemetry
from models.registry import ModelSet
from models.staged import predict_prep, ride_quantiles, total_matrix

IntArray = npt.NDArray[np.int64]

ORDER_READY = "order_ready"
MODEL = "model"
MERCHANT_ESTIMATE = "merchant_estimate"
ORDER_ESTIMATE = "order_estimate"
DEFAULT = "default"
NO_MODEL = "no_model"
NO_FEATURES = "no_features"


class ModelSets(Protocol):
    """Where the engine finds its models (`models.registry.ModelRegistry`)."""

    def current_set(self) -> ModelSet | None:
        """The served model set, if one is loaded."""
        ...

    def candidate_set(self) -> ModelSet | None:
        """The set running in shadow, if any."""
        ...


def _unknown(key: str) -> float:
    return math.nan


@dataclass(frozen=True)
class TickInputs:
    """What a tick reads beside its shard's state: the served models and live features.

    Attributes:
        served: the model set the tick uses (None: none; only `learned` gets one).
        zone_speed_mps: a zone's observed speed in the last hour (NaN: unknown).
        courier_speed_mps: a courier's own travel speed (NaN: unknown).
        decline_prob: a courier's probability of declining an offer (NaN: unknown).
        zone_supply_demand: a zone's supply and demand (`FeatureEngine.zone_supply_demand`);
            None without online features (then no zone surges).
        telemetry: where ready-time sources are counted.
    """

    served: ModelSet | None = None
    zone_speed_mps: Callable[[str], float] = _unknown
    courier_speed_mps: Callable[[str], float] = _unknown
    decline_prob: Callable[[str], float] = _unknown
    zone_supply_demand: Callable[[str], tuple[float, float]] | None = None
    telemetry: Telemetry = field(default_factory=NullTelemetry)


class VersionedPredictor:
    """A leg predictor whose version is the served model set's when the variant learns.

    Decisions and ETAs carry `version`: the set's (`learned` with a set loaded), else the
    predictor's own.
    """

    def __init__(
        self, predictor: LegPredictor, models: ModelSets | None, config: EngineConfig
    ) -> None:
        self.predictor = predictor
        self.models = models
        self.config = config

    @property
    def version(self) -> str:
        """The version decisions and ETAs carry."""
        served = prep_model_of(self.models, self.config)
        return served.version if served is not None else self.predictor.version

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
        context: Mapping[str, FloatArray] | None = None,
    ) -> LegPrediction:
        """The wrapped predictor's legs."""
        return self.predictor.predict(
            origin_lat, origin_lon, dest_lat, dest_lon, request_ts_ms, context=context
        )


@dataclass(frozen=True)
class ReadyTimes:
    """Ready times of a list of orders (epoch ms), and where each came from."""

    p50_ts_ms: IntArray
    p90_ts_ms: IntArray
    source: tuple[str, ...]


def _tablet_s(order: OrderState) -> float | None:
    estimate = order.estimated_ready_ts_ms
    return None if estimate is None else (estimate - order.placed_ts_ms) / 1000.0


def _merchant_chain(order: OrderState, config: EngineConfig) -> tuple[int, str]:
    """Ready time without a model, and its source (steps 3 and 4 of the chain)."""
    if config.variant != "fixed":
        if order.estimated_ready_ts_ms is not None:
            return order.estimated_ready_ts_ms, MERCHANT_ESTIMATE
        if order.prep_estimate_s is not None:
            return order.placed_ts_ms + int(order.prep_estimate_s * 1000), ORDER_ESTIMATE
    return order.placed_ts_ms + int(config.default_prep_s * 1000), DEFAULT


def prep_model_of(models: ModelSets | None, config: EngineConfig) -> ModelSet | None:
    """The served set when the variant learns, else None."""
    if models is None or config.variant != "learned":
        return None
    return models.current_set()


def ready_times(
    orders: Sequence[OrderState],
    now_ms: int,
    config: EngineConfig,
    served: ModelSet | None,
    telemetry: Telemetry,
    *,
    with_tablet: bool = True,
) -> ReadyTimes:
    """Ready times of `orders` at `now_ms` (the chain of the module docstring), counted.

    `with_tablet=False` leaves out the merchant's estimate (what is known at placement).
    """
    n = len(orders)
    p50 = np.zeros(n, dtype=np.int64)
    p90 = np.zeros(n, dtype=np.int64)
    source = [""] * n
    prep = served.get("prep") if served is not None else None
    learn: list[int] = []
    for i, order in enumerate(orders):
        ready = order.ts("order_ready")
        if ready is not None:
            p50[i] = p90[i] = max(ready, order.placed_ts_ms)
            source[i] = ORDER_READY
            continue
        if config.variant == "learned":
            if prep is not None and order.dispatch.placement:
                learn.append(i)
                continue
            telemetry.ready_times(NO_MODEL if prep is None else NO_FEATURES, 1)
        ts, source[i] = _merchant_chain(order, config)
        p50[i] = p90[i] = max(ts, order.placed_ts_ms)
    if learn and prep is not None:
        picked = [orders[i] for i in learn]
        q50, q90, fell_back = predict_prep(
            prep,
            [dict(o.dispatch.placement) for o in picked],
            [o.prep_estimate_s for o in picked],
            [_tablet_s(o) if with_tablet else None for o in picked],
        )
        for j, i in enumerate(learn):
            order = orders[i]
            if fell_back[j]:
                ts, source[i] = _merchant_chain(order, config)
                p50[i] = p90[i] = max(ts, order.placed_ts_ms)
                telemetry.ready_times(NO_MODEL, 1)
                continue
            at50 = max(order.placed_ts_ms + int(q50[j] * 1000), now_ms, order.placed_ts_ms)
            p50[i] = at50
            p90[i] = max(order.placed_ts_ms + int(q90[j] * 1000), at50)
            source[i] = MODEL
    for name in set(source):
        telemetry.ready_times(name, source.count(name))
    return ReadyTimes(p50, p90, tuple(source))


@dataclass(frozen=True)
class PlacementEta:
    """The drop-off announced at placement (epoch ms), and what served it."""

    p50_ts_ms: int
    p90_ts_ms: int
    model_version: str
    fallback_reason: str | None


def _ride(
    order: OrderState, predictor: LegPredictor, context: Mapping[str, float] | None
) -> tuple[float, float, str | None]:
    """The ride's p50 and p90, seconds, and why it is the straight-line base (None: it is not).

    A predictor that raises gives the straight-line ride (`model_error`): an order is never
    refused for its ETA.
    """
    legs = (
        np.array([order.pickup_lat]),
        np.array([order.pickup_lon]),
        np.array([order.dropoff_lat]),
        np.array([order.dropoff_lon]),
    )
    arrays = None if context is None else {k: np.array([v]) for k, v in context.items()}
    reason = None
    try:
        prediction = predictor.predict(*legs, order.placed_ts_ms, context=arrays)
    except Exception:  # a model failure must never refuse an order
        prediction = StraightLinePredictor().predict(*legs, order.placed_ts_ms)
        reason = "model_error"
    p50 = float(prediction.p50_s[0])
    p90 = max(float(prediction.p90_s[0]), p50)
    if not (math.isfinite(p50) and math.isfinite(p90)):
        return 0.0, 0.0, "non_finite_output"
    return p50, p90, reason


def placement_eta(
    order: OrderState,
    config: EngineConfig,
    predictor: LegPredictor,
    served: ModelSet | None,
    telemetry: Telemetry,
    ride_context: Mapping[str, float] | None = None,
) -> PlacementEta:
    """The drop-off to announce for `order` at its placement (see the module docstring).

    `ride_context` is the ride's live context for the leg predictor (None: none).
    """
    now_ms = order.placed_ts_ms
    ready = ready_times([order], now_ms, config, served, telemetry, with_tablet=False)
    prep50 = (int(ready.p50_ts_ms[0]) - now_ms) / 1000.0
    prep90 = (int(ready.p90_ts_ms[0]) - now_ms) / 1000.0
    if served is not None and ready.source[0] == MODEL:
        staged = _staged_total(served, order, np.array([prep50]), np.array([prep90]))
        if staged is not None:
            p50, p90 = now_ms + int(staged[0] * 1000), now_ms + int(staged[1] * 1000)
            return PlacementEta(p50, max(p50, p90), served.version, None)
    ride50, ride90, failed = _ride(order, predictor, ride_context)
    service_s = (config.service.pickup_s + config.service.dropoff_s) / 2.0
    p50 = now_ms + int((prep50 + ride50 + service_s) * 1000)
    p90 = max(p50, now_ms + int((prep90 + ride90 + service_s) * 1000))
    if ready.source[0] == MODEL and served is not None:
        return PlacementEta(p50, p90, served.version, failed or "missing_model")
    return PlacementEta(p50, p90, predictor.version, failed)


def _staged_total(
    models: ModelSet,
    order: OrderState,
    prep50_s: npt.NDArray[np.float64],
    prep90_s: npt.NDArray[np.float64],
) -> tuple[float, float] | None:
    """The set's placement ETA (p50, p90 seconds from placement), as trained, or None."""
    total = models.get("total")
    if total is None:
        return None
    row = _row(order)
    ride50, ride90 = ride_quantiles(models.get("travel"), [row])
    x, base = total_matrix([row], prep50_s, prep90_s, ride50, ride90)
    out = total.predict(x, base)
    if not bool(out.finite[0]):
        return None
    return float(out.p50_s[0]), float(out.p90_s[0])


def _row(order: OrderState) -> dict[str, float | None]:
    """The order's features at placement with its coordinates and time."""
    return {
        **dict(order.dispatch.placement),
        "pickup_lat": order.pickup_lat,
        "pickup_lon": order.pickup_lon,
        "dropoff_lat": order.dropoff_lat,
        "dropoff_lon": order.dropoff_lon,
        "created_ts_ms": float(order.placed_ts_ms),
    }


def _score(
    kind: str, role: str, models: ModelSet, order: OrderState, actual_s: float, telemetry: Telemetry
) -> None:
    prep = models.get("prep")
    if prep is None or not order.dispatch.placement:
        return
    row = dict(order.dispatch.placement)
    q50, q90, fell_back = predict_prep(prep, [row], [order.prep_estimate_s], [None])
    if fell_back[0]:
        return
    if kind == "prep":
        telemetry.model_label(
            kind, role, models.version, abs(actual_s - q50[0]), actual_s <= q90[0]
        )
        return
    staged = _staged_total(models, order, q50, q90)
    if staged is not None:
        telemetry.model_label(
            kind, role, models.version, abs(actual_s - staged[0]), actual_s <= staged[1]
        )


def label(
    kind: str, order: OrderState, actual_s: float, models: ModelSets | None, telemetry: Telemetry
) -> None:
    """Score the served and candidate sets' `kind` (`prep` or `total`) on one outcome.

    Both are predicted from the order's features at placement, without the merchant's
    estimate (what the placement ETA knows).
    """
    if models is None or not math.isfinite(actual_s):
        return
    for role, found in (("served", models.current_set()), ("candidate", models.candidate_set())):
        if found is not None:
            _score(kind, role, found, order, actual_s, telemetry)
