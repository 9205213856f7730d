"""Worker HTTP views: `/healthz`, `/readyz`, `/metrics`, `/state`; `POST /eta` and `POST /rank`."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatch.lifecycle import OrderState
from dispatch.live.positions import Position
from streams.eta_model import register_eta_route
from streams.json_post import mount_json_post
from streams.rank_route import MAX_RANK_BODY_BYTES, handle_rank
from streams.runtime import Runtime

JSON = "application/json"
#: How long `/progress` waits for the acknowledgements of what was sent before answering.
PROGRESS_WAIT_S = 30.0


def readiness(rt: Runtime) -> dict[str, Any]:
    """Why the worker is or is not ready: tables recovered, not rebalancing, positions rebuilt."""
    app = rt.app
    checks = {
        "started": bool(getattr(app, "started", False)),
        "tables_recovered": bool(app.tables.actives_ready),
        "not_rebalancing": not app.rebalancing,
        "positions_rebuilt": not rt.health.positions_replaying,
        "alive": rt.health.alive,
    }
    assigned = app.consumer.assignment() if getattr(app, "_consumer", None) is not None else set()
    partitions = sorted(tp.partition for tp in assigned if tp.topic == "order_events")
    return {"ready": all(checks.values()), "checks": checks, "shard_partitions": partitions}


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else value


def state_snapshot(rt: Runtime, detail: bool) -> dict[str, Any]:
    """Per-shard summary of the state this worker owns; with `detail`, every record."""
    tables: Any = rt.app.tables
    shards: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"orders_by_status": Counter(), "couriers_by_status": Counter(), "positions": 0}
    )
    orders: dict[str, Any] = {}
    for _, raw in tables["orders"].items():
        order = OrderState.from_json(raw)
        shards[order.shard]["orders_by_status"][order.status.value] += 1
        if detail:
            orders[order.order_id] = order.public_view()
    couriers: dict[str, Any] = {}
    for _, raw in tables["couriers"].items():
        courier = orjson.loads(raw)
        shards[courier["shard"]]["couriers_by_status"][courier["status"]] += 1
        if detail:
            couriers[f"{courier['shard']}|{courier['courier_id']}"] = courier
    directory = {}
    if detail:
        directory = {
            key.decode(): orjson.loads(raw) for key, raw in tables["courier_directory"].items()
        }
    positions: dict[str, Any] = {}
    newest: dict[str, Position] = {}
    store = rt.core.positions if rt.core is not None else ()
    for position in store:
        known = newest.get(position.courier_id)
        if known is None or position.ts_ms > known.ts_ms:
            newest[position.courier_id] = position
    for position in newest.values():
        shards[position.shard]["positions"] += 1
        if detail:
            positions[position.courier_id] = {
                "shard": position.shard,
                "lat": position.lat,
                "lon": position.lon,
                "ts_ms": position.ts_ms,
                "speed_mps": _clean(position.speed_mps),
                "heading_deg": _clean(position.heading_deg),
                "accuracy_m": _clean(position.accuracy_m),
            }
    out: dict[str, Any] = {"shards": {k: shards[k] for k in sorted(shards)}}
    if detail:
        out.update(
            orders=orders, couriers=couriers, courier_directory=directory, positions=positions
        )
    return out


def register(rt: Runtime) -> None:
    """Mount the views on the Faust web server of `rt.app`."""
    app = rt.app

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        crashed = dict(rt.health.crashed_agents)
        if getattr(app, "crash_reason", None) is not None:
            crashed.setdefault("app", repr(app.crash_reason))
        body = {"alive": not crashed, "crashed_agents": crashed}
        return web.bytes(orjson.dumps(body), content_type=JSON, status=200 if not crashed else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        body = readiness(rt)
        return web.bytes(
            orjson.dumps(body), content_type=JSON, status=200 if body["ready"] else 503
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(
            generate_latest(rt.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/progress")
    async def progress(web: Any, request: Any) -> Any:
        # What was handled first, then flush: every record counted has its outputs on the
        # broker, and `produced` covers them all. A worker whose deliveries are still on their
        # way after the wait answers 503: the caller asks again, never reads a partial answer.
        processed = dict(rt.progress)
        await app.producer.flush()
        deadline = time.monotonic() + PROGRESS_WAIT_S
        while rt.sends_in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)  # delivery reports still on their way to `rt.produced`
        if rt.sends_in_flight > 0:
            busy = {"error": f"{rt.sends_in_flight} records still awaiting acknowledgement"}
            return web.bytes(orjson.dumps(busy), content_type=JSON, status=503)
        body: dict[str, dict[str, dict[str, int]]] = {"processed": {}, "produced": {}}
        for name, offsets in (("processed", processed), ("produced", dict(rt.produced))):
            for (topic, partition), offset in sorted(offsets.items()):
                body[name].setdefault(topic, {})[str(partition)] = offset
        return web.bytes(orjson.dumps(body), content_type=JSON)

    @app.page("/state")
    async def state(web: Any, request: Any) -> Any:
        detail = request.query.get("detail", "0") in ("1", "true", "yes")
        body = orjson.dumps(state_snapshot(rt, detail), option=orjson.OPT_SORT_KEYS)
        return web.bytes(body, content_type=JSON)

    register_eta_route(rt)
    register_rank_route(rt)


def register_rank_route(rt: Runtime) -> None:
    """Mount `POST /rank` (see `streams.rank_route`) on the worker's web server."""
    shard_partitions = rt.topics["order_events"].partitions

    def refuse() -> tuple[int, bytes] | None:
        return (503, b'{"error":"dispatch engine not running"}') if rt.core is None else None

    def answer(body: bytes) -> tuple[int, bytes]:
        assert rt.core is not None  # noqa: S101 - `refuse` answers first otherwise
        return handle_rank(
            rt.core.engine,
            body,
            shard_precision=rt.settings.shard_precision,
            shard_partitions=shard_partitions,
            owned_partitions=readiness(rt)["shard_partitions"],
            clock_ms=lambda: time.time_ns() // 1_000_000,
        )

    mount_json_post(rt.app, "/rank", MAX_RANK_BODY_BYTES, answer, refuse)
