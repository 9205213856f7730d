"""Base ETA from an OSRM-compatible routing service (`GET /route/v1/{profile}/{coords}`).

Responses are cached by origin/destination rounded to `cache_decimals` (5 decimals ≈ 1 m)
for `cache_ttl_s`; each request has its own timeout, and every failure (timeout, HTTP error,
`code != "Ok"`, no route, malformed body) raises `BaseEtaUnavailableError`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp

from models.base_eta import BaseEtaUnavailableError, LatLon


class OsrmRouteProvider:
    """`BaseEtaProvider` backed by an OSRM-compatible `/route` endpoint.

    Args:
        base_url: service root, e.g. `http://osrm:5000`.
        profile: routing profile in the path (`driving`, `bike`, ...).
        timeout_s: per-request timeout (keep it below the caller's budget).
        cache_size: most routes kept.
        cache_ttl_s: how long a cached route is reused.
        cache_decimals: coordinate rounding of the cache key.
        clock: monotonic seconds (injected for tests).
        session: an aiohttp session to reuse (one is created lazily otherwise).
    """

    name = "osrm"

    def __init__(
        self,
        base_url: str,
        profile: str = "driving",
        timeout_s: float = 0.05,
        cache_size: int = 100_000,
        cache_ttl_s: float = 300.0,
        cache_decimals: int = 5,
        clock: Callable[[], float] = time.monotonic,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.cache_ttl_s = cache_ttl_s
        self.cache_decimals = cache_decimals
        self.clock = clock
        self._session = session
        self._own_session = session is None
        self._cache: OrderedDict[tuple[float, float, float, float], tuple[float, float]] = (
            OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    async def close(self) -> None:
        """Close the session this provider created."""
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _key(self, o: LatLon, d: LatLon) -> tuple[float, float, float, float]:
        r = self.cache_decimals
        return (round(o.lat, r), round(o.lon, r), round(d.lat, r), round(d.lon, r))

    async def eta_s(self, origin: LatLon, destination: LatLon, request_ts_ms: int) -> float:
        """Route duration in seconds (see `BaseEtaProvider`)."""
        key = self._key(origin, destination)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[1] <= self.cache_ttl_s:
            self._cache.move_to_end(key)
            self.hits += 1
            return cached[0]
        self.misses += 1
        duration = await self._fetch(origin, destination)
        self._cache[key] = (duration, now)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return duration

    async def _fetch(self, origin: LatLon, destination: LatLon) -> float:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        coords = f"{origin.lon:.6f},{origin.lat:.6f};{destination.lon:.6f},{destination.lat:.6f}"
        url = f"{self.base_url}/route/v1/{self.profile}/{coords}"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._session.get(url, params={"overview": "false"}) as resp:
                    if resp.status != 200:
                        raise BaseEtaUnavailableError(f"routing service answered {resp.status}")
                    body: Any = await resp.json(content_type=None)
        except TimeoutError as exc:
            raise BaseEtaUnavailableError(
                f"routing service timed out after {self.timeout_s}s"
            ) from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise BaseEtaUnavailableError(f"routing service request failed: {exc}") from exc
        try:
            if body.get("code") != "Ok":
                raise BaseEtaUnavailableError(f"routing service code {body.get('code')!r}")
            duration = float(body["routes"][0]["duration"])
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise BaseEtaUnavailableError(f"malformed routing response: {exc}") from exc
        if not math.isfinite(duration) or duration < 0:
            raise BaseEtaUnavailableError(f"invalid route duration {duration}")
        return duration
