"""The models in the worker: the engine's leg predictor, its model sets, `POST /eta` (wiring only).

The predictor and the route use one `EtaService`, so the route answers with the model (and the
online p90 recalibration state) that dispatch uses. The same registry gives the engine its
model sets (the served one and the shadow candidate, `dispatch.live.staged`); it is re-read
every `model_refresh_s` seconds, so a promotion (`dispatchflow models promote`) or a new
candidate takes effect without a restart.
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


def models_from_settings(settings: Settings) -> tuple[LegPredictor, ModelRegistry | None]:
    """The leg predictor and the model registry of a worker.

    With a registry (`model_dir`) it is read once here, and the predictor is the model-backed
    one; without one, legs are straight-line and there is no registry.
    """
    if settings.model_dir is None:
        return StraightLinePredictor(), None
    registry = ModelRegistry(settings.model_dir)
    registry.refresh()
    return ServiceLegPredictor(EtaService(registry), timeout_s=settings.eta_timeout_s), registry


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
