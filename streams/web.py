"""Worker HTTP views: `/healthz`, `/readyz`, `/metrics`, `/state`, `POST /eta`; the rank server.

`POST /rank` is served on a port of its own by the rank server (`streams.rank_host`), a process
beside the worker; the worker's web server redirects `POST /rank` there (308).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, defaultdict
from typing import Any, cast

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatch.lifecycle import OrderState
from dispatch.live.positions import Position
from streams.eta_model import register_eta_route
from streams.rank_host import RankHost
from streams.rank_publish import ViewPublisher
from streams.runtime import Runtime

logger = logging.getLogger(__name__)

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
        "ranking_ready": rt.health.ranking_ready(),
        "alive": rt.health.alive,
    }
    partitions = sorted(owned_partitions(rt))
    return {"ready": all(checks.values()), "checks": checks, "shard_partitions": partitions}


def owned_partitions(rt: Runtime) -> set[int]:
    """The shard partitions (of `order_events`, and so of every shard-keyed topic) it owns."""
    app = rt.app
    assigned = app.consumer.assignment() if getattr(app, "_consumer", None) is not None else set()
    return {tp.partition for tp in assigned if tp.topic == "order_events"}


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
    """Serve `POST /rank` from a rank server process beside the worker (`streams.rank_host`).

    The worker's own web server answers `POST /rank` with 308 to the rank port, so a caller
    that follows redirects (keeping the method and body, as 308 asks) still gets its answer.
    """
    core = rt.core
    if core is None:
        msg = "the worker core is built before the web views"
        raise RuntimeError(msg)
    settings = rt.settings
    publisher = ViewPublisher(
        shards=core.engine.shards,
        ticks=core.engine.ticks,
        build_view=core.engine.rank_view,
        metrics=rt.metrics,
        max_age_s=settings.rank_view_max_age_s,
    )
    host = RankHost(
        settings,
        rt.topics["order_events"].partitions,
        publisher,
        lambda: owned_partitions(rt),
        rt.metrics,
    )
    rt.health.ranking_ready = lambda: host.ready

    async def moved(request: Any) -> Any:
        from aiohttp import web

        if host.listener is None:
            return web.Response(
                status=503,
                body=b'{"error":"the rank server is not running","reason":"unavailable"}',
                content_type=JSON,
                headers={"Retry-After": str(settings.rank_retry_after_s)},
            )
        location = f"{request.scheme}://{request.url.host or settings.web_host}:{host.port}/rank"
        body = orjson.dumps({"error": f"POST /rank is served at {location}", "port": host.port})
        return web.Response(
            status=308, body=body, content_type=JSON, headers={"Location": location}
        )

    cast(Any, rt.app.web).web_app.router.add_post("/rank", moved, name="post_rank_moved")

    @rt.app.task
    async def serve_ranking() -> None:
        try:
            await host.run()
        except OSError as exc:
            logger.error("cannot serve POST /rank on port %d: %s", settings.rank_port, exc)
            rt.health.agent_crashed("rank_server", exc)

    async def stop_ranking(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await host.close()

    rt.app.on_before_shutdown.connect(cast(Any, stop_ranking))
