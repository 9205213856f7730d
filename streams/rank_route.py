"""`POST /rank` on the worker: the top-k couriers for one job, from the shard's live state.

Request body (JSON object, at most `MAX_RANK_BODY_BYTES`):

    {"pickup": {"lat": .., "lon": ..}, "dropoff": {"lat": .., "lon": ..},
     "k": 5, "request_time_ms": 1795000000000, "ready_ts_ms": null, "promise_ts_ms": null}

`k` (1..`MAX_K`, default 5) and the three times are optional; `request_time_ms` defaults to the
worker's clock. The job belongs to the shard of its pickup point. Answers:

- 200 `{"shard", "request_time_ms", "couriers": [{"courier_id", "cost", "terms",
  "pickup_ts_ms", "dropoff_ts_ms"}...]}`, cheapest first, with the same cost terms the dispatch
  tick uses;
- 400 with `{"error"}` for a malformed request, 413 for an oversized body;
- 421 with `{"error", "shard", "partition"}` when this worker does not own the shard's partition
  (ask the worker that does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson

from contracts.geo import shard_of
from contracts.partitioning import partition_for_key
from dispatch.engine import RankedCourier
from dispatch.live.engine import ShardEngine

MAX_RANK_BODY_BYTES = 4096
MAX_K = 50
DEFAULT_K = 5


class BadRankRequest(ValueError):
    """A request body that cannot be answered (the message says why)."""


@dataclass(frozen=True)
class RankRequest:
    """A validated `/rank` request."""

    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    k: int
    request_time_ms: int | None
    ready_ts_ms: int | None
    promise_ts_ms: int | None


def _point(body: dict[str, Any], name: str) -> tuple[float, float]:
    point = body.get(name)
    if not isinstance(point, dict):
        msg = f"{name} must be an object with lat and lon"
        raise BadRankRequest(msg)
    lat, lon = point.get("lat"), point.get("lon")
    for axis, value, bound in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{name}.{axis} must be a number"
            raise BadRankRequest(msg)
        if not math.isfinite(value) or abs(value) > bound:
            msg = f"{name}.{axis} out of range: {value}"
            raise BadRankRequest(msg)
    return float(lat), float(lon)  # type: ignore[arg-type]


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be a non-negative integer (epoch ms)"
        raise BadRankRequest(msg)
    return value


def parse_rank_request(raw: bytes) -> RankRequest:
    """The request in `raw`; `BadRankRequest` says what is wrong with it."""
    if len(raw) > MAX_RANK_BODY_BYTES:
        msg = f"body larger than {MAX_RANK_BODY_BYTES} bytes"
        raise BadRankRequest(msg)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not JSON: {exc}"
        raise BadRankRequest(msg) from exc
    if not isinstance(body, dict):
        msg = "body must be a JSON object"
        raise BadRankRequest(msg)
    k = body.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        msg = f"k must be an integer in 1..{MAX_K}"
        raise BadRankRequest(msg)
    return RankRequest(
        pickup=_point(body, "pickup"),
        dropoff=_point(body, "dropoff"),
        k=k,
        request_time_ms=_optional_int(body, "request_time_ms"),
        ready_ts_ms=_optional_int(body, "ready_ts_ms"),
        promise_ts_ms=_optional_int(body, "promise_ts_ms"),
    )


def _error(status: int, message: str, **extra: Any) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": message, **extra})


def handle_rank(
    ranker: ShardEngine,
    raw: bytes,
    *,
    shard_precision: int,
    shard_partitions: int,
    owned_partitions: Collection[int],
    clock_ms: Callable[[], int],
) -> tuple[int, bytes]:
    """(HTTP status, JSON body) answering one `/rank` request body `raw`."""
    try:
        request = parse_rank_request(raw)
    except BadRankRequest as exc:
        status = 413 if str(exc).startswith("body larger") else 400
        return _error(status, str(exc))
    shard = shard_of(request.pickup[0], request.pickup[1], shard_precision)
    partition = partition_for_key(shard.encode(), shard_partitions)
    if partition not in owned_partitions:
        return _error(
            421,
            "this worker does not own the shard of the pickup point",
            shard=shard,
            partition=partition,
        )
    now_ms = request.request_time_ms if request.request_time_ms is not None else clock_ms()
    ranked: tuple[RankedCourier, ...] = ()
    if shard in ranker.shards():
        ranked = ranker.rank(
            shard,
            request.pickup,
            request.dropoff,
            now_ms,
            request.k,
            ready_ts_ms=request.ready_ts_ms,
            promise_ts_ms=request.promise_ts_ms,
        )
    body = {
        "shard": shard,
        "request_time_ms": now_ms,
        "couriers": [
            {
                "courier_id": r.courier_id,
                "cost": r.cost,
                "terms": dict(r.terms),
                "pickup_ts_ms": r.pickup_ts_ms,
                "dropoff_ts_ms": r.dropoff_ts_ms,
            }
            for r in ranked
        ],
    }
    return 200, orjson.dumps(body)
