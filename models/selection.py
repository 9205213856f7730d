"""Choice of the p90 calibration settings by time-based validation inside the training rows.

How the p90 is calibrated (plain or block-median split conformal, how many Mondrian bins,
how long a calibration window) is chosen from a small declared grid of candidates by a
procedure that sees the training rows only (rolling-origin validation):

1. The latest `ValidationDesign.folds × validation_frac` of the training rows (by request
   time) is cut into `folds` consecutive validation slices of `validation_frac` each.
2. For each slice, each candidate is trained on all training rows before the slice exactly as
   it would be trained for serving, its calibration window carved from the end of those rows.
3. Each candidate's served p50/p90 are scored on the slices, pooled over them: p90 coverage,
   mean p90 − p50 width and p50 MAE. Several slices keep one exceptional period (a holiday,
   a sports final) from deciding alone.
4. `pick` keeps the candidate whose pooled coverage is closest to the nominal level; equal
   distances (in validation rows) go to the narrower p90, then to the earlier candidate.
5. The chosen candidate is refitted on all training rows (window at the end of all rows).

A test period that follows the training rows plays no part. Slices whose earlier rows cannot
fit every candidate are left out; when no slice remains, the grid's first candidate is used
and the choice says it was not validated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from models.calibration import CalibrationError
from models.online_calibration import OnlineCalibratedModel
from models.residual import (
    ClampConfig,
    ResidualQuantileModel,
    ResidualTrainer,
    Synthesizer,
    Target,
    TrainConfig,
    TrainingData,
)

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CalibrationCandidate:
    """One way to calibrate the p90, applied on top of a `TrainConfig`.

    Attributes:
        name: short label used in reports and JSON.
        calibration_days: length of the calibration window at the end of the training rows.
        calibration_blocks: 1 = plain split conformal; k > 1 = median of the split-conformal
            margins of k consecutive time blocks of the window (p90 booster mode).
        p90_bins: bins of the Mondrian conformal margin (binned p90 mode); None keeps the
            configuration's value.
    """

    name: str
    calibration_days: float
    calibration_blocks: int = 1
    p90_bins: int | None = None

    def apply(self, config: TrainConfig) -> TrainConfig:
        """`config` with this candidate's calibration settings."""
        return replace(
            config,
            calibration_days=self.calibration_days,
            calibration_blocks=self.calibration_blocks,
            p90_bins=config.p90_bins if self.p90_bins is None else self.p90_bins,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class ValidationDesign:
    """How the validation slices are carved from the training rows.

    Attributes:
        validation_frac: share of the training rows (by time) in each validation slice.
        folds: number of consecutive slices at the end of the training rows.
        min_validation_rows: fewer pooled validation rows than this and no candidate is
            validated.
    """

    validation_frac: float = 0.1
    folds: int = 3
    min_validation_rows: int = 100

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError(f"folds must be ≥ 1, got {self.folds}")
        if not 0.0 < self.validation_frac * self.folds < 1.0:
            raise ValueError(
                "validation_frac × folds must be in (0, 1), got "
                f"{self.validation_frac} × {self.folds}"
            )


@dataclass(frozen=True)
class CandidateScore:
    """A candidate's figures on the validation slice (all None when it could not be fitted).

    Attributes:
        name: candidate name.
        p90_coverage: share of validation outcomes at or below the served p90 (pooled).
        covered_rows: number of those outcomes.
        fold_p90_coverage: p90 coverage on each validation slice, latest first.
        p90_width_min: mean served p90 − p50, minutes.
        mae_min: mean absolute error of the served p50, minutes.
        online_p90_coverage: pooled p90 coverage when each slice is served with online
            recalibration (`models.online_calibration`, default settings), outcomes fed
            back as they complete.
        error: why the candidate could not be fitted on the inner training rows.
    """

    name: str
    p90_coverage: float | None = None
    covered_rows: int | None = None
    fold_p90_coverage: tuple[float, ...] = ()
    p90_width_min: float | None = None
    mae_min: float | None = None
    online_p90_coverage: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "p90_coverage": self.p90_coverage,
            "fold_p90_coverage": list(self.fold_p90_coverage),
            "p90_width_min": self.p90_width_min,
            "mae_min": self.mae_min,
            "online_p90_coverage": self.online_p90_coverage,
            "error": self.error,
        }


@dataclass(frozen=True)
class CalibrationChoice:
    """Outcome of the selection: the chosen candidate and every candidate's validation figures.

    Attributes:
        candidate: the chosen candidate.
        validated: False when no candidate could be validated and the first one was taken.
        n_validation: validation rows, pooled over the slices used.
        folds: each slice used, latest first: `window_ms` (first and last request time),
            `n_validation` and `n_inner` (rows it was trained on).
        scores: one entry per candidate, in grid order.
        coverage: nominal coverage the candidates were compared against.
        note: why the choice was not validated (empty otherwise).
    """

    candidate: CalibrationCandidate
    validated: bool
    n_validation: int
    folds: tuple[dict[str, Any], ...]
    scores: tuple[CandidateScore, ...]
    coverage: float
    note: str = ""

    @property
    def chosen_score(self) -> CandidateScore | None:
        """Validation figures of the chosen candidate (None when not validated)."""
        if not self.validated:
            return None
        return next(s for s in self.scores if s.name == self.candidate.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in model metadata and bench JSON)."""
        chosen = self.chosen_score
        return {
            "calibration_choice": self.candidate.name,
            "calibration_settings": self.candidate.to_dict(),
            "validated": self.validated,
            "validation_p90_coverage": None if chosen is None else chosen.p90_coverage,
            "validation_p90_width_min": None if chosen is None else chosen.p90_width_min,
            "validation_mae_min": None if chosen is None else chosen.mae_min,
            "validation_online_p90_coverage": None
            if chosen is None
            else chosen.online_p90_coverage,
            "n_validation": self.n_validation,
            "validation_folds": [dict(f) for f in self.folds],
            "nominal_coverage": self.coverage,
            "candidates": [s.to_dict() for s in self.scores],
            "note": self.note,
        }


def pick(scores: Sequence[CandidateScore], coverage: float, n_validation: int) -> int:
    """Index of the candidate whose validation p90 coverage is closest to `coverage`.

    Distances are compared in validation rows (|covered − coverage·n|), so equal distances
    are exact; they go to the smaller p90 width, then to the earlier candidate.

    Raises:
        ValueError: no candidate has validation figures.
    """
    scored = [
        (abs(s.covered_rows - coverage * n_validation), s.p90_width_min, i)
        for i, s in enumerate(scores)
        if s.covered_rows is not None and s.p90_width_min is not None
    ]
    if not scored:
        raise ValueError("no candidate has validation figures")
    return min(scored, key=lambda t: (round(t[0], 6), t[1], t[2]))[2]


def rolling_folds(
    ts_ms: npt.NDArray[np.int64], design: ValidationDesign
) -> list[tuple[BoolArray, BoolArray]]:
    """(inner rows, validation rows) of each slice, latest slice first.

    Slice k (k = 1 … folds) holds the rows from the k-th latest `validation_frac` of rows by
    time; its inner rows are all rows strictly earlier than the slice. Rows sharing a cut-off
    time go to the later slice, so slices are disjoint and every inner row precedes its slice.
    Empty slices are left out.
    """
    ts = np.asarray(ts_ms)
    n = ts.size
    if n == 0:
        return []
    size = max(1, math.ceil(design.validation_frac * n))
    ordered = np.sort(ts, kind="stable")
    out: list[tuple[BoolArray, BoolArray]] = []
    upper: np.int64 | None = None
    for k in range(1, design.folds + 1):
        start = n - k * size
        if start <= 0:
            break
        cut = ordered[start]
        validation = ts >= cut if upper is None else (ts >= cut) & (ts < upper)
        upper = cut
        if validation.any():
            out.append((ts < cut, validation))
    return out


def _subset(data: TrainingData, rows: BoolArray) -> TrainingData:
    return TrainingData(
        features=np.ascontiguousarray(data.features[rows]),
        base_eta_s=data.base_eta_s[rows],
        actual_s=data.actual_s[rows],
        ts_ms=data.ts_ms[rows],
        feature_names=data.feature_names,
    )


@dataclass(frozen=True)
class _FoldFigures:
    n: int
    covered: int
    width_sum_s: float
    abs_err_sum_s: float
    online_covered: int


def _score(model: ResidualQuantileModel, validation: TrainingData) -> _FoldFigures:
    pred = model.predict(validation.features, validation.base_eta_s)
    y = validation.actual_s
    online = OnlineCalibratedModel(model).replay(
        validation.features, validation.base_eta_s, validation.ts_ms, y
    )
    return _FoldFigures(
        n=int(y.size),
        covered=int(np.sum(y <= pred.p90_s)),
        width_sum_s=float(np.sum(pred.p90_s - pred.p50_s)),
        abs_err_sum_s=float(np.sum(np.abs(y - pred.p50_s))),
        online_covered=int(np.sum(y <= online.p90_s)),
    )


def _pool(name: str, folds: Sequence[_FoldFigures]) -> CandidateScore:
    n = sum(f.n for f in folds)
    covered = sum(f.covered for f in folds)
    return CandidateScore(
        name=name,
        p90_coverage=covered / n,
        covered_rows=covered,
        fold_p90_coverage=tuple(f.covered / f.n for f in folds),
        p90_width_min=sum(f.width_sum_s for f in folds) / n / 60.0,
        mae_min=sum(f.abs_err_sum_s for f in folds) / n / 60.0,
        online_p90_coverage=sum(f.online_covered for f in folds) / n,
    )


def train_with_selection(
    data: TrainingData,
    *,
    kind: str,
    target: Target,
    config: TrainConfig,
    clamp: ClampConfig,
    candidates: Sequence[CalibrationCandidate],
    design: ValidationDesign | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    synthesize: Synthesizer | None = None,
) -> tuple[ResidualQuantileModel, CalibrationChoice]:
    """Choose the calibration among `candidates` on validation slices, then train on all rows.

    The procedure is the module's (see its docstring). The model's metadata carries the choice
    under `calibration_selection`. One progress bar counts the boosting rounds of the
    validation fits and of the final fit.

    Raises:
        ValueError: `candidates` is empty or names a candidate twice.
        CalibrationError: the chosen candidate cannot be fitted on all training rows.
    """
    if not candidates:
        raise ValueError("need at least one calibration candidate")
    if len({c.name for c in candidates}) != len(candidates):
        raise ValueError("calibration candidate names must be unique")
    design = design or ValidationDesign()
    final = ResidualTrainer(data, target=target, config=config, synthesize=synthesize)
    notes: list[str] = []
    folds: list[tuple[ResidualTrainer, TrainingData]] = []
    for inner_rows, val_rows in rolling_folds(data.ts_ms, design):
        try:
            trainer = ResidualTrainer(
                _subset(data, inner_rows), target=target, config=config, synthesize=synthesize
            )
        except CalibrationError as exc:
            notes.append(f"slice of {int(val_rows.sum())} rows left out: {exc}")
            continue
        folds.append((trainer, _subset(data, val_rows)))
    # Candidates must fit on the latest (largest) inner set; slices are used only where
    # every such candidate fits, so all candidates are compared on the same rows.
    errors: dict[str, str] = {}
    feasible: list[CalibrationCandidate] = list(candidates) if folds else []
    if folds:
        for c in candidates:
            try:
                folds[0][0].calibration_masks(c.calibration_days)
            except CalibrationError as exc:
                errors[c.name] = str(exc)
                feasible.remove(c)

    def fits(trainer: ResidualTrainer) -> bool:
        try:
            for c in feasible:
                trainer.calibration_masks(c.calibration_days)
        except CalibrationError:
            return False
        return True

    used = [(t, v) for t, v in folds if fits(t)] if feasible else []
    n_val = sum(len(v.ts_ms) for _, v in used)
    if not used:
        notes.append("no validation slice can fit the candidates")
    elif n_val < design.min_validation_rows:
        notes.append(f"{n_val} validation rows, fewer than {design.min_validation_rows}")
        used = []
    days = [c.calibration_days for c in feasible]
    total = sum(t.rounds_for(days) for t, _ in used) + final.p50_rounds + final.window_rounds
    scores: list[CandidateScore] = []
    with tqdm(total=total, desc=f"train {kind}", unit="round", disable=not progress) as bar:
        bar.set_postfix_str("validating calibration candidates")
        for c in candidates:
            if c.name in errors or not used:
                scores.append(CandidateScore(name=c.name, error=errors.get(c.name)))
                continue
            try:
                per_fold = [
                    _score(t.model(c.apply(config), kind=kind, clamp=clamp, bar=bar), v)
                    for t, v in used
                ]
            except CalibrationError as exc:
                scores.append(CandidateScore(name=c.name, error=str(exc)))
                continue
            scores.append(_pool(c.name, per_fold))
        validated = any(s.covered_rows is not None for s in scores)
        if validated:
            chosen = candidates[pick(scores, config.coverage, n_val)]
        else:
            chosen = candidates[0]
            if not notes:
                notes.append("no candidate could be fitted before the validation slices")
        choice = CalibrationChoice(
            candidate=chosen,
            validated=validated,
            n_validation=n_val if validated else 0,
            folds=tuple(
                {
                    "window_ms": [int(v.ts_ms.min()), int(v.ts_ms.max())],
                    "n_validation": len(v.ts_ms),
                    "n_inner": len(t.data.ts_ms),
                }
                for t, v in used
            )
            if validated
            else (),
            scores=tuple(scores),
            coverage=config.coverage,
            note="; ".join(notes),
        )
        bar.set_postfix_str(f"refit {chosen.name} on all rows")
        model = final.model(
            chosen.apply(config),
            kind=kind,
            clamp=clamp,
            metadata={**(metadata or {}), "calibration_selection": choice.to_dict()},
            bar=bar,
        )
    return model, choice


def describe_selection(selection: Mapping[str, Any]) -> str:
    """One line for humans from `CalibrationChoice.to_dict()`: the choice and every candidate."""
    name = selection.get("calibration_choice")
    if not selection.get("validated"):
        return f"calibration {name} (not validated: {selection.get('note', '')})"
    parts = [
        f"{c['name']} {c['p90_coverage']:.3f}"
        if c.get("p90_coverage") is not None
        else f"{c['name']} n/a"
        for c in selection.get("candidates", [])
    ]
    online = selection.get("validation_online_p90_coverage")
    online_part = f", {online:.3f} with online recalibration" if online is not None else ""
    return (
        f"calibration {name}: validation p90 coverage "
        f"{selection['validation_p90_coverage']:.3f}{online_part} on "
        f"{selection['n_validation']} of the latest training rows in "
        f"{len(selection.get('validation_folds', []))} slices (candidates: {', '.join(parts)})"
    )
