"""Residual quantile models: served ETA = base ETA + learned residual (p50 and p90).

Two XGBoost boosters predict the p50 and p90 of the residual target; the p90 carries a
conformal margin fitted on a recent window of the training period (see `models.calibration`).
The residual is clamped to a configured range, so the worst case is a bounded correction of
the base, and a non-finite output is reported so the caller can fall back to the base ETA.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from tqdm import tqdm

from models.calibration import CalibrationError, conformal_margin

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MODEL_FORMAT_VERSION = 1
#: Batches up to this size are predicted by walking the trees in Python (no per-call
#: XGBoost overhead); larger ones go through XGBoost's predictor.
SMALL_BATCH_ROWS = 4


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
        p50_objective: `quantile` (pinball loss at `p50_alpha`) or `pseudohuber` (robust
            centre of the target, converges in fewer trees).
        p50_alpha: quantile of the point model; above 0.5 makes lateness cost more than
            earliness (asymmetric loss).
        huber_slope: transition point of the pseudo-Huber loss, in target units.
        p90_mode: `model` (a p90 quantile booster plus one conformal margin) or `binned`
            (p50 plus a conformal margin per bin of `p90_bin_feature`: Mondrian conformal,
            no second booster, so inference costs half).
        p90_bins: number of equal-count bins in `binned` mode.
        p90_bin_feature: feature whose value picks the bin.
        distill_rounds: when > 0 (and a synthesizer is given), the served p50 booster is a
            compact student of this many rounds fitted to the full model's predictions on the
            training rows plus `distill_samples` jittered copies: the full model's accuracy
            at a fraction of the inference cost.
        distill_depth: tree depth of the student.
        distill_learning_rate: shrinkage of the student.
        distill_samples: synthetic rows added for the student.
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
    p50_objective: str = "quantile"
    p50_alpha: float = 0.5
    huber_slope: float = 0.15
    p90_mode: str = "model"
    p90_bins: int = 8
    p90_bin_feature: str = "base_eta_s"
    distill_rounds: int = 0
    distill_depth: int = 8
    distill_learning_rate: float = 0.3
    distill_samples: int = 400_000
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
        booster_p90: XGBoost model of the (uncalibrated) p90 target, or None when the p90 is
            p50 plus a binned margin.
        p90_margin: conformal margin added to the p90 target (model mode).
        p90_bins: binned mode: (feature index, bin edges, margin per bin).
        clamp: allowed residual range.
        ratio_floor_s: base floor of the log-ratio target.
        metadata: free-form facts (training window, metrics, feature config) saved alongside.
    """

    kind: str
    feature_names: tuple[str, ...]
    target: Target
    booster_p50: xgb.Booster
    booster_p90: xgb.Booster | None
    p90_margin: float
    clamp: ClampConfig
    ratio_floor_s: float = 60.0
    metadata: dict[str, Any] = field(default_factory=dict)
    p90_bins: tuple[int, tuple[float, ...], tuple[float, ...]] | None = None

    def __post_init__(self) -> None:
        if (self.booster_p90 is None) == (self.p90_bins is None):
            raise ValueError("exactly one of booster_p90 and p90_bins must be given")

    def _walkers(self) -> tuple[Any, Any] | None:
        """Python tree walkers for tiny batches (built once; None if unsupported)."""
        cached = self.__dict__.get("_walker_cache", ...)
        if cached is not ...:
            return cached
        from models.treewalk import TreeWalker, TreeWalkError

        rng = np.random.default_rng(0)
        probe = rng.normal(0.0, 1.0, (64, len(self.feature_names))).astype(np.float32)
        probe *= np.float32(1000.0)
        probe[::7, 0] = np.nan
        walkers: tuple[Any, Any] | None
        try:
            w50 = TreeWalker.from_booster(self.booster_p50, probe)
            w90 = (
                TreeWalker.from_booster(self.booster_p90, probe)
                if self.booster_p90 is not None
                else None
            )
            walkers = (w50, w90)
        except (TreeWalkError, ValueError, KeyError):
            walkers = None
        self.__dict__["_walker_cache"] = walkers
        return walkers

    def set_threads(self, nthread: int) -> None:
        """Use `nthread` threads for prediction."""
        self.booster_p50.set_param({"nthread": nthread})
        if self.booster_p90 is not None:
            self.booster_p90.set_param({"nthread": nthread})

    def predict_target(
        self, features: npt.NDArray[np.float32], p90_offset: float = 0.0
    ) -> tuple[FloatArray, FloatArray]:
        """Raw p50 and calibrated p90 of the target for a feature matrix.

        `p90_offset` (target units) is added to the calibrated p90, e.g. by online
        recalibration (`models.online_calibration`).
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected a matrix with {len(self.feature_names)} columns, got shape {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        walkers = self._walkers() if x.shape[0] <= SMALL_BATCH_ROWS else None
        if walkers is not None:
            q50 = walkers[0].predict(x)
        else:
            q50 = np.asarray(self.booster_p50.inplace_predict(x), dtype=np.float64)
        if self.booster_p90 is not None:
            if walkers is not None:
                q90 = walkers[1].predict(x)
            else:
                q90 = np.asarray(self.booster_p90.inplace_predict(x), dtype=np.float64)
            return q50, q90 + (self.p90_margin + p90_offset)
        assert self.p90_bins is not None  # noqa: S101 - guaranteed by __post_init__
        col, edges, margins = self.p90_bins
        idx = np.searchsorted(np.asarray(edges, dtype=np.float32), x[:, col], side="right")
        return q50, q50 + (np.asarray(margins) + p90_offset)[idx]

    def residual_s(self, q: FloatArray, base_eta_s: FloatArray) -> FloatArray:
        """Residual in seconds for a target value."""
        if self.target is Target.ADDITIVE:
            return q
        b = np.maximum(base_eta_s, self.ratio_floor_s)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(b * np.exp(q) - base_eta_s)

    def predict(
        self,
        features: npt.NDArray[np.float32],
        base_eta_s: npt.ArrayLike,
        p90_offset: float = 0.0,
    ) -> ResidualPrediction:
        """Served p50/p90 ETAs in seconds for each row (see `ResidualPrediction`).

        `p90_offset` shifts the p90 target (see `predict_target`).
        """
        base = np.asarray(base_eta_s, dtype=np.float64)
        q50, q90 = self.predict_target(features, p90_offset)
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
            "p90_bins": None
            if self.p90_bins is None
            else {
                "feature": self.feature_names[self.p90_bins[0]],
                "edges": list(self.p90_bins[1]),
                "margins": list(self.p90_bins[2]),
            },
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
    def __init__(self, bar: tqdm) -> None:
        super().__init__()
        self._bar = bar

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self._bar.update(1)
        return False


def _fit_quantile(
    x: npt.NDArray[np.float32],
    z: FloatArray,
    alpha: float | None,
    rounds: int,
    config: TrainConfig,
    bar: tqdm | None,
) -> xgb.Booster:
    """Quantile booster at `alpha`, or the pseudo-Huber centre when `alpha` is None."""
    objective: dict[str, Any] = (
        {"objective": "reg:pseudohubererror", "huber_slope": config.huber_slope}
        if alpha is None
        else {"objective": "reg:quantileerror", "quantile_alpha": alpha}
    )
    params: dict[str, Any] = {
        **objective,
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


#: `synthesize(data, rows, n, rng)`: n feature rows jittered around `data.features[rows]`.
Synthesizer = Callable[["TrainingData", npt.NDArray[np.bool_], int, np.random.Generator], Any]


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


#: `TrainConfig` fields that only shape the p90 calibration (not what a booster learns), so
#: configurations differing in these alone can share fitted boosters.
CALIBRATION_FIELDS: tuple[str, ...] = ("calibration_days", "calibration_blocks", "p90_bins")


class ResidualTrainer:
    """Fits residual models on one set of rows, sharing boosters across calibration settings.

    The boosters of a configuration depend on its booster hyper-parameters and on its
    calibration window (`calibration_days`); the block count and bin count only change how the
    margin is computed from the window. `model(config)` therefore fits each booster at most
    once per window and reuses it for every configuration that differs only in
    `CALIBRATION_FIELDS`. Results do not depend on the order in which models are requested.

    Raises:
        CalibrationError: fewer than 50 rows.
        ValueError: unknown `p50_objective` or `p90_mode`.
    """

    def __init__(
        self,
        data: TrainingData,
        *,
        target: Target,
        config: TrainConfig,
        synthesize: Synthesizer | None = None,
    ) -> None:
        n = data.features.shape[0]
        if n < 50:
            raise CalibrationError(f"need at least 50 training rows, got {n}")
        if config.p50_objective not in ("quantile", "pseudohuber"):
            raise ValueError(f"unknown p50_objective {config.p50_objective!r}")
        if config.p90_mode not in ("model", "binned"):
            raise ValueError(f"unknown p90_mode {config.p90_mode!r}")
        self.data = data
        self.target = target
        self.config = config
        self._synthesize = synthesize
        self._z = residual_target(data.actual_s, data.base_eta_s, target, config.ratio_floor_s)
        self._keep: BoolArray = np.isfinite(self._z) & np.isfinite(data.base_eta_s)
        if not self._keep.any():
            raise CalibrationError("no training row has a finite target and base")
        self._t_end = int(data.ts_ms[self._keep].max())
        self._full: xgb.Booster | None = None
        self._proper: dict[float, tuple[xgb.Booster, FloatArray]] = {}

    @property
    def distilled(self) -> bool:
        """Whether the served p50 booster is a distilled student."""
        return self.config.distill_rounds > 0 and self._synthesize is not None

    @property
    def p50_rounds(self) -> int:
        """Boosting rounds of one p50 fit (student rounds included)."""
        return self.config.rounds_p50 + (self.config.distill_rounds if self.distilled else 0)

    @property
    def window_rounds(self) -> int:
        """Boosting rounds of the booster fitted before one calibration window."""
        return self.p50_rounds if self.config.p90_mode == "binned" else self.config.rounds_p90

    def rounds_for(self, calibration_days: Sequence[float]) -> int:
        """Rounds still to fit for models over these windows (for a progress bar's total)."""
        todo = {float(d) for d in calibration_days} - set(self._proper)
        return (self.p50_rounds if self._full is None else 0) + len(todo) * self.window_rounds

    def calibration_masks(self, calibration_days: float) -> tuple[BoolArray, BoolArray]:
        """(calibration rows, rows before them): the window is the last `calibration_days`.

        Raises:
            CalibrationError: fewer than 20 usable rows precede the window.
        """
        cal_start = self._t_end - int(calibration_days * 86_400_000)
        cal = self._keep & (self.data.ts_ms > cal_start)
        proper = self._keep & ~cal
        if proper.sum() < 20:
            raise CalibrationError(
                f"no training rows precede the {calibration_days:g}-day calibration window"
            )
        return cal, proper

    def _check(self, config: TrainConfig) -> None:
        neutral = {f: getattr(self.config, f) for f in CALIBRATION_FIELDS}
        if replace(config, **neutral) != self.config:
            raise ValueError(
                "config may differ from the trainer's only in " + ", ".join(CALIBRATION_FIELDS)
            )

    def _fit_p50(self, rows: BoolArray, seed_tag: int, bar: tqdm | None) -> xgb.Booster:
        config = self.config
        x_rows, z_rows = self.data.features[rows], self._z[rows]
        alpha = config.p50_alpha if config.p50_objective == "quantile" else None
        full = _fit_quantile(x_rows, z_rows, alpha, config.rounds_p50, config, bar)
        if not self.distilled:
            return full
        assert self._synthesize is not None  # noqa: S101 - narrowing only
        rng = np.random.default_rng([config.seed, seed_tag])
        synthetic = self._synthesize(self.data, rows, config.distill_samples, rng)
        x = np.ascontiguousarray(np.vstack([x_rows, synthetic]), dtype=np.float32)
        return _fit_student(full, x, config, bar)

    def _full_p50(self, bar: tqdm | None) -> xgb.Booster:
        if self._full is None:
            self._full = self._fit_p50(self._keep, 0, bar)
        return self._full

    def _window_booster(
        self, calibration_days: float, bar: tqdm | None
    ) -> tuple[xgb.Booster, FloatArray]:
        """The booster fitted before the window and its scores on the window's rows."""
        key = float(calibration_days)
        if key not in self._proper:
            cal, proper = self.calibration_masks(key)
            config = self.config
            if config.p90_mode == "binned":
                # Mondrian conformal: scores of a p50 model that never saw the window.
                booster = self._fit_p50(proper, 1, bar)
            else:
                booster = _fit_quantile(
                    self.data.features[proper],
                    self._z[proper],
                    config.coverage,
                    config.rounds_p90,
                    config,
                    bar,
                )
            pred = np.asarray(booster.inplace_predict(self.data.features[cal]), dtype=np.float64)
            self._proper[key] = (booster, self._z[cal] - pred)
        return self._proper[key]

    def model(
        self,
        config: TrainConfig,
        *,
        kind: str,
        clamp: ClampConfig,
        metadata: Mapping[str, Any] | None = None,
        bar: tqdm | None = None,
    ) -> ResidualQuantileModel:
        """The model of `config` (p50 on all rows, p90 calibrated on its window).

        `config` may differ from the trainer's only in `CALIBRATION_FIELDS`. `bar` advances by
        one per boosting round actually fitted.

        Raises:
            CalibrationError: the window holds too few rows, or no rows precede it.
            ValueError: `config` changes a booster hyper-parameter.
        """
        self._check(config)
        data = self.data
        cal, _ = self.calibration_masks(config.calibration_days)
        booster, scores = self._window_booster(config.calibration_days, bar)
        b90: xgb.Booster | None = None
        bins: tuple[int, tuple[float, ...], tuple[float, ...]] | None = None
        margin = 0.0
        if config.p90_mode == "binned":
            col = feature_index(data.feature_names, [config.p90_bin_feature])[0]
            edges, margins = _binned_margins(
                data.features[cal][:, col], scores, config.p90_bins, config.coverage
            )
            bins = (col, edges, margins)
        else:
            b90 = booster
            margin = conformal_margin(
                scores, config.coverage, blocks=config.calibration_blocks, ts_ms=data.ts_ms[cal]
            )
        b50 = self._full_p50(bar)
        keep = self._keep
        meta: dict[str, Any] = {
            "training_window_ms": [int(data.ts_ms[keep].min()), self._t_end],
            "calibration_window_ms": [
                self._t_end - int(config.calibration_days * 86_400_000),
                self._t_end,
            ],
            "n_train": int(keep.sum()),
            "n_calibration": int(cal.sum()),
            "p90_score_scale": _score_scale(scores),
            "train_config": asdict(config),
            "distilled": self.distilled,
        }
        meta.update(metadata or {})
        return ResidualQuantileModel(
            kind=kind,
            feature_names=data.feature_names,
            target=self.target,
            booster_p50=b50,
            booster_p90=b90,
            p90_margin=margin,
            clamp=clamp,
            ratio_floor_s=config.ratio_floor_s,
            metadata=meta,
            p90_bins=bins,
        )


def train_residual_model(
    data: TrainingData,
    *,
    kind: str,
    target: Target,
    config: TrainConfig,
    clamp: ClampConfig,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    synthesize: Synthesizer | None = None,
) -> ResidualQuantileModel:
    """Fit p50 on all rows, p90 on rows before the calibration window, and calibrate p90.

    The calibration window is the last `config.calibration_days` of `data.ts_ms`; no row of it
    trains the p90 model. Shows a progress bar over boosting rounds when `progress` is set.
    (`models.selection.train_with_selection` chooses the calibration settings first.)

    Raises:
        CalibrationError: the window holds too few rows, or no rows precede it.
    """
    trainer = ResidualTrainer(data, target=target, config=config, synthesize=synthesize)
    trainer.calibration_masks(config.calibration_days)
    total = trainer.rounds_for([config.calibration_days])
    with tqdm(total=total, desc=f"train {kind}", unit="round", disable=not progress) as bar:
        return trainer.model(config, kind=kind, clamp=clamp, metadata=metadata, bar=bar)


def _fit_student(
    teacher: xgb.Booster,
    x: npt.NDArray[np.float32],
    config: TrainConfig,
    bar: tqdm | None,
) -> xgb.Booster:
    """A compact booster fitted (squared error) to `teacher`'s predictions on `x`."""
    y = np.asarray(teacher.inplace_predict(x), dtype=np.float64)
    params: dict[str, Any] = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": config.distill_depth,
        "learning_rate": config.distill_learning_rate,
        "min_child_weight": 2.0,
        "seed": config.seed,
        "nthread": config.nthread,
    }
    callbacks = [_TqdmCallback(bar)] if bar is not None else []
    dtrain = xgb.DMatrix(x, label=y, nthread=config.nthread)
    return xgb.train(params, dtrain, num_boost_round=config.distill_rounds, callbacks=callbacks)


def _binned_margins(
    values: npt.NDArray[np.float32], scores: FloatArray, n_bins: int, coverage: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Equal-count bin edges of `values` and the split-conformal margin of each bin."""
    n_bins = max(1, min(n_bins, scores.size // 30))
    qs = np.quantile(values.astype(np.float64), np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.unique(qs.astype(np.float32))
    idx = np.searchsorted(edges, values, side="right")
    margins = [conformal_margin(scores[idx == b], coverage) for b in range(len(edges) + 1)]
    return tuple(float(e) for e in edges), tuple(margins)


def _score_scale(scores: FloatArray) -> float | None:
    """Spread between the 90th and 50th percentile of finite calibration scores (or None)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return None
    q50, q90 = np.quantile(s, [0.5, 0.9])
    spread = float(q90 - q50)
    return spread if spread > 0.0 else None


def feature_index(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Column positions of `wanted` within `names`; `KeyError` names the first unknown one."""
    pos = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise KeyError(f"unknown features: {missing}")
    return [pos[w] for w in wanted]
