"""Residual quantile models: served ETA = base ETA + learned residual (p50 and p90).

Two XGBoost boosters predict the p50 and p90 of the residual target; the p90 carries a
conformal margin fitted on a recent window of the training period (see `models.calibration`).
The residual is clamped to a configured range, so the worst case is a bounded correction of
the base, and a non-finite output is reported so the caller can fall back to the base ETA.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from tqdm import tqdm

from models.calibration import CalibrationError, conformal_margin

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MODEL_FORMAT_VERSION = 1
_P50_FILE = "p50.ubj"
_P90_FILE = "p90.ubj"
METADATA_FILE = "metadata.json"


class ModelLoadError(RuntimeError):
    """A model directory is unreadable, corrupt or inconsistent with its metadata."""


class ModelMissingError(ModelLoadError):
    """No model exists where one was expected."""


class Target(enum.StrEnum):
    """How the residual target is expressed.

    `additive`: target = actual − base (seconds); suits totals dominated by what the base omits.
    `log_ratio`: target = ln(actual / max(base, floor)); suits travel legs whose error scales
    with the base. Quantiles carry over unchanged through this monotone transform.
    """

    ADDITIVE = "additive"
    LOG_RATIO = "log_ratio"


@dataclass(frozen=True)
class ClampConfig:
    """Allowed range of the residual added to the base.

    Attributes:
        residual_min_s: most negative residual (seconds).
        residual_max_s: largest residual (seconds).
        max_reduction_frac: the residual never removes more than this share of the base.
    """

    residual_min_s: float = -1800.0
    residual_max_s: float = 3600.0
    max_reduction_frac: float = 0.6

    def __post_init__(self) -> None:
        if not self.residual_min_s <= 0.0 <= self.residual_max_s:
            raise ValueError("clamp range must contain 0")
        if not 0.0 <= self.max_reduction_frac <= 1.0:
            raise ValueError("max_reduction_frac must be in [0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one residual model.

    Attributes:
        rounds_p50: boosting rounds of the p50 model.
        rounds_p90: boosting rounds of the p90 model.
        max_depth: tree depth.
        learning_rate: shrinkage.
        min_child_weight: minimum hessian per leaf.
        subsample: row subsampling per tree.
        colsample_bytree: column subsampling per tree.
        p50_alpha: quantile of the point model; above 0.5 makes lateness cost more than
            earliness (asymmetric loss).
        coverage: target coverage of the upper quantile.
        calibration_days: length of the recent calibration window carved out of training.
        calibration_blocks: time blocks of the calibration window (see `conformal_margin`).
        ratio_floor_s: base floor of the log-ratio target.
        seed: XGBoost seed.
        nthread: training threads.
    """

    rounds_p50: int = 400
    rounds_p90: int = 400
    max_depth: int = 5
    learning_rate: float = 0.03
    min_child_weight: float = 20.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    p50_alpha: float = 0.5
    coverage: float = 0.9
    calibration_days: float = 7.0
    calibration_blocks: int = 7
    ratio_floor_s: float = 60.0
    seed: int = 0
    nthread: int = 2


@dataclass
class ResidualPrediction:
    """Per-row output of `ResidualQuantileModel.predict`.

    Attributes:
        p50_s: served p50 ETA (base + clamped residual), seconds.
        p90_s: served p90 ETA, seconds, ≥ p50_s.
        finite: False where the model produced NaN/inf (p50_s = p90_s = base there).
        clamped: True where a residual hit the clamp.
    """

    p50_s: FloatArray
    p90_s: FloatArray
    finite: BoolArray
    clamped: BoolArray


@dataclass
class ResidualQuantileModel:
    """p50/p90 residual model over a fixed feature list.

    Attributes:
        kind: what the model predicts (`travel`, `total`, `prep`).
        feature_names: column order of the feature matrix.
        target: residual target form.
        booster_p50: XGBoost model of the p50 target.
        booster_p90: XGBoost model of the (uncalibrated) p90 target.
        p90_margin: conformal margin added to the p90 target.
        clamp: allowed residual range.
        ratio_floor_s: base floor of the log-ratio target.
        metadata: free-form facts (training window, metrics, feature config) saved alongside.
    """

    kind: str
    feature_names: tuple[str, ...]
    target: Target
    booster_p50: xgb.Booster
    booster_p90: xgb.Booster
    p90_margin: float
    clamp: ClampConfig
    ratio_floor_s: float = 60.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def set_threads(self, nthread: int) -> None:
        """Use `nthread` threads for prediction."""
        self.booster_p50.set_param({"nthread": nthread})
        self.booster_p90.set_param({"nthread": nthread})

    def predict_target(self, features: npt.NDArray[np.float32]) -> tuple[FloatArray, FloatArray]:
        """Raw p50 and calibrated p90 of the target for a feature matrix."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected a matrix with {len(self.feature_names)} columns, got shape {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        q50 = np.asarray(self.booster_p50.inplace_predict(x), dtype=np.float64)
        q90 = np.asarray(self.booster_p90.inplace_predict(x), dtype=np.float64) + self.p90_margin
        return q50, q90

    def residual_s(self, q: FloatArray, base_eta_s: FloatArray) -> FloatArray:
        """Residual in seconds for a target value."""
        if self.target is Target.ADDITIVE:
            return q
        b = np.maximum(base_eta_s, self.ratio_floor_s)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(b * np.exp(q) - base_eta_s)

    def predict(
        self, features: npt.NDArray[np.float32], base_eta_s: npt.ArrayLike
    ) -> ResidualPrediction:
        """Served p50/p90 ETAs in seconds for each row (see `ResidualPrediction`)."""
        base = np.asarray(base_eta_s, dtype=np.float64)
        q50, q90 = self.predict_target(features)
        return self.apply_residuals(q50, q90, base)

    def apply_residuals(
        self, q50: FloatArray, q90: FloatArray, base: FloatArray
    ) -> ResidualPrediction:
        """Turn target predictions into clamped ETAs around `base`."""
        r50 = self.residual_s(q50, base)
        r90 = self.residual_s(q90, base)
        finite = np.isfinite(r50) & np.isfinite(r90) & np.isfinite(base)
        lo = np.maximum(self.clamp.residual_min_s, -self.clamp.max_reduction_frac * base)
        hi = self.clamp.residual_max_s
        c50 = np.clip(np.where(finite, r50, 0.0), lo, hi)
        c90 = np.clip(np.where(finite, r90, 0.0), lo, hi)
        clamped = finite & ((c50 != r50) | (c90 != r90))
        p50 = base + c50
        p90 = np.maximum(base + c90, p50)
        return ResidualPrediction(p50_s=p50, p90_s=p90, finite=finite, clamped=clamped)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (everything but the boosters)."""
        return {
            "format_version": MODEL_FORMAT_VERSION,
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "target": self.target.value,
            "p90_margin": self.p90_margin,
            "clamp": asdict(self.clamp),
            "ratio_floor_s": self.ratio_floor_s,
            **self.metadata,
        }


def residual_target(
    actual_s: FloatArray, base_eta_s: FloatArray, target: Target, ratio_floor_s: float
) -> FloatArray:
    """The training target for realized durations `actual_s` against `base_eta_s`."""
    if target is Target.ADDITIVE:
        return np.asarray(actual_s - base_eta_s, dtype=np.float64)
    floor = np.maximum(base_eta_s, ratio_floor_s)
    return np.asarray(np.log(np.maximum(actual_s, 1.0) / floor), dtype=np.float64)


class _TqdmCallback(xgb.callback.TrainingCallback):
    def __init__(self, bar: tqdm) -> None:  # type: ignore[type-arg]
        super().__init__()
        self._bar = bar

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self._bar.update(1)
        return False


def _fit_quantile(
    x: npt.NDArray[np.float32],
    z: FloatArray,
    alpha: float,
    rounds: int,
    config: TrainConfig,
    bar: tqdm | None,  # type: ignore[type-arg]
) -> xgb.Booster:
    params: dict[str, Any] = {
        "objective": "reg:quantileerror",
        "quantile_alpha": alpha,
        "tree_method": "hist",
        "max_depth": config.max_depth,
        "learning_rate": config.learning_rate,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "seed": config.seed,
        "nthread": config.nthread,
    }
    callbacks = [_TqdmCallback(bar)] if bar is not None else []
    dtrain = xgb.DMatrix(x, label=z, nthread=config.nthread)
    return xgb.train(params, dtrain, num_boost_round=rounds, callbacks=callbacks)


@dataclass(frozen=True)
class TrainingData:
    """Rows for training one residual model.

    Attributes:
        features: n × k float32 feature matrix.
        base_eta_s: base ETA of each row, seconds.
        actual_s: realized duration of each row, seconds.
        ts_ms: request time of each row (epoch ms), used for the calibration window.
        feature_names: the k column names.
    """

    features: npt.NDArray[np.float32]
    base_eta_s: FloatArray
    actual_s: FloatArray
    ts_ms: npt.NDArray[np.int64]
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise ValueError("feature matrix does not match feature_names")
        if not (len(self.base_eta_s) == len(self.actual_s) == len(self.ts_ms) == n):
            raise ValueError("all columns of the training data must have the same length")


def train_residual_model(
    data: TrainingData,
    *,
    kind: str,
    target: Target,
    config: TrainConfig,
    clamp: ClampConfig,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ResidualQuantileModel:
    """Fit p50 on all rows, p90 on rows before the calibration window, and calibrate p90.

    The calibration window is the last `config.calibration_days` of `data.ts_ms`; no row of it
    trains the p90 model. Shows a progress bar over boosting rounds when `progress` is set.

    Raises:
        CalibrationError: the window holds too few rows, or no rows precede it.
    """
    n = data.features.shape[0]
    if n < 50:
        raise CalibrationError(f"need at least 50 training rows, got {n}")
    z = residual_target(data.actual_s, data.base_eta_s, target, config.ratio_floor_s)
    keep = np.isfinite(z) & np.isfinite(data.base_eta_s)
    t_end = int(data.ts_ms[keep].max())
    cal_start = t_end - int(config.calibration_days * 86_400_000)
    cal = keep & (data.ts_ms > cal_start)
    proper = keep & ~cal
    if proper.sum() < 20:
        raise CalibrationError("no training rows precede the calibration window")
    total = config.rounds_p50 + config.rounds_p90
    with tqdm(total=total, desc=f"train {kind}", unit="round", disable=not progress) as bar:
        b90 = _fit_quantile(
            data.features[proper], z[proper], config.coverage, config.rounds_p90, config, bar
        )
        q90_cal = np.asarray(b90.inplace_predict(data.features[cal]), dtype=np.float64)
        margin = conformal_margin(
            z[cal] - q90_cal,
            config.coverage,
            blocks=config.calibration_blocks,
            ts_ms=data.ts_ms[cal],
        )
        b50 = _fit_quantile(
            data.features[keep], z[keep], config.p50_alpha, config.rounds_p50, config, bar
        )
    meta: dict[str, Any] = {
        "training_window_ms": [int(data.ts_ms[keep].min()), t_end],
        "calibration_window_ms": [cal_start, t_end],
        "n_train": int(keep.sum()),
        "n_calibration": int(cal.sum()),
        "train_config": asdict(config),
    }
    meta.update(metadata or {})
    return ResidualQuantileModel(
        kind=kind,
        feature_names=data.feature_names,
        target=target,
        booster_p50=b50,
        booster_p90=b90,
        p90_margin=margin,
        clamp=clamp,
        ratio_floor_s=config.ratio_floor_s,
        metadata=meta,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: ResidualQuantileModel, directory: Path) -> None:
    """Write the boosters and `metadata.json` (with file checksums) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    model.booster_p50.save_model(str(directory / _P50_FILE))
    model.booster_p90.save_model(str(directory / _P90_FILE))
    meta = model.describe()
    meta["files"] = {
        _P50_FILE: _sha256(directory / _P50_FILE),
        _P90_FILE: _sha256(directory / _P90_FILE),
    }
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def load_model(directory: Path) -> ResidualQuantileModel:
    """Load a model written by `save_model`.

    Raises:
        ModelMissingError: the directory or one of its files does not exist.
        ModelLoadError: a file is corrupt (checksum or parse failure) or the metadata is invalid.
    """
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelMissingError(f"no model metadata at {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
        files: Mapping[str, str] = meta["files"]
        for name in (_P50_FILE, _P90_FILE):
            path = directory / name
            if not path.is_file():
                raise ModelMissingError(f"model file missing: {path}")
            if _sha256(path) != files[name]:
                raise ModelLoadError(f"checksum mismatch for {path}: file is corrupt")
        boosters = []
        for name in (_P50_FILE, _P90_FILE):
            b = xgb.Booster()
            b.load_model(str(directory / name))
            boosters.append(b)
        if int(meta["format_version"]) != MODEL_FORMAT_VERSION:
            raise ModelLoadError(f"unsupported model format {meta['format_version']}")
        known = {
            "format_version",
            "kind",
            "feature_names",
            "target",
            "p90_margin",
            "clamp",
            "ratio_floor_s",
            "files",
        }
        model = ResidualQuantileModel(
            kind=str(meta["kind"]),
            feature_names=tuple(meta["feature_names"]),
            target=Target(meta["target"]),
            booster_p50=boosters[0],
            booster_p90=boosters[1],
            p90_margin=float(meta["p90_margin"]),
            clamp=ClampConfig(**meta["clamp"]),
            ratio_floor_s=float(meta["ratio_floor_s"]),
            metadata={k: v for k, v in meta.items() if k not in known},
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, xgb.core.XGBoostError) as exc:
        raise ModelLoadError(f"cannot load model from {directory}: {exc}") from exc
    for b in boosters:
        if b.num_features() != len(model.feature_names):
            raise ModelLoadError("booster feature count does not match metadata feature_names")
    return model


def feature_index(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Column positions of `wanted` within `names`; `KeyError` names the first unknown one."""
    pos = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise KeyError(f"unknown features: {missing}")
    return [pos[w] for w in wanted]
