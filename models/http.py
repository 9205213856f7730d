"""`POST /eta`: a pure request handler (bytes in → status and JSON bytes out) and an aiohttp app.

Request (JSON object, at most `MAX_BODY_BYTES`)::

    {"origin": {"lat": 40.75, "lon": -73.99}, "destination": {"lat": 40.76, "lon": -73.97},
     "request_time_ms": 1700000000000, "leg": "pickup" | "dropoff" | "ride",
     "base_eta_s": 420.0,                      # optional: straight-line base when absent
     "context": {"zone_speed_mps": {"value": 6.1, "ts_ms": 1699999990000}}}   # optional

Response 200::

    {"p50_s": ..., "p90_s": ..., "base_eta_s": ..., "fallback_used": false,
     "fallback_reason": null, "model_version": "v0003"}

Errors are 4xx with `{"error": "<message>"}`: 400 malformed or invalid input, 413 body too
large. A leg whose origin and destination are more than `MAX_LEG_DISTANCE_M` (200 km) apart in a
straight line is no delivery leg: it is refused with 400 and `"reason": "leg_too_long"` (an
answer for it, even the base ETA, would be a made-up number), whether or not the caller sends
its own base. A model failure is never an error: it is a 200 with `fallback_used: true`. Answers
carry a `Server-Timing: eta;dur=<ms>` header with the handler's own time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from models.legs import Leg
from models.service import EtaService, LegBatch
from models.single import haversine_m_scalar

MAX_BODY_BYTES = 8 * 1024
#: Longest straight-line leg served (metres): five times a metro-area shard's long side; a
#: delivery or ride leg beyond it is not something this service predicts.
MAX_LEG_DISTANCE_M = 200_000.0
#: `reason` of a refused leg that is longer than `MAX_LEG_DISTANCE_M`.
LEG_TOO_LONG = "leg_too_long"
MAX_CONTEXT_ITEMS = 32
#: Request times further than this from the newest sane epoch are rejected (year 2286).
_MAX_TS_MS = 10**13
_MAX_BASE_ETA_S = 86_400.0
_LEGS = {leg.name.lower(): leg for leg in Leg}


class RequestError(ValueError):
    """A request that cannot be served.

    Attributes:
        status: the HTTP status to answer with.
        reason: a machine-readable reason code for the answer's `reason` field, if any.
    """

    def __init__(self, message: str, status: int = 400, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _error(status: int, message: str, reason: str | None = None) -> tuple[int, bytes]:
    body: dict[str, str] = {"error": message}
    if reason is not None:
        body["reason"] = reason
    return status, orjson.dumps(body)


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise RequestError(f"{where}{key} must be a finite number")
    return float(v)


def _point(req: dict[str, Any], key: str) -> tuple[float, float]:
    p = req.get(key)
    if not isinstance(p, dict):
        raise RequestError(f"{key} must be an object with lat and lon")
    lat = _number(p, "lat", f"{key}.")
    lon = _number(p, "lon", f"{key}.")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise RequestError(f"{key} coordinates out of range")
    return lat, lon


@dataclass(frozen=True)
class EtaRequest:
    """A validated `POST /eta` body: one leg, its fields those of `models.service.LegBatch`.

    Each is a scalar here (`context`: feature name → (value, ts_ms)); `base_eta_s` is the
    caller's base ETA, or None for the service's straight-line base.
    """

    origin_lat: float
    origin_lon: float
    dest_lat: float
    dest_lon: float
    request_ts_ms: int
    leg: int
    base_eta_s: float | None
    context: dict[str, tuple[float, int]]

    def to_batch(self) -> LegBatch:
        """The same request as a one-leg batch (for the vectorized API)."""
        return LegBatch(
            origin_lat=np.array([self.origin_lat]),
            origin_lon=np.array([self.origin_lon]),
            dest_lat=np.array([self.dest_lat]),
            dest_lon=np.array([self.dest_lon]),
            request_ts_ms=np.array([self.request_ts_ms], dtype=np.int64),
            leg=np.array([self.leg], dtype=np.int64),
            base_eta_s=None if self.base_eta_s is None else np.array([self.base_eta_s]),
            context={
                k: (np.array([v]), np.array([t], dtype=np.int64))
                for k, (v, t) in self.context.items()
            },
        )


def parse_eta_fields(body: bytes, max_body_bytes: int = MAX_BODY_BYTES) -> EtaRequest:
    """Validate a request body.

    Raises:
        RequestError: with the HTTP status (400 or 413) and a message naming the field; a leg
            longer than `MAX_LEG_DISTANCE_M` with `reason` `leg_too_long`.
    """
    if len(body) > max_body_bytes:
        raise RequestError(f"body larger than {max_body_bytes} bytes", status=413)
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(req, dict):
        raise RequestError("body must be a JSON object")
    olat, olon = _point(req, "origin")
    dlat, dlon = _point(req, "destination")
    distance_m = haversine_m_scalar(olat, olon, dlat, dlon)
    if distance_m > MAX_LEG_DISTANCE_M:
        msg = (
            f"origin and destination are {distance_m / 1000:.0f} km apart; legs longer than "
            f"{MAX_LEG_DISTANCE_M / 1000:.0f} km (straight line) are not served"
        )
        raise RequestError(msg, reason=LEG_TOO_LONG)
    ts = req.get("request_time_ms")
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < _MAX_TS_MS:
        raise RequestError("request_time_ms must be an integer epoch-millisecond time")
    leg_name = req.get("leg")
    if not isinstance(leg_name, str):
        raise RequestError("leg must be one of pickup, dropoff, ride")
    leg = _LEGS.get(leg_name)
    if leg is None:
        try:
            leg = Leg.parse(leg_name)
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
    base: float | None = None
    if req.get("base_eta_s") is not None:
        base = _number(req, "base_eta_s", "")
        if not 0.0 <= base <= _MAX_BASE_ETA_S:
            raise RequestError(f"base_eta_s must be in [0, {_MAX_BASE_ETA_S:.0f}]")
    ctx_in = req.get("context", {})
    if ctx_in is None:
        ctx_in = {}
    if not isinstance(ctx_in, dict) or len(ctx_in) > MAX_CONTEXT_ITEMS:
        raise RequestError(f"context must be an object with at most {MAX_CONTEXT_ITEMS} items")
    context: dict[str, tuple[float, int]] = {}
    for name, item in ctx_in.items():
        if not isinstance(item, dict):
            raise RequestError(f"context.{name} must be an object with value and ts_ms")
        value = _number(item, "value", f"context.{name}.")
        item_ts = item.get("ts_ms")
        if not isinstance(item_ts, int) or isinstance(item_ts, bool) or item_ts < 0:
            raise RequestError(f"context.{name}.ts_ms must be a non-negative integer")
        context[str(name)] = (value, item_ts)
    return EtaRequest(olat, olon, dlat, dlon, ts, int(leg), base, context)


def parse_eta_request(body: bytes, max_body_bytes: int = MAX_BODY_BYTES) -> LegBatch:
    """Validate a request body and turn it into a one-leg batch.

    Raises:
        RequestError: with the HTTP status (400 or 413) and a message naming the field.
    """
    return parse_eta_fields(body, max_body_bytes).to_batch()


def handle_eta(
    service: EtaService, body: bytes, max_body_bytes: int = MAX_BODY_BYTES
) -> tuple[int, bytes]:
    """Answer one `POST /eta` body: (HTTP status, JSON response bytes). Never raises."""
    try:
        req = parse_eta_fields(body, max_body_bytes)
    except RequestError as exc:
        return _error(exc.status, str(exc), exc.reason)
    result = service.predict_one(
        req.origin_lat,
        req.origin_lon,
        req.dest_lat,
        req.dest_lon,
        req.request_ts_ms,
        req.leg,
        req.base_eta_s,
        req.context,
    )
    return 200, orjson.dumps(
        {
            "p50_s": round(result.p50_s, 3),
            "p90_s": round(result.p90_s, 3),
            "base_eta_s": round(result.base_eta_s, 3),
            "fallback_used": result.fallback,
            "fallback_reason": result.reason.wire,
            "model_version": result.model_version,
        }
    )


def make_app(service: EtaService, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """An aiohttp `web.Application` with `POST /eta` mounted.

    The worker can mount `eta_view(service)` on its own app instead.
    """
    from aiohttp import web

    app = web.Application(client_max_size=max_body_bytes + 1)
    app.router.add_post("/eta", eta_view(service, max_body_bytes))
    return app


def eta_view(service: EtaService, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """An aiohttp request handler for `POST /eta` backed by `handle_eta`."""
    from aiohttp import web

    async def view(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body_bytes:
            status, payload = _error(413, f"body larger than {max_body_bytes} bytes")
        else:
            try:
                body = await request.content.read(max_body_bytes + 1)
            except (ValueError, OSError) as exc:
                status, payload = _error(400, f"cannot read body: {exc}")
            else:
                start = time.perf_counter()
                status, payload = handle_eta(service, body, max_body_bytes)
                elapsed_ms = (time.perf_counter() - start) * 1000.0
                return web.Response(
                    status=status,
                    body=payload,
                    content_type="application/json",
                    headers={"Server-Timing": f"eta;dur={elapsed_ms:.3f}"},
                )
        return web.Response(status=status, body=payload, content_type="application/json")

    return view
