"""The ETA model in the worker: the dispatch engine's leg predictor and `POST /eta` (wiring only).

Both use one `EtaService`, so the route answers with the model (and the online p90
recalibration state) that dispatch uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from dispatch.live.eta import LegPrediction, LegPredictor, StraightLinePredictor
from dispatchflow.settings import Settings
from models.fallback import FallbackReason
from models.http import MAX_BODY_BYTES, handle_eta
from models.legs import Leg
from models.registry import ModelRegistry
from models.service import EtaService, LegBatch, ModelUnavailable, StaticModelSource
from streams.json_post import mount_json_post

if TYPE_CHECKING:
    from streams.runtime import Runtime

FloatArray = npt.NDArray[np.float64]


class ServiceLegPredictor:
    """Legs predicted by an `EtaService` (model residual on the base ETA, with fallback)."""

    def __init__(self, service: EtaService, leg: Leg = Leg.PICKUP, timeout_s: float | None = None):
        self.service = service
        self.leg = leg
        self.timeout_s = timeout_s
        self._version = "base"

    @property
    def version(self) -> str:
        """Version of the model that served the last batch ("base" when none did)."""
        return self._version

    def predict(
        self,
        origin_lat: FloatArray,
        origin_lon: FloatArray,
        dest_lat: FloatArray,
        dest_lon: FloatArray,
        request_ts_ms: int,
    ) -> LegPrediction:
        """Quantiles from the service; rows it could not model carry the base ETA."""
        n = int(np.shape(origin_lat)[0])
        batch = LegBatch(
            origin_lat=origin_lat,
            origin_lon=origin_lon,
            dest_lat=dest_lat,
            dest_lon=dest_lon,
            request_ts_ms=np.full(n, request_ts_ms, dtype=np.int64),
            leg=np.full(n, int(self.leg), dtype=np.int64),
        )
        result = self.service.predict_legs(batch, timeout_s=self.timeout_s)
        self._version = result.model_version or "base"
        return LegPrediction(result.p50_s, result.p90_s, result.fallback)


def predictor_from_settings(settings: Settings) -> LegPredictor:
    """The model-backed predictor when a model registry is configured, else straight-line."""
    if settings.model_dir is None:
        return StraightLinePredictor()
    registry = ModelRegistry(settings.model_dir)
    return ServiceLegPredictor(EtaService(registry), timeout_s=settings.eta_timeout_s)


def eta_service_of(rt: Runtime) -> EtaService:
    """The engine's ETA service, or one that always serves the base ETA (no model configured)."""
    predictor = rt.core.engine.predictor if rt.core is not None else None
    if isinstance(predictor, ServiceLegPredictor):
        return predictor.service
    return EtaService(
        StaticModelSource(ModelUnavailable(FallbackReason.MISSING_MODEL, "no model configured"))
    )


def register_eta_route(rt: Runtime) -> None:
    """Mount `POST /eta` (see `models.http`) on the worker's web server."""
    service = eta_service_of(rt)
    mount_json_post(rt.app, "/eta", MAX_BODY_BYTES, lambda body: handle_eta(service, body))
