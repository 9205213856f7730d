import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from models.base_eta import BaseEtaProvider, BaseEtaUnavailableError, LatLon
from models.osrm import OsrmRouteProvider

A = LatLon(40.75, -73.99)
B = LatLon(40.76, -73.97)


class FakeOsrm:
    """A loopback OSRM-compatible server: fixed duration, optional delay or error."""

    def __init__(self) -> None:
        self.requests = 0
        self.delay_s = 0.0
        self.status = 200
        self.body: dict[str, object] = {"code": "Ok", "routes": [{"duration": 321.5}]}

    async def route(self, request: web.Request) -> web.Response:
        self.requests += 1
        assert request.match_info["profile"] == "driving"
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response(self.body, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/route/v1/{profile}/{coords}", self.route)
        return app


@pytest.fixture
async def fake() -> tuple[FakeOsrm, str]:  # type: ignore[misc]
    """A started fake OSRM server and its base URL."""
    osrm = FakeOsrm()
    server = TestServer(osrm.app())
    await server.start_server()
    yield osrm, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_route_duration_is_returned_and_cached(fake: tuple[FakeOsrm, str]) -> None:
    """The duration comes from the service once; the repeat is a cache hit."""
    osrm, url = fake
    provider = OsrmRouteProvider(url, timeout_s=2.0)
    assert isinstance(provider, BaseEtaProvider)
    try:
        assert await provider.eta_s(A, B, 0) == 321.5
        assert await provider.eta_s(A, B, 0) == 321.5
    finally:
        await provider.close()
    assert osrm.requests == 1 and provider.hits == 1


async def test_cache_entry_expires_after_ttl(fake: tuple[FakeOsrm, str]) -> None:
    """After the TTL (injected clock) the route is fetched again."""
    osrm, url = fake
    now = [0.0]
    provider = OsrmRouteProvider(url, timeout_s=2.0, cache_ttl_s=10.0, clock=lambda: now[0])
    try:
        await provider.eta_s(A, B, 0)
        now[0] = 11.0
        await provider.eta_s(A, B, 0)
    finally:
        await provider.close()
    assert osrm.requests == 2


async def test_slow_service_times_out(fake: tuple[FakeOsrm, str]) -> None:
    """A response slower than the timeout raises BaseEtaUnavailableError."""
    osrm, url = fake
    osrm.delay_s = 1.0
    provider = OsrmRouteProvider(url, timeout_s=0.05)
    try:
        with pytest.raises(BaseEtaUnavailableError, match="timed out"):
            await provider.eta_s(A, B, 0)
    finally:
        await provider.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"code": "Ok"}), (200, {"code": "NoRoute"}), (200, {"code": "Ok", "routes": []})],
)
async def test_errors_raise_unavailable(
    fake: tuple[FakeOsrm, str], status: int, body: dict[str, object]
) -> None:
    """HTTP errors, non-Ok codes and empty routes are BaseEtaUnavailableError."""
    osrm, url = fake
    osrm.status, osrm.body = status, body
    provider = OsrmRouteProvider(url, timeout_s=2.0)
    try:
        with pytest.raises(BaseEtaUnavailableError):
            await provider.eta_s(A, B, 0)
    finally:
        await provider.close()
