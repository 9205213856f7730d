"""The staged ETA learned from the event log: prep (P1), travel legs (P2, P3), placement ETA.

Three residual quantile models (p50 and a conformal p90, `models.residual`), all trained from
the rows of `features.offline.replay_log`, so serving and training read the same feature
definitions:

* `prep`: placement to food ready. Base: the order's own prep estimate, else the merchant's
  30-day median, else `DEFAULT_PREP_S`; inputs: the merchant's recent and long-run prep times,
  orders waiting and in preparation at the merchant, how far its tablet estimates are off,
  the tablet's estimate for this order when it came (an input, not the answer: unknown at
  placement, so every training order is seen both with and without it), hour and weekday.
  Target: log of actual over base.
* `travel`: one leg between two points (`models.legs` features) with live context: the origin
  zone's observed speed in the last hour and the courier's own speed (`TRAVEL_CONTEXT`; NaN
  when unknown at every level of the feature store). Target: log of actual over the
  straight-line base.
* `total`: placement to delivery. Base: P1's p50 plus the direct ride's p50; inputs: P1's p50
  and p90, the ride, the zone's demand and supply, the merchant's queue, hour and weekday.
  Target: actual minus base. P1's predictions on the training orders are cross-fitted (each
  log's orders predicted by a P1 trained on the other logs), as the served P1 never saw the
  orders it predicts.

Rows are grouped in days: a day is one calendar day (UTC) of one log, days ordered by log, then
date (several simulated cities of one date are several days). The p90 of each model is
calibrated on the rows of the last `calibration_days` days, which its p90 booster never saw;
P1 is cross-fitted by day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from contracts.geo import haversine_m
from features.offline import OfflineRows, load_event_log, replay_log
from models.base_eta import StraightLineProvider
from models.legs import Leg, TravelFeatureConfig, travel_features
from models.residual import (
    ClampConfig,
    ResidualQuantileModel,
    Target,
    TrainConfig,
    TrainingData,
    train_residual_model,
)
from models.service import ContextFeature

FloatArray = npt.NDArray[np.float64]
DAY_MS = 86_400_000

#: Base prep time when the order has no estimate and no merchant, city or global history exists.
DEFAULT_PREP_S = 900.0

#: Context features of the travel model, in matrix order after the `models.legs` columns.
#: Not required: a value unknown at every level is passed to the model as missing.
TRAVEL_CONTEXT: tuple[ContextFeature, ...] = (
    ContextFeature("zone_speed_mps", sla_ms=15 * 60_000, required=False),
    ContextFeature("courier_speed_mps", sla_ms=86_400_000, required=False),
)

#: Placement-row keys the prep model reads (`FeatureEngine.order_features` names).
PREP_ROW_KEYS: tuple[str, ...] = (
    "merchant_prep_30d.prep_mean_s",
    "merchant_prep_30d.prep_p50_s",
    "merchant_prep_30d.prep_p90_s",
    "merchant_prep_30d.prep_count",
    "merchant_prep_2h.prep_mean_s",
    "merchant_prep_2h.prep_count",
    "merchant_orders_waiting.orders_waiting",
    "merchant_orders_preparing.orders_preparing",
    "merchant_estimate_error_30d.estimate_log_ratio_mean",
    "merchant_estimate_error_30d.estimate_count",
)
PREP_COLUMNS: tuple[str, ...] = (
    "base_s",
    "prep_estimate_s",
    "tablet_estimate_s",
    "tablet_log_ratio",
    "tablet_bias_corrected",
    *PREP_ROW_KEYS,
    "hour",
    "weekday",
)

#: Placement-row keys the placement-ETA model reads.
TOTAL_ROW_KEYS: tuple[str, ...] = (
    "zone_demand_1h.demand_orders",
    "zone_supply.supply_couriers",
    "supply_demand_ratio",
    "merchant_orders_waiting.orders_waiting",
    "merchant_orders_preparing.orders_preparing",
)
TOTAL_COLUMNS: tuple[str, ...] = (
    "base_s",
    "prep_p50_s",
    "prep_p90_s",
    "ride_p50_s",
    "ride_p90_s",
    "ride_m",
    *TOTAL_ROW_KEYS,
    "hour",
    "weekday",
)

PREP_CONFIG = TrainConfig(
    rounds_p50=300,
    rounds_p90=300,
    max_depth=3,
    learning_rate=0.05,
    min_child_weight=10.0,
    calibration_blocks=1,
)
TRAVEL_CONFIG = replace(PREP_CONFIG, max_depth=4)
TOTAL_CONFIG = PREP_CONFIG
PREP_CLAMP = ClampConfig(residual_min_s=-1800.0, residual_max_s=3600.0, max_reduction_frac=0.8)
TRAVEL_CLAMP = ClampConfig(residual_min_s=-1800.0, residual_max_s=3600.0, max_reduction_frac=0.8)
TOTAL_CLAMP = ClampConfig(residual_min_s=-1800.0, residual_max_s=3600.0, max_reduction_frac=0.6)


def _value(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v) if math.isfinite(v) else math.nan


def prep_base_s(row: Mapping[str, Any], prep_estimate_s: float | None) -> float:
    """The prep model's base: the order's estimate, else the merchant's median, else default."""
    for v in (prep_estimate_s, row.get("merchant_prep_30d.prep_p50_s")):
        if v is not None and math.isfinite(v) and v > 0:
            return float(v)
    return DEFAULT_PREP_S


def _hour_weekday(row: Mapping[str, Any]) -> tuple[float, float]:
    how = _value(row, "hour_of_week")
    if math.isnan(how):
        return math.nan, math.nan
    return how % 24.0, how // 24.0


def prep_matrix(
    rows: Sequence[Mapping[str, Any]],
    prep_estimate_s: Sequence[float | None],
    tablet_estimate_s: Sequence[float | None],
) -> tuple[npt.NDArray[np.float32], FloatArray]:
    """Features (`PREP_COLUMNS`) and base of the prep model, one row per order.

    Args:
        rows: placement rows (`FeatureEngine.order_features` keys).
        prep_estimate_s: each order's own prep estimate (`order_created.prep_estimate_s`).
        tablet_estimate_s: the merchant's estimate, seconds from placement (None: not yet).
    """
    n = len(rows)
    x = np.full((n, len(PREP_COLUMNS)), np.nan, dtype=np.float32)
    base = np.empty(n, dtype=np.float64)
    for i, (row, own, tablet) in enumerate(
        zip(rows, prep_estimate_s, tablet_estimate_s, strict=True)
    ):
        b = prep_base_s(row, own)
        base[i] = b
        t = math.nan if tablet is None or not math.isfinite(tablet) else max(float(tablet), 1.0)
        error = _value(row, "merchant_estimate_error_30d.estimate_log_ratio_mean")
        ratio = math.log(t / b) if math.isfinite(t) else math.nan
        x[i, :5] = (b, math.nan if own is None else own, t, ratio, ratio + error)
        x[i, 5 : 5 + len(PREP_ROW_KEYS)] = [_value(row, k) for k in PREP_ROW_KEYS]
        x[i, -2:] = _hour_weekday(row)
    return x, base


def travel_matrix(
    origin_lat: FloatArray,
    origin_lon: FloatArray,
    dest_lat: FloatArray,
    dest_lon: FloatArray,
    request_ts_ms: npt.NDArray[np.int64],
    leg: npt.NDArray[np.int64],
    context: Mapping[str, FloatArray],
    provider: StraightLineProvider,
) -> tuple[npt.NDArray[np.float32], FloatArray]:
    """Features and straight-line base of the travel model (what `EtaService` builds)."""
    dist = haversine_m(origin_lat, origin_lon, dest_lat, dest_lon)
    base = provider.eta_s_batch(origin_lat, origin_lon, dist)
    feats = travel_features(
        origin_lat,
        origin_lon,
        dest_lat,
        dest_lon,
        request_ts_ms,
        leg,
        base,
        TravelFeatureConfig(),
        dist_m=dist,
    )
    cols = [feats] + [
        np.asarray(context[c.name], dtype=np.float32)[:, None] for c in TRAVEL_CONTEXT
    ]
    return np.ascontiguousarray(np.hstack(cols)), base


def total_matrix(
    rows: Sequence[Mapping[str, Any]],
    prep_p50_s: FloatArray,
    prep_p90_s: FloatArray,
    ride_p50_s: FloatArray,
    ride_p90_s: FloatArray,
) -> tuple[npt.NDArray[np.float32], FloatArray]:
    """Features (`TOTAL_COLUMNS`) and base of the placement-ETA model, one row per order."""
    n = len(rows)
    x = np.full((n, len(TOTAL_COLUMNS)), np.nan, dtype=np.float32)
    base = np.asarray(prep_p50_s, dtype=np.float64) + np.asarray(ride_p50_s, dtype=np.float64)
    for i, row in enumerate(rows):
        ride_m = haversine_m(
            np.array([_value(row, "pickup_lat")]),
            np.array([_value(row, "pickup_lon")]),
            np.array([_value(row, "dropoff_lat")]),
            np.array([_value(row, "dropoff_lon")]),
        )[0]
        x[i, :6] = (base[i], prep_p50_s[i], prep_p90_s[i], ride_p50_s[i], ride_p90_s[i], ride_m)
        x[i, 6 : 6 + len(TOTAL_ROW_KEYS)] = [_value(row, k) for k in TOTAL_ROW_KEYS]
        x[i, -2:] = _hour_weekday(row)
    return x, base


@dataclass(frozen=True)
class StagedModels:
    """The three models of one training run (any may be None when it could not be trained).

    Attributes:
        prep: placement → food ready.
        travel: one travel leg with live context.
        total: placement → delivery, announced at placement.
    """

    prep: ResidualQuantileModel | None
    travel: ResidualQuantileModel | None
    total: ResidualQuantileModel | None

    def as_dict(self) -> dict[str, ResidualQuantileModel]:
        """The trained models by kind."""
        found = {"prep": self.prep, "travel": self.travel, "total": self.total}
        return {k: v for k, v in found.items() if v is not None}


def predict_prep(
    model: ResidualQuantileModel,
    rows: Sequence[Mapping[str, Any]],
    prep_estimate_s: Sequence[float | None],
    tablet_estimate_s: Sequence[float | None],
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """P1 p50 and p90 (seconds from placement) and which rows fell back to the base."""
    x, base = prep_matrix(rows, prep_estimate_s, tablet_estimate_s)
    out = model.predict(x, base)
    return out.p50_s, out.p90_s, ~out.finite


class Days:
    """The days of a list of logs: `(log, UTC date)` pairs in order, numbered from 0."""

    def __init__(self, logs: Sequence[OfflineRows]) -> None:
        keys = {
            (k, int(ts) // DAY_MS)
            for k, log in enumerate(logs)
            for ts in [r["created_ts_ms"] for r in log.orders]
            + [g["depart_ts_ms"] for g in log.legs]
        }
        self.index = {key: i for i, key in enumerate(sorted(keys))}

    def __len__(self) -> int:
        return len(self.index)

    def of(self, log: int, ts_ms: int) -> int:
        """The day of a row of log `log` at `ts_ms`."""
        return self.index[(log, int(ts_ms) // DAY_MS)]

    @staticmethod
    def shifted(ts_ms: npt.NDArray[np.int64], day: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Times moved onto their day number (for the time-based calibration window)."""
        ts = np.asarray(ts_ms, dtype=np.int64)
        return day * DAY_MS + ts % DAY_MS


def _labelled_orders(
    logs: Sequence[OfflineRows], label: str, days: Days
) -> tuple[list[dict[str, Any]], npt.NDArray[np.int64]]:
    rows: list[dict[str, Any]] = []
    found: list[int] = []
    for k, log in enumerate(logs):
        for row in log.orders:
            if row.get(label) is not None:
                rows.append(row)
                found.append(days.of(k, row["created_ts_ms"]))
    return rows, np.array(found, dtype=np.int64)


def _tablet_s(row: Mapping[str, Any]) -> float | None:
    estimate = row.get("estimated_ready_ts_ms")
    return None if estimate is None else (int(estimate) - int(row["created_ts_ms"])) / 1000.0


def prep_training_data(
    logs: Sequence[OfflineRows], days: Days
) -> tuple[TrainingData, npt.NDArray[np.int64]]:
    """Prep rows of `logs` and the day of each row.

    Each labelled order is a row without the tablet's estimate (as at placement) and, when
    the merchant sent one, a row with it.
    """
    rows, order_days = _labelled_orders(logs, "prep_s", days)
    estimated = np.array([r.get("estimated_ready_ts_ms") is not None for r in rows], dtype=bool)
    with_estimate = [r for r, e in zip(rows, estimated, strict=True) if e]
    all_rows = rows + with_estimate
    own = [r.get("prep_estimate_s") for r in all_rows]
    tablet = [None] * len(rows) + [_tablet_s(r) for r in with_estimate]
    x, base = prep_matrix(all_rows, own, tablet)
    ts = np.array([int(r["created_ts_ms"]) for r in all_rows], dtype=np.int64)
    row_days = np.concatenate([order_days, order_days[estimated]]).astype(np.int64)
    data = TrainingData(
        features=x,
        base_eta_s=base,
        actual_s=np.array([float(r["prep_s"]) for r in all_rows]),
        ts_ms=Days.shifted(ts, row_days),
        feature_names=PREP_COLUMNS,
    )
    return data, row_days


def travel_training_data(
    logs: Sequence[OfflineRows], days: Days, provider: StraightLineProvider | None = None
) -> TrainingData:
    """Travel rows of `logs`: every leg, with its context at departure."""
    legs = [
        (days.of(k, leg["depart_ts_ms"]), leg) for k, log in enumerate(logs) for leg in log.legs
    ]
    provider = provider or StraightLineProvider()

    def col(key: str) -> FloatArray:
        return np.array([math.nan if g[key] is None else float(g[key]) for _, g in legs])

    ts = np.array([int(g["depart_ts_ms"]) for _, g in legs], dtype=np.int64)
    kind = np.array([int(Leg.PICKUP if g["stop"] == "pickup" else Leg.DROPOFF) for _, g in legs])
    x, base = travel_matrix(
        col("origin_lat"),
        col("origin_lon"),
        col("dest_lat"),
        col("dest_lon"),
        ts,
        kind.astype(np.int64),
        {c.name: col(c.name) for c in TRAVEL_CONTEXT},
        provider,
    )
    names = (*TravelFeatureConfig().feature_names(), *(c.name for c in TRAVEL_CONTEXT))
    return TrainingData(
        features=x,
        base_eta_s=base,
        actual_s=col("duration_s"),
        ts_ms=Days.shifted(ts, np.array([d for d, _ in legs], dtype=np.int64)),
        feature_names=names,
    )


def ride_quantiles(
    travel: ResidualQuantileModel | None,
    rows: Sequence[Mapping[str, Any]],
    provider: StraightLineProvider | None = None,
) -> tuple[FloatArray, FloatArray]:
    """p50/p90 of each order's ride, merchant to customer, at placement (zone context only)."""
    provider = provider or StraightLineProvider()
    n = len(rows)

    def col(key: str) -> FloatArray:
        return np.array([_value(r, key) for r in rows])

    x, base = travel_matrix(
        col("pickup_lat"),
        col("pickup_lon"),
        col("dropoff_lat"),
        col("dropoff_lon"),
        np.array([int(r["created_ts_ms"]) for r in rows], dtype=np.int64),
        np.full(n, int(Leg.DROPOFF), dtype=np.int64),
        {
            "zone_speed_mps": col("zone_speed_1h.observed_speed_mps"),
            "courier_speed_mps": np.full(n, math.nan),
        },
        provider,
    )
    if travel is None or n == 0:
        return base, base * 1.3
    out = travel.predict(x, base)
    return out.p50_s, out.p90_s


def _train(
    data: TrainingData,
    kind: str,
    target: Target,
    config: TrainConfig,
    clamp: ClampConfig,
    calibration_days: int,
    progress: bool,
) -> ResidualQuantileModel:
    """A model of `kind` whose p90 is calibrated on the last `calibration_days` days."""
    return train_residual_model(
        data,
        kind=kind,
        target=target,
        config=replace(config, calibration_days=calibration_days - 0.5),
        clamp=clamp,
        metadata={"source": "event_log"},
        progress=progress,
    )


def _subset(data: TrainingData, keep: npt.NDArray[np.bool_]) -> TrainingData:
    return TrainingData(
        data.features[keep],
        data.base_eta_s[keep],
        data.actual_s[keep],
        data.ts_ms[keep],
        data.feature_names,
    )


def train_staged(
    logs: Sequence[OfflineRows], *, calibration_days: int = 2, progress: bool = True
) -> StagedModels:
    """The three models from the rows of `logs` (days as in the module docstring).

    Raises:
        CalibrationError: too few rows for a model (fewer than 50, or too few in the window).
        ValueError: fewer than `calibration_days + 1` days.
    """
    days = Days(logs)
    if len(days) <= calibration_days:
        raise ValueError(f"need more than {calibration_days} days of history, got {len(days)}")
    prep_data, prep_day = prep_training_data(logs, days)
    prep = _train(
        prep_data, "prep", Target.LOG_RATIO, PREP_CONFIG, PREP_CLAMP, calibration_days, progress
    )
    travel = _train(
        travel_training_data(logs, days),
        "travel",
        Target.LOG_RATIO,
        TRAVEL_CONFIG,
        TRAVEL_CLAMP,
        calibration_days,
        progress,
    )
    travel.metadata["context_features"] = [
        {"name": c.name, "sla_ms": c.sla_ms, "required": c.required} for c in TRAVEL_CONTEXT
    ]
    travel.metadata["feature_config"] = TravelFeatureConfig().to_dict()
    rows, order_days = _labelled_orders(logs, "total_s", days)
    p50 = np.empty(len(rows))
    p90 = np.empty(len(rows))
    for day in tqdm(range(len(days)), desc="cross-fit prep", disable=not progress):
        here = order_days == day
        if not here.any():
            continue
        fold = _train(
            _subset(prep_data, prep_day != day),
            "prep",
            Target.LOG_RATIO,
            PREP_CONFIG,
            PREP_CLAMP,
            calibration_days,
            False,
        )
        picked = [r for r, h in zip(rows, here, strict=True) if h]
        q50, q90, _ = predict_prep(
            fold, picked, [r.get("prep_estimate_s") for r in picked], [None] * len(picked)
        )
        p50[here], p90[here] = q50, q90
    ride50, ride90 = ride_quantiles(travel, rows)
    x, base = total_matrix(rows, p50, p90, ride50, ride90)
    created = np.array([int(r["created_ts_ms"]) for r in rows], dtype=np.int64)
    total_data = TrainingData(
        features=x,
        base_eta_s=base,
        actual_s=np.array([float(r["total_s"]) for r in rows]),
        ts_ms=Days.shifted(created, order_days),
        feature_names=TOTAL_COLUMNS,
    )
    total = _train(
        total_data, "total", Target.ADDITIVE, TOTAL_CONFIG, TOTAL_CLAMP, calibration_days, progress
    )
    return StagedModels(prep=prep, travel=travel, total=total)


def train_from_logs(
    paths: Sequence[Path], *, calibration_days: int = 2, progress: bool = True
) -> StagedModels:
    """The three models from event-log files (`features.offline.load_event_log` formats).

    Raises:
        EventLogError: a log line is not JSON or not a valid feature event.
        CalibrationError, ValueError: as `train_staged`.
    """
    logs = [
        replay_log(load_event_log(path))
        for path in tqdm(paths, desc="replay event logs", unit="log", disable=not progress)
    ]
    return train_staged(logs, calibration_days=calibration_days, progress=progress)
