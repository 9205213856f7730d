from dataclasses import replace

import numpy as np
import pytest

from models.fallback import FallbackCounts, FallbackReason
from models.residual import ResidualQuantileModel
from models.service import EtaService, LoadedModel, ModelUnavailable, StaticModelSource

from .conftest import CONTEXT, legs, row_of


def service_for(model: ResidualQuantileModel, **kw: object) -> EtaService:
    """A service over a fixed model."""
    return EtaService(StaticModelSource(LoadedModel(model, "v0001")), **kw)  # type: ignore[arg-type]


def assert_base_served(result, reason: FallbackReason) -> None:  # type: ignore[no-untyped-def]
    """Every row fell back with `reason` and got the base ETA."""
    assert np.all(result.fallback)
    assert np.all(result.reason == reason)
    np.testing.assert_array_equal(result.p50_s, result.base_eta_s)
    np.testing.assert_array_equal(result.p90_s, result.base_eta_s)


def test_model_serves_without_fallback(travel_model: ResidualQuantileModel) -> None:
    """A healthy model answers every leg with its own p50/p90 and the version."""
    svc = service_for(travel_model, model_timeout_s=None)
    out = svc.predict_legs(legs(50))
    assert not out.fallback.any()
    assert out.model_version == "v0001"
    assert np.all(out.p90_s >= out.p50_s)


def test_batch_rows_equal_single_requests(travel_model: ResidualQuantileModel) -> None:
    """A leg's prediction does not depend on the other legs of its batch."""
    svc = service_for(travel_model, model_timeout_s=None)
    many = legs(20)
    batch = svc.predict_legs(many)
    for i in (0, 7, 19):
        single = svc.predict_legs(row_of(many, i))
        assert single.p50_s[0] == pytest.approx(batch.p50_s[i], rel=1e-6)


def test_missing_model_falls_back(travel_model: ResidualQuantileModel) -> None:
    """No model → base ETA with reason missing_model."""
    svc = EtaService(StaticModelSource(ModelUnavailable(FallbackReason.MISSING_MODEL, "none")))
    out = svc.predict_legs(legs(3))
    assert_base_served(out, FallbackReason.MISSING_MODEL)
    assert out.reason_at(0) == "missing_model"


def test_model_timeout_falls_back(travel_model: ResidualQuantileModel) -> None:
    """A model call slower than its timeout is abandoned for the base ETA."""
    counts = FallbackCounts()
    svc = service_for(travel_model, model_timeout_s=1e-9, metrics=counts)
    try:
        out = svc.predict_legs(legs(200_000))
    finally:
        svc.close()
    assert_base_served(out, FallbackReason.MODEL_TIMEOUT)
    assert counts.by_reason == {"model_timeout": 200_000}


def test_non_finite_output_falls_back(travel_model: ResidualQuantileModel) -> None:
    """A model whose output overflows to inf is answered with the base ETA."""
    broken = replace(travel_model, booster_p90=None, p90_margin=0.0, p90_bins=(0, (), (1e6,)))
    out = service_for(broken, model_timeout_s=None).predict_legs(legs(4))
    assert_base_served(out, FallbackReason.NON_FINITE_OUTPUT)


def test_missing_required_feature_falls_back(context_model: ResidualQuantileModel) -> None:
    """A required context feature absent from the request → missing_feature."""
    out = service_for(context_model, model_timeout_s=None).predict_legs(legs(2))
    assert_base_served(out, FallbackReason.MISSING_FEATURE)


def test_stale_required_feature_falls_back(context_model: ResidualQuantileModel) -> None:
    """A context value older than its SLA → stale_feature; a fresh one is served."""
    now = int(legs(2).request_ts_ms[0])
    ages = np.array([3_600_000, 1_000], dtype=np.int64)
    ctx = {CONTEXT: (np.array([5.0, 5.0]), now - ages)}
    out = service_for(context_model, model_timeout_s=None).predict_legs(legs(2, context=ctx))
    assert out.reason_at(0) == "stale_feature"
    assert out.p50_s[0] == out.base_eta_s[0]
    assert not out.fallback[1]


def test_fallback_counts_by_reason(context_model: ResidualQuantileModel) -> None:
    """Served rows and fallbacks are counted for export as metrics."""
    counts = FallbackCounts()
    svc = service_for(context_model, model_timeout_s=None, metrics=counts)
    svc.predict_legs(legs(3))
    assert counts.served == 3
    assert counts.by_reason == {"missing_feature": 3}
    assert counts.fallback_rate() == 1.0
