"""Small real models trained on synthetic travel legs (seconds), shared by the model tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contracts.geo import haversine_m as haversine_m_np
from features.offline import write_event_log
from features.synthetic import generate_event_log
from models.base_eta import StraightLineProvider
from models.legs import Leg, TravelFeatureConfig, jittered_travel_rows, travel_features
from models.residual import (
    ClampConfig,
    ResidualQuantileModel,
    Synthesizer,
    Target,
    TrainConfig,
    TrainingData,
    train_residual_model,
)
from models.selection import (
    CalibrationCandidate,
    CalibrationChoice,
    ValidationDesign,
    train_with_selection,
)
from models.service import LegBatch

CITY = TravelFeatureConfig(timezone="America/New_York", grid_rotation_deg=29.0)
START_MS = 1_700_000_000_000
CONTEXT = "zone_speed_mps"


def synthetic_legs(
    rng: np.random.Generator, n: int, days: float = 40.0, with_context: bool = False
) -> TrainingData:
    """Legs whose true duration is the straight-line base scaled by an hour-dependent factor."""
    olat = 40.75 + rng.normal(0, 0.03, n)
    olon = -73.98 + rng.normal(0, 0.03, n)
    dlat = olat + rng.normal(0, 0.02, n)
    dlon = olon + rng.normal(0, 0.02, n)
    ts = np.sort(START_MS + rng.integers(0, int(days * 86_400_000), n)).astype(np.int64)
    leg = rng.integers(0, 3, n).astype(np.int64)
    dist = haversine_m_np(olat, olon, dlat, dlon)
    base = StraightLineProvider().eta_s_batch(olat, olon, dist)
    x = travel_features(olat, olon, dlat, dlon, ts, leg, base, CITY, dist_m=dist)
    hour = x[:, 10].astype(np.float64)
    factor = 1.5 + 0.5 * np.sin(hour / 24 * 2 * np.pi)
    actual = np.maximum(base, 60.0) * factor * np.exp(rng.normal(0, 0.25, n))
    names = CITY.feature_names()
    if with_context:
        speed = 5.0 + rng.normal(0, 1.0, n)
        x = np.hstack([x, speed.astype(np.float32)[:, None]])
        names = (*names, CONTEXT)
    return TrainingData(np.ascontiguousarray(x), base, actual, ts, names)


SMALL = TrainConfig(
    rounds_p50=25,
    rounds_p90=25,
    max_depth=4,
    learning_rate=0.2,
    min_child_weight=5.0,
    calibration_days=10.0,
    calibration_blocks=1,
    nthread=1,
)

#: What every test travel model is: a log-ratio travel model, unclamped, trained silently.
TRAVEL_TRAINING: dict[str, Any] = {
    "kind": "travel",
    "target": Target.LOG_RATIO,
    "clamp": ClampConfig(),
    "progress": False,
}


def fit_travel(
    data: TrainingData,
    config: TrainConfig = SMALL,
    metadata: dict[str, Any] | None = None,
    synthesize: Synthesizer | None = None,
) -> ResidualQuantileModel:
    """A log-ratio travel model of `data` with fixed settings, unclamped and silent."""
    return train_residual_model(
        data, config=config, metadata=metadata, synthesize=synthesize, **TRAVEL_TRAINING
    )


def select_travel(
    data: TrainingData,
    candidates: Sequence[CalibrationCandidate],
    design: ValidationDesign | None = None,
) -> tuple[ResidualQuantileModel, CalibrationChoice]:
    """A log-ratio travel model of `data` whose calibration is chosen among `candidates`."""
    return train_with_selection(
        data, config=SMALL, candidates=candidates, design=design, **TRAVEL_TRAINING
    )


def _provider_eta(lat: np.ndarray, lon: np.ndarray, dist: np.ndarray) -> np.ndarray:
    return StraightLineProvider().eta_s_batch(lat, lon, dist)


@pytest.fixture(scope="session")
def travel_data() -> TrainingData:
    """1500 synthetic legs over 40 days."""
    return synthetic_legs(np.random.default_rng(0), 1500)


@pytest.fixture(scope="session")
def travel_model(travel_data: TrainingData) -> ResidualQuantileModel:
    """A p50 + binned-p90 travel model with a distilled student."""
    config = replace(
        SMALL,
        p50_objective="pseudohuber",
        p90_mode="binned",
        p90_bins=3,
        distill_rounds=8,
        distill_depth=5,
        distill_samples=3000,
    )

    def synth(data: TrainingData, rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return jittered_travel_rows(
            data.features[rows], data.ts_ms[rows], data.feature_names, CITY, _provider_eta, n, rng
        )

    return fit_travel(
        travel_data, config, metadata={"feature_config": CITY.to_dict()}, synthesize=synth
    )


@pytest.fixture(scope="session")
def context_model() -> ResidualQuantileModel:
    """A p50 + p90-booster travel model that requires a fresh `zone_speed_mps` context value."""
    data = synthetic_legs(np.random.default_rng(1), 1200, with_context=True)
    return fit_travel(
        data,
        metadata={
            "feature_config": CITY.to_dict(),
            "context_features": [{"name": CONTEXT, "sla_ms": 600_000, "required": True}],
        },
    )


def legs(
    n: int = 1,
    ts_ms: int = START_MS + 50 * 86_400_000,
    context: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> LegBatch:
    """`n` pickup legs at one request time after the training window."""
    rng = np.random.default_rng(5)
    olat = 40.75 + rng.normal(0, 0.02, n)
    olon = -73.98 + rng.normal(0, 0.02, n)
    return LegBatch(
        origin_lat=olat,
        origin_lon=olon,
        dest_lat=olat + rng.normal(0, 0.01, n),
        dest_lon=olon + rng.normal(0, 0.01, n),
        request_ts_ms=np.full(n, ts_ms, dtype=np.int64),
        leg=np.full(n, int(Leg.PICKUP), dtype=np.int64),
        context=context or {},
    )


def row_of(batch: LegBatch, i: int) -> LegBatch:
    """The one-leg batch holding leg `i` of `batch`."""
    return LegBatch(
        origin_lat=batch.origin_lat[i : i + 1],
        origin_lon=batch.origin_lon[i : i + 1],
        dest_lat=batch.dest_lat[i : i + 1],
        dest_lon=batch.dest_lon[i : i + 1],
        request_ts_ms=batch.request_ts_ms[i : i + 1],
        leg=batch.leg[i : i + 1],
    )


@pytest.fixture(scope="session")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A four-day synthetic event log (JSON Lines), the staged models' training input."""
    events = generate_event_log(
        np.random.default_rng(3), n_orders=300, duration_ms=4 * 86_400_000, n_couriers=8
    )
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    write_event_log(path, events)
    return path
