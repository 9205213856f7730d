import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from models.http import MAX_BODY_BYTES, MAX_LEG_DISTANCE_M, handle_eta, make_app
from models.residual import ResidualQuantileModel
from models.service import EtaService, LoadedModel, StaticModelSource

from .conftest import START_MS

GOOD = {
    "origin": {"lat": 40.75, "lon": -73.99},
    "destination": {"lat": 40.76, "lon": -73.97},
    "request_time_ms": START_MS + 50 * 86_400_000,
    "leg": "pickup",
    "base_eta_s": 420.0,
}


@pytest.fixture
def service(travel_model: ResidualQuantileModel) -> EtaService:
    """A service over the small travel model."""
    return EtaService(StaticModelSource(LoadedModel(travel_model, "v0007")), model_timeout_s=None)


def test_valid_request_gets_the_contract_fields(service: EtaService) -> None:
    """A valid body is answered 200 with every response field."""
    status, body = handle_eta(service, orjson.dumps(GOOD))
    out = orjson.loads(body)
    assert status == 200
    assert set(out) == {
        "p50_s",
        "p90_s",
        "base_eta_s",
        "fallback_used",
        "fallback_reason",
        "model_version",
    }
    assert out["base_eta_s"] == 420.0 and out["model_version"] == "v0007"
    assert out["p90_s"] >= out["p50_s"] and out["fallback_used"] is False


@pytest.mark.parametrize(
    "patch",
    [
        {"origin": {"lat": 91, "lon": 0}},
        {"leg": "teleport"},
        {"request_time_ms": "soon"},
        {"base_eta_s": -5},
        {"context": {"x": {"value": 1.0}}},
        {"destination": None},
    ],
)
def test_invalid_fields_are_400_with_a_message(service: EtaService, patch: dict) -> None:
    """Each invalid field is a 400 whose error message is present."""
    status, body = handle_eta(service, orjson.dumps({**GOOD, **patch}))
    assert status == 400
    assert orjson.loads(body)["error"]


def test_non_json_is_400(service: EtaService) -> None:
    """Undecodable bodies are a 400, not an exception."""
    assert handle_eta(service, b"\xff{")[0] == 400


def test_oversized_body_is_413(service: EtaService) -> None:
    """Bodies beyond the size bound are refused with 413."""
    assert handle_eta(service, b" " * (MAX_BODY_BYTES + 1))[0] == 413


async def test_aiohttp_app_serves_eta_on_loopback(service: EtaService) -> None:
    """The mounted handler answers over real HTTP, including the size bound."""
    async with TestClient(TestServer(make_app(service))) as client:
        resp = await client.post("/eta", data=orjson.dumps(GOOD))
        assert resp.status == 200
        assert (await resp.json())["model_version"] == "v0007"
        big = await client.post("/eta", data=b"x" * (MAX_BODY_BYTES + 10))
        assert big.status == 413


def test_an_antipodal_leg_is_refused_with_a_reason(service: EtaService) -> None:
    """A leg to the other side of the earth is a 400 naming the limit, not a 36-day ETA."""
    body = {**GOOD, "origin": {"lat": 0.0, "lon": 0.0}, "destination": {"lat": 0.0, "lon": 180.0}}
    status, answer = handle_eta(service, orjson.dumps(body))
    out = orjson.loads(answer)
    assert status == 400
    assert out["reason"] == "leg_too_long"
    assert f"{MAX_LEG_DISTANCE_M / 1000:.0f} km" in out["error"]


def test_a_leg_just_beyond_the_maximum_is_refused(service: EtaService) -> None:
    """About 205 km of straight line (1.85 degrees of latitude) is beyond the maximum."""
    body = {**GOOD, "destination": {"lat": 40.75 + 1.85, "lon": -73.99}, "base_eta_s": None}
    assert handle_eta(service, orjson.dumps(body))[0] == 400


def test_a_long_leg_within_the_maximum_is_served(service: EtaService) -> None:
    """About 190 km of straight line (1.71 degrees of latitude) is still answered."""
    body = {**GOOD, "destination": {"lat": 40.75 + 1.71, "lon": -73.99}, "base_eta_s": None}
    assert handle_eta(service, orjson.dumps(body))[0] == 200


def test_a_caller_base_does_not_lift_the_distance_limit(service: EtaService) -> None:
    """A long leg is refused even when the caller brings its own base ETA."""
    body = {**GOOD, "origin": {"lat": 0.0, "lon": 0.0}, "destination": {"lat": 0.0, "lon": 180.0}}
    assert handle_eta(service, orjson.dumps({**body, "base_eta_s": 600.0}))[0] == 400
