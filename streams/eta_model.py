"""The ETA model in the worker: the dispatch engine's leg predictor and `POST /eta` (wiring only).

Both use one `EtaService`, so the route answers with the model (and the online p90
recalibration state) that dispatch uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from dispatch.live.eta import LegPredictor, ServiceLegPredictor, StraightLinePredictor
from dispatchflow.settings import Settings
from models.fallback import FallbackReason
from models.http import MAX_BODY_BYTES, handle_eta
from models.registry import ModelRegistry
from models.service import EtaService, ModelUnavailable, StaticModelSource
from streams.json_post import mount_json_post

if TYPE_CHECKING:
    from streams.runtime import Runtime

FloatArray = npt.NDArray[np.float64]


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
