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
  (ask the worker that does);
- 503 with `{"error", "reason"}` and `Retry-After` when the worker sheds the request (see
  `streams.rank_service`).

This module reads a request (`route_rank`) and writes the answer to a job (`rank_job`); where and
when the ranking runs is `streams.rank_service`'s and `streams.rank_pool`'s business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from contracts.geo import shard_of
from contracts.partitioning import partition_for_key
from dispatch.live.eta import LegPredictor
from dispatch.live.rank_view import RankView, rank_in_view
from dispatch.ranking import RankedCourier

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


def error_answer(status: int, message: str, **extra: Any) -> tuple[int, bytes]:
    """An error answer: `status` and `{"error": message, **extra}`."""
    return status, orjson.dumps({"error": message, **extra})


@dataclass(frozen=True)
class RankJob:
    """A request this worker answers: what was asked, its shard, and the time it is ranked at.

    Attributes:
        request: the validated request.
        shard: the shard of its pickup point (one this worker owns).
        now_ms: the request time (epoch ms): the request's own, or the worker's clock.
    """

    request: RankRequest
    shard: str
    now_ms: int


def route_rank(
    raw: bytes,
    *,
    shard_precision: int,
    shard_partitions: int,
    owned_partitions: Collection[int],
    clock_ms: Callable[[], int],
) -> RankJob | tuple[int, bytes]:
    """The job in the request body `raw`, or the answer refusing it (400, 413 or 421)."""
    try:
        request = parse_rank_request(raw)
    except BadRankRequest as exc:
        status = 413 if str(exc).startswith("body larger") else 400
        return error_answer(status, str(exc))
    shard = shard_of(request.pickup[0], request.pickup[1], shard_precision)
    partition = partition_for_key(shard.encode(), shard_partitions)
    if partition not in owned_partitions:
        return error_answer(
            421,
            "this worker does not own the shard of the pickup point",
            shard=shard,
            partition=partition,
        )
    now_ms = request.request_time_ms if request.request_time_ms is not None else clock_ms()
    return RankJob(request, shard, now_ms)


def rank_job(job: RankJob, view: RankView | None, predictor: LegPredictor) -> bytes:
    """The 200 body answering `job` from its shard's `view` (no couriers without one)."""
    if view is None:
        return answer_body(job, ())
    request = job.request
    ranked = rank_in_view(
        view,
        predictor,
        request.pickup,
        request.dropoff,
        job.now_ms,
        request.k,
        ready_ts_ms=request.ready_ts_ms,
        promise_ts_ms=request.promise_ts_ms,
    )
    return answer_body(job, ranked)


def answer_body(job: RankJob, ranked: Sequence[RankedCourier]) -> bytes:
    """The 200 body answering `job` with `ranked`, cheapest first."""
    body = {
        "shard": job.shard,
        "request_time_ms": job.now_ms,
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
    return orjson.dumps(body)
