"""ETA serving: the vectorized batch API for dispatch and the single-request path.

`EtaService.predict_legs` takes arrays of travel legs and returns arrays of p50/p90 seconds
with per-row fallback flags and reasons; `EtaService.predict_one` answers a single leg (the
`POST /eta` path) with the same result in plain Python scalars. Whatever goes wrong — no
model, a corrupt model, a missing or stale required feature, a model slower than its
timeout, a NaN/inf output — the row is answered with its base ETA, `fallback=True` and a
`FallbackReason`; the service never raises for a model failure.

The p90 is recalibrated online (`models.online_calibration`) when the service is given a
learning rate: `record_outcome` feeds back each completed leg against the p90 it was served,
and later requests see the adjusted margin.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from contracts.geo import haversine_m as haversine_m_np
from models.base_eta import StraightLineProvider
from models.fallback import FallbackCounts, FallbackReason, report_reasons
from models.legs import TravelFeatureConfig, travel_features
from models.online_calibration import (
    DEFAULT_LEARNING_RATE,
    OnlineCalibrationError,
    OnlineMarginTracker,
    tracker_for,
)
from models.residual import SMALL_BATCH_ROWS, ResidualQuantileModel
from models.single import SingleLegModel, SingleLegUnsupported, haversine_m_scalar

FloatArray = npt.NDArray[np.float64]

#: The model call's default timeout: well below a 15 ms caller budget.
DEFAULT_MODEL_TIMEOUT_S = 0.008


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve, with the version it was loaded from."""

    model: ResidualQuantileModel
    version: str


@dataclass(frozen=True)
class ModelUnavailable:
    """Why no model can serve (`MISSING_MODEL` or `CORRUPT_MODEL`) and details."""

    reason: FallbackReason
    detail: str


class ModelSource(Protocol):
    """Where the service gets its current model (e.g. `models.registry.ModelRegistry`)."""

    def current(self) -> LoadedModel | ModelUnavailable:
        """The model to serve now, or why there is none."""
        ...


@dataclass(frozen=True)
class StaticModelSource:
    """A fixed model (or fixed unavailability), for tests, benchmarks and embedding."""

    entry: LoadedModel | ModelUnavailable

    def current(self) -> LoadedModel | ModelUnavailable:
        """The fixed entry."""
        return self.entry


@dataclass(frozen=True)
class ContextFeature:
    """A model input taken from request context (e.g. the origin zone's observed speed).

    Attributes:
        name: feature name in the request context and the model's feature list.
        sla_ms: the value's `ts_ms` may lag the request time by at most this much.
        required: a missing value is a fallback (else it is passed to the model as missing).
    """

    name: str
    sla_ms: int
    required: bool = True


def travel_config_of(model: ResidualQuantileModel) -> TravelFeatureConfig:
    """The travel-feature config stored in a model's metadata (`feature_config`)."""
    raw = model.metadata.get("feature_config")
    return TravelFeatureConfig.from_dict(raw) if isinstance(raw, dict) else TravelFeatureConfig()


def context_features_of(model: ResidualQuantileModel) -> tuple[ContextFeature, ...]:
    """The context features declared in a model's metadata (`context_features`)."""
    specs = model.metadata.get("context_features", [])
    return tuple(
        ContextFeature(str(s["name"]), int(s["sla_ms"]), bool(s.get("required", True)))
        for s in specs
    )


@dataclass
class LegBatch:
    """Travel legs to predict, as parallel arrays of length n.

    Attributes:
        origin_lat: origin latitudes (degrees).
        origin_lon: origin longitudes.
        dest_lat: destination latitudes.
        dest_lon: destination longitudes.
        request_ts_ms: request times (epoch ms).
        leg: `models.legs.Leg` codes.
        base_eta_s: base ETAs; None to use the service's straight-line provider.
        context: per context feature, (values, ts_ms) arrays; NaN value = missing.
    """

    origin_lat: FloatArray
    origin_lon: FloatArray
    dest_lat: FloatArray
    dest_lon: FloatArray
    request_ts_ms: npt.NDArray[np.int64]
    leg: npt.NDArray[np.int64]
    base_eta_s: FloatArray | None = None
    context: Mapping[str, tuple[FloatArray, npt.NDArray[np.int64]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(np.shape(self.origin_lat)[0])


@dataclass
class EtaBatchResult:
    """Predictions for a `LegBatch`.

    Attributes:
        p50_s: p50 ETA per leg (seconds).
        p90_s: p90 ETA per leg (seconds, ≥ p50_s).
        base_eta_s: base ETA per leg.
        fallback: True where the base was served.
        reason: `FallbackReason` code per leg (0 where no fallback).
        model_version: version of the model used, or None when none was.
    """

    p50_s: FloatArray
    p90_s: FloatArray
    base_eta_s: FloatArray
    fallback: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.int8]
    model_version: str | None

    def reason_at(self, i: int) -> str | None:
        """Wire name of the fallback reason of row `i` (None if no fallback)."""
        return FallbackReason(int(self.reason[i])).wire


@dataclass(frozen=True)
class SingleResult:
    """The answer for one leg (`EtaService.predict_one`).

    Attributes:
        p50_s: p50 ETA (seconds).
        p90_s: p90 ETA (seconds, ≥ p50_s).
        base_eta_s: base ETA.
        reason: why the base was served (`FallbackReason.NONE` when it was not).
        model_version: version of the model used, or None when none was.
    """

    p50_s: float
    p90_s: float
    base_eta_s: float
    reason: FallbackReason
    model_version: str | None

    @property
    def fallback(self) -> bool:
        """True when the base ETA was served."""
        return self.reason is not FallbackReason.NONE


@dataclass
class _Prepared:
    """Per-model facts the serving path needs on every call (computed once per model)."""

    entry: LoadedModel
    config: TravelFeatureConfig
    context: tuple[ContextFeature, ...]
    names_ok: bool
    single: SingleLegModel | None
    tracker: OnlineMarginTracker | None


class ShadowSink(Protocol):
    """Receives a candidate model's predictions (see `models.registry.ShadowScorer`)."""

    def score(
        self, features: npt.NDArray[np.float32], base_eta_s: FloatArray, served: EtaBatchResult
    ) -> None:
        """Score the candidate on the same inputs; must never affect what was served."""
        ...


class EtaService:
    """Serves travel-leg ETAs from a model source, with fallback to the base ETA.

    Args:
        source: where the current model comes from (registry or static).
        provider: base-ETA provider used when a batch carries no base ETAs.
        model_timeout_s: budget of the model call; None runs it inline with no timeout.
        metrics: counters of served rows, fallbacks by reason and clamps.
        shadow: optional candidate scorer, called after serving.
        clock: monotonic seconds (injected for tests).
        online_learning_rate: step of the online p90 recalibration in score scales (see
            `models.online_calibration.tracker_for`); None serves the static p90.
    """

    def __init__(
        self,
        source: ModelSource,
        provider: StraightLineProvider | None = None,
        model_timeout_s: float | None = DEFAULT_MODEL_TIMEOUT_S,
        metrics: FallbackCounts | None = None,
        shadow: ShadowSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        online_learning_rate: float | None = DEFAULT_LEARNING_RATE,
    ) -> None:
        self.source = source
        self.online_learning_rate = online_learning_rate
        self._prepared: _Prepared | None = None
        self._trackers: dict[str, OnlineMarginTracker] = {}
        self.provider = provider or StraightLineProvider()
        self.model_timeout_s = model_timeout_s
        self.metrics = metrics or FallbackCounts()
        self.shadow = shadow
        self.clock = clock
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the model thread (if one was started)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _prepare(self, entry: LoadedModel) -> _Prepared:
        """The per-model facts of `entry` (cached until the source serves another model)."""
        prep = self._prepared
        if prep is not None and prep.entry is entry:
            return prep
        model = entry.model
        config = travel_config_of(model)
        context = context_features_of(model)
        names = config.feature_names()
        names_ok = (
            len(model.feature_names) == len(names) + len(context)
            and model.feature_names[: len(names)] == names
        )
        single: SingleLegModel | None = None
        if names_ok:
            try:
                single = SingleLegModel(model, config)
            except SingleLegUnsupported:
                single = None
        tracker: OnlineMarginTracker | None = None
        if self.online_learning_rate is not None:
            tracker = self._trackers.get(entry.version)
            if tracker is None:
                tracker = tracker_for(model, learning_rate=self.online_learning_rate)
                self._trackers[entry.version] = tracker
        prep = _Prepared(entry, config, context, names_ok, single, tracker)
        self._prepared = prep
        return prep

    def warm_up(self) -> bool:
        """Prepare the current model for serving now rather than on the first request.

        Builds what every call reuses (feature config, the compiled one-leg path) and runs
        the one-leg path once on a made-up leg, without counting it or touching the online
        recalibration. Call it at start-up and after a model reload. Returns False when no
        model is available (nothing to prepare).
        """
        entry = self.source.current()
        if not isinstance(entry, LoadedModel):
            return False
        prep = self._prepare(entry)
        if prep.single is not None:
            with contextlib.suppress(Exception):  # a broken model is reported when served
                extra = tuple(math.nan for _ in prep.context)
                row = prep.single.features(0.0, 0.0, 0.01, 0.01, 0, 0, 60.0, 1500.0, extra)
                prep.single.predict(row, 60.0)
        return True

    def record_outcome(
        self, model_version: str | None, completion_ts_ms: int, actual_s: float, served_p90_s: float
    ) -> bool:
        """Feed back a completed leg: its actual duration and the p90 it was served.

        Only predictions requested after `completion_ts_ms` see it. Returns False (and does
        nothing) when the leg was not served by a model this service recalibrates, or the
        values are unusable (non-finite, non-integer time).
        """
        tracker = self._trackers.get(model_version) if model_version is not None else None
        if tracker is None:
            return False
        if not (math.isfinite(actual_s) and math.isfinite(served_p90_s)):
            return False
        try:
            tracker.record(completion_ts_ms, actual_s > served_p90_s)
        except OnlineCalibrationError:
            return False
        return True

    def online_tracker(self, model_version: str) -> OnlineMarginTracker | None:
        """The online recalibration state of a served model version (None if there is none)."""
        return self._trackers.get(model_version)

    def _run_with_timeout(
        self, fn: Callable[[], Any], timeout_s: float | None, rows: int
    ) -> tuple[Any, FallbackReason]:
        if timeout_s is not None and rows <= SMALL_BATCH_ROWS:
            # A few rows are walked in-process in tens of microseconds: run inline (no thread
            # hand-off on the request path) and discard a result that overran the deadline.
            start = self.clock()
            try:
                out = fn()
            except Exception:  # a model failure must never escape the service
                return None, FallbackReason.MODEL_ERROR
            if self.clock() - start > timeout_s:
                return None, FallbackReason.MODEL_TIMEOUT
            return out, FallbackReason.NONE
        if timeout_s is None:
            try:
                return fn(), FallbackReason.NONE
            except Exception:  # a model failure must never escape the service
                return None, FallbackReason.MODEL_ERROR
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="eta-model"
            )
        future = self._executor.submit(fn)
        try:
            return future.result(timeout=timeout_s), FallbackReason.NONE
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None, FallbackReason.MODEL_TIMEOUT
        except Exception:  # a model failure must never escape the service
            return None, FallbackReason.MODEL_ERROR

    def predict_legs(
        self, batch: LegBatch, timeout_s: float | str | None = "default"
    ) -> EtaBatchResult:
        """p50/p90 ETAs for every leg of `batch` (see `EtaBatchResult`).

        `timeout_s` overrides the service's model timeout for this call (None = no timeout).
        """
        n = len(batch)
        olat = np.asarray(batch.origin_lat, dtype=np.float64)
        olon = np.asarray(batch.origin_lon, dtype=np.float64)
        dlat = np.asarray(batch.dest_lat, dtype=np.float64)
        dlon = np.asarray(batch.dest_lon, dtype=np.float64)
        dist = haversine_m_np(olat, olon, dlat, dlon)
        if batch.base_eta_s is None:
            base = self.provider.eta_s_batch(olat, olon, dist)
        else:
            base = np.asarray(batch.base_eta_s, dtype=np.float64)
        reason = np.zeros(n, dtype=np.int8)
        entry = self.source.current()
        if isinstance(entry, ModelUnavailable):
            reason[:] = entry.reason
            return self._finish(base, base.copy(), base.copy(), reason, None, None)
        model = entry.model
        prep = self._prepare(entry)
        config = prep.config
        feats = travel_features(
            olat,
            olon,
            dlat,
            dlon,
            batch.request_ts_ms,
            batch.leg,
            base,
            config,
            dist_m=dist,
        )
        ctx_specs = prep.context
        if ctx_specs:
            cols = [feats]
            for spec in ctx_specs:
                values, ts = batch.context.get(
                    spec.name, (np.full(n, np.nan), np.zeros(n, dtype=np.int64))
                )
                v = np.asarray(values, dtype=np.float64)
                missing = ~np.isfinite(v)
                stale = ~missing & (np.asarray(batch.request_ts_ms) - np.asarray(ts) > spec.sla_ms)
                if spec.required:
                    reason[(reason == 0) & missing] = FallbackReason.MISSING_FEATURE
                    reason[(reason == 0) & stale] = FallbackReason.STALE_FEATURE
                v = np.where(stale, np.nan, v)
                cols.append(v.astype(np.float32)[:, None])
            feats = np.ascontiguousarray(np.hstack(cols))
        if not prep.names_ok or feats.shape[1] != len(model.feature_names):
            reason[:] = FallbackReason.CORRUPT_MODEL
            return self._finish(base, base.copy(), base.copy(), reason, entry.version, None)
        limit = self.model_timeout_s if timeout_s == "default" else timeout_s
        assert limit is None or isinstance(limit, float | int)  # noqa: S101 - narrowing only
        # Online recalibration: outcomes completed before the batch's earliest request only.
        offset = (
            prep.tracker.offset_at(int(np.min(batch.request_ts_ms)))
            if prep.tracker is not None and n > 0
            else 0.0
        )
        out, failure = self._run_with_timeout(
            lambda: model.predict(feats, base, p90_offset=offset), limit, n
        )
        if failure is not FallbackReason.NONE:
            reason[reason == 0] = failure
            return self._finish(base, base.copy(), base.copy(), reason, entry.version, None)
        reason[(reason == 0) & ~out.finite] = FallbackReason.NON_FINITE_OUTPUT
        self.metrics.add_clamped(int(np.count_nonzero(out.clamped)))
        result = self._finish(base, out.p50_s, out.p90_s, reason, entry.version, None)
        if self.shadow is not None:
            # A candidate must never affect serving, whatever it raises.
            with contextlib.suppress(Exception):
                self.shadow.score(feats, base, result)
        return result

    def predict_one(
        self,
        origin_lat: float,
        origin_lon: float,
        dest_lat: float,
        dest_lon: float,
        request_ts_ms: int,
        leg: int,
        base_eta_s: float | None = None,
        context: Mapping[str, tuple[float, int]] | None = None,
    ) -> SingleResult:
        """p50/p90 for one leg: what `predict_legs` gives for a batch of that one leg.

        `context` maps context feature names to (value, ts_ms); NaN = missing. Served in
        Python scalars when the model allows it (no numpy per-call overhead), else through
        `predict_legs`.
        """
        entry = self.source.current()
        prep = self._prepare(entry) if isinstance(entry, LoadedModel) else None
        zoned = bool(self.provider.zone_speeds_mps)
        if prep is None or prep.single is None or zoned or self.shadow is not None:
            ctx = {
                k: (np.array([v]), np.array([t], dtype=np.int64))
                for k, (v, t) in (context or {}).items()
            }
            batch = LegBatch(
                origin_lat=np.array([origin_lat]),
                origin_lon=np.array([origin_lon]),
                dest_lat=np.array([dest_lat]),
                dest_lon=np.array([dest_lon]),
                request_ts_ms=np.array([request_ts_ms], dtype=np.int64),
                leg=np.array([leg], dtype=np.int64),
                base_eta_s=None if base_eta_s is None else np.array([base_eta_s]),
                context=ctx,
            )
            r = self.predict_legs(batch)
            return SingleResult(
                float(r.p50_s[0]),
                float(r.p90_s[0]),
                float(r.base_eta_s[0]),
                FallbackReason(int(r.reason[0])),
                r.model_version,
            )
        dist = haversine_m_scalar(origin_lat, origin_lon, dest_lat, dest_lon)
        if base_eta_s is None:
            base = dist * self.provider.detour_factor / self.provider.default_speed_mps
        else:
            base = float(base_eta_s)
        reason = FallbackReason.NONE
        extra: list[float] = []
        for spec in prep.context:
            value, value_ts = (context or {}).get(spec.name, (math.nan, 0))
            v = float(value)
            missing = not math.isfinite(v)
            stale = not missing and request_ts_ms - int(value_ts) > spec.sla_ms
            if spec.required and reason is FallbackReason.NONE:
                if missing:
                    reason = FallbackReason.MISSING_FEATURE
                elif stale:
                    reason = FallbackReason.STALE_FEATURE
            extra.append(math.nan if stale else v)
        version = entry.version if isinstance(entry, LoadedModel) else None
        offset = prep.tracker.offset_at(int(request_ts_ms)) if prep.tracker is not None else 0.0
        single = prep.single
        start = self.clock()
        try:
            row = single.features(
                origin_lat,
                origin_lon,
                dest_lat,
                dest_lon,
                int(request_ts_ms),
                int(leg),
                base,
                dist,
                tuple(extra),
            )
            out = single.predict(row, base, offset)
        except Exception:  # a model failure must never escape the service
            return self._finish_one(base, base, base, FallbackReason.MODEL_ERROR, version)
        limit = self.model_timeout_s
        if limit is not None and self.clock() - start > limit:
            return self._finish_one(base, base, base, FallbackReason.MODEL_TIMEOUT, version)
        if reason is FallbackReason.NONE and not out.finite:
            reason = FallbackReason.NON_FINITE_OUTPUT
        if out.clamped:
            self.metrics.add_clamped(1)
        return self._finish_one(base, out.p50_s, out.p90_s, reason, version)

    def _finish_one(
        self, base: float, p50: float, p90: float, reason: FallbackReason, version: str | None
    ) -> SingleResult:
        self.metrics(reason, 1)
        if reason is not FallbackReason.NONE:
            p50 = p90 = base
        return SingleResult(p50, p90, base, reason, version)

    def _finish(
        self,
        base: FloatArray,
        p50: FloatArray,
        p90: FloatArray,
        reason: npt.NDArray[np.int8],
        version: str | None,
        _: None,
    ) -> EtaBatchResult:
        fb = reason != 0
        if fb.any():
            p50 = np.where(fb, base, p50)
            p90 = np.where(fb, base, p90)
        report_reasons(reason, self.metrics)
        return EtaBatchResult(
            p50_s=p50,
            p90_s=p90,
            base_eta_s=base,
            fallback=fb,
            reason=reason,
            model_version=version,
        )
