import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.fallback import FallbackReason
from models.legs import TravelFeatureConfig, travel_features
from models.residual import ResidualQuantileModel
from models.service import EtaService, LoadedModel, StaticModelSource
from models.single import SingleLegFeatures, haversine_m_scalar

from .conftest import CITY, CONTEXT, START_MS, legs

NOW = START_MS + 50 * 86_400_000
MARKED = TravelFeatureConfig(
    timezone=CITY.timezone,
    grid_rotation_deg=CITY.grid_rotation_deg,
    landmarks=((40.64, -73.78), (40.77, -73.87)),
)


def service_for(model: ResidualQuantileModel) -> EtaService:
    """A service over a fixed model, no timeout."""
    return EtaService(StaticModelSource(LoadedModel(model, "v0001")), model_timeout_s=None)


@settings(max_examples=25, deadline=None)
@given(
    st.floats(40.55, 40.95),
    st.floats(-74.2, -73.7),
    st.floats(-0.05, 0.05),
    st.floats(-0.05, 0.05),
    st.integers(0, 400 * 86_400_000),
    st.integers(0, 2),
)
def test_scalar_features_equal_vectorized_features(
    lat: float,
    lon: float,
    dlat: float,
    dlon: float,
    dt_ms: int,
    leg: int,
) -> None:
    """The one-leg feature row is bit-for-bit the row `travel_features` builds (landmarks too)."""
    ts = START_MS + dt_ms
    dist = haversine_m_scalar(lat, lon, lat + dlat, lon + dlon)
    expected = travel_features(
        np.array([lat]),
        np.array([lon]),
        np.array([lat + dlat]),
        np.array([lon + dlon]),
        np.array([ts], dtype=np.int64),
        np.array([leg], dtype=np.int64),
        np.array([300.0]),
        MARKED,
        dist_m=np.array([dist]),
    )[0]
    got = SingleLegFeatures(MARKED)(lat, lon, lat + dlat, lon + dlon, ts, leg, 300.0, dist)
    assert got == [float(v) for v in expected]


def test_haversine_scalar_matches_numpy() -> None:
    """The scalar distance agrees with the vectorized one to float rounding."""
    from contracts.geo import haversine_m as haversine_m_np

    rng = np.random.default_rng(2)
    a = rng.uniform(-60, 60, (50, 4))
    for la1, lo1, la2, lo2 in a:
        assert haversine_m_scalar(la1, lo1, la2, lo2) == pytest.approx(
            float(haversine_m_np(la1, lo1, la2, lo2)), rel=1e-12
        )


@pytest.mark.parametrize("base", [None, 420.0])
def test_predict_one_equals_one_leg_batch(
    travel_model: ResidualQuantileModel, base: float | None
) -> None:
    """`predict_one` answers what `predict_legs` answers for the same single leg."""
    svc = service_for(travel_model)
    batch = legs(30)
    for i in range(30):
        one = svc.predict_one(
            float(batch.origin_lat[i]),
            float(batch.origin_lon[i]),
            float(batch.dest_lat[i]),
            float(batch.dest_lon[i]),
            int(batch.request_ts_ms[i]),
            int(batch.leg[i]),
            base,
        )
        ref_batch = legs(30)
        ref_batch.base_eta_s = None if base is None else np.full(30, base)
        ref = svc.predict_legs(ref_batch)
        assert one.p50_s == pytest.approx(ref.p50_s[i], rel=1e-6)
        assert one.p90_s == pytest.approx(ref.p90_s[i], rel=1e-6)
        assert one.base_eta_s == pytest.approx(ref.base_eta_s[i], rel=1e-9)
        assert not one.fallback


def test_predict_one_context_fallbacks(context_model: ResidualQuantileModel) -> None:
    """Missing and stale required context give the batch path's reasons; fresh is served."""
    svc = service_for(context_model)
    args = (40.75, -73.98, 40.76, -73.97, NOW, 0)
    missing = svc.predict_one(*args)
    stale = svc.predict_one(*args, context={CONTEXT: (5.0, NOW - 3_600_000)})
    fresh = svc.predict_one(*args, context={CONTEXT: (5.0, NOW - 1_000)})
    assert missing.reason is FallbackReason.MISSING_FEATURE
    assert missing.p50_s == missing.p90_s == missing.base_eta_s
    assert stale.reason is FallbackReason.STALE_FEATURE
    assert fresh.reason is FallbackReason.NONE and fresh.p90_s >= fresh.p50_s


def test_recorded_misses_raise_later_p90_only(travel_model: ResidualQuantileModel) -> None:
    """Outcomes fed back raise the p90 of requests after their completion, not before."""
    svc = service_for(travel_model)
    args = (40.75, -73.98, 40.76, -73.97)
    first = svc.predict_one(*args, NOW, 0)
    for k in range(20):
        assert svc.record_outcome("v0001", NOW + 60_000 + k, 1e4, first.p90_s)
    before = svc.predict_one(*args, NOW + 60_000, 0)
    after = svc.predict_one(*args, NOW + 120_000, 0)
    assert before.p90_s == first.p90_s
    assert after.p90_s > first.p90_s
    assert after.p50_s == first.p50_s


def test_outcome_for_unknown_version_is_ignored(travel_model: ResidualQuantileModel) -> None:
    """An outcome of a version the service does not serve is refused."""
    svc = service_for(travel_model)
    svc.predict_one(40.75, -73.98, 40.76, -73.97, NOW, 0)
    assert not svc.record_outcome("v9999", NOW, 100.0, 90.0)
    assert not svc.record_outcome("v0001", NOW, float("nan"), 90.0)


def test_warm_up_prepares_without_serving(travel_model: ResidualQuantileModel) -> None:
    """Warming up compiles the one-leg path but counts nothing and leaves recalibration alone."""
    svc = service_for(travel_model)
    assert svc.warm_up()
    assert svc._prepared is not None and svc._prepared.single is not None
    assert svc.metrics.served == 0
    tracker = svc.online_tracker("v0001")
    assert tracker is not None and tracker.state().cutoff_ts_ms is None


def test_warm_up_without_a_model_reports_false() -> None:
    """With no model available there is nothing to warm up."""
    from models.service import ModelUnavailable

    svc = EtaService(StaticModelSource(ModelUnavailable(FallbackReason.MISSING_MODEL, "none")))
    assert not svc.warm_up()
