"""Small real model sets (prep P1 and placement ETA) for tests of serving, shadow and promotion.

Each model is a real XGBoost residual model trained in a fraction of a second on rows drawn
around a fixed factor of the base: a prep model whose p50 is about `prep_factor` times the
order's prep estimate, and a placement-ETA model adding about `total_shift_s` to its base.
Two sets with different factors predict differently, so their shadow errors differ.
"""

from __future__ import annotations

import numpy as np

from models.registry import ModelSet
from models.residual import (
    ClampConfig,
    ResidualQuantileModel,
    Target,
    TrainConfig,
    TrainingData,
    train_residual_model,
)
from models.staged import PREP_COLUMNS, TOTAL_COLUMNS

START_MS = 1_700_000_000_000
DAY_MS = 86_400_000
TINY = TrainConfig(
    rounds_p50=10,
    rounds_p90=10,
    max_depth=2,
    learning_rate=0.5,
    min_child_weight=1.0,
    calibration_days=1.0,
    nthread=1,
)


def _model(
    kind: str, columns: tuple[str, ...], target: Target, actual_of_base: float, seed: int
) -> ResidualQuantileModel:
    rng = np.random.default_rng(seed)
    n = 400
    base = rng.uniform(300.0, 1_500.0, n)
    x = np.full((n, len(columns)), np.nan, dtype=np.float32)
    x[:, 0] = base
    noise = rng.normal(0.0, 0.1, n)
    if target is Target.LOG_RATIO:
        actual = base * actual_of_base * np.exp(noise)
    else:
        actual = base + actual_of_base + 60.0 * noise
    ts = START_MS + np.sort(rng.integers(0, 3 * DAY_MS, n)).astype(np.int64)
    return train_residual_model(
        TrainingData(x, base, actual, ts, columns),
        kind=kind,
        target=target,
        config=TINY,
        clamp=ClampConfig(residual_min_s=-1_800.0, residual_max_s=3_600.0),
        progress=False,
    )


def tiny_models(
    prep_factor: float = 1.2, total_shift_s: float = 300.0, seed: int = 0
) -> dict[str, ResidualQuantileModel]:
    """A prep and a placement-ETA model (by kind), as `ModelRegistry.publish_set` takes them."""
    return {
        "prep": _model("prep", PREP_COLUMNS, Target.LOG_RATIO, prep_factor, seed),
        "total": _model("total", TOTAL_COLUMNS, Target.ADDITIVE, total_shift_s, seed + 1),
    }


def tiny_set(version: str, prep_factor: float = 1.2, total_shift_s: float = 300.0) -> ModelSet:
    """`tiny_models` as a loaded set of `version`."""
    return ModelSet(version, tiny_models(prep_factor, total_shift_s))
