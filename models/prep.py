"""Prep-time rows (order created → merchant ready) from the offline feature builder.

The base of the prep model is the merchant's own 30-day median prep time as served by the
feature store (degraded to the city or global prior when stale), or `DEFAULT_PREP_S` when no
prior exists; the residual model learns what the recent window, queue and time of week add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.residual import TrainingData

#: Base prep time when no merchant, city or global history exists yet.
DEFAULT_PREP_S = 600.0

#: Columns of the prep model; names match `FeatureEngine.order_features` keys.
PREP_FEATURES: tuple[str, ...] = (
    "base_eta_s",
    "merchant_prep_30d.prep_mean_s",
    "merchant_prep_30d.prep_p90_s",
    "merchant_prep_30d.prep_count",
    "merchant_prep_2h.prep_mean_s",
    "merchant_prep_2h.prep_p50_s",
    "merchant_prep_2h.prep_p90_s",
    "merchant_prep_2h.prep_count",
    "merchant_orders_waiting.orders_waiting",
    "zone_demand_1h.demand_orders",
    "zone_supply.supply_couriers",
    "supply_demand_ratio",
    "hour_of_week",
)


def prep_base_s(row: Mapping[str, Any]) -> float:
    """The base prep time of a feature row (merchant 30-day p50, else the default)."""
    v = row.get("merchant_prep_30d.prep_p50_s")
    return float(v) if v is not None else DEFAULT_PREP_S


def prep_features(rows: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
    """Feature matrix (float32, NaN for unknown values) of feature rows."""
    x = np.full((len(rows), len(PREP_FEATURES)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        x[i, 0] = prep_base_s(row)
        for j, name in enumerate(PREP_FEATURES[1:], start=1):
            v = row.get(name)
            if v is not None:
                x[i, j] = float(v)
    return x


def prep_training_data(rows: Sequence[Mapping[str, Any]]) -> TrainingData:
    """Training data from `features.offline.build_training_rows` output (rows with a prep label)."""
    labelled = [r for r in rows if r.get("prep_s") is not None]
    return TrainingData(
        features=prep_features(labelled),
        base_eta_s=np.array([prep_base_s(r) for r in labelled], dtype=np.float64),
        actual_s=np.array([float(r["prep_s"]) for r in labelled], dtype=np.float64),
        ts_ms=np.array([int(r["created_ts_ms"]) for r in labelled], dtype=np.int64),
        feature_names=PREP_FEATURES,
    )
