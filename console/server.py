"""The console's HTTP side: the page, its static assets and the JSON API (aiohttp).

Routes (all `GET`, JSON unless said):

| path | what |
| --- | --- |
| `/` | the page (HTML) |
| `/static/<file>` | its script and style sheet |
| `/api/status` | clock, reader progress (caught up or not), records applied, workers |
| `/api/orders[?state=S]` | known orders with their state (`S`: a state, or `live`) |
| `/api/orders/<order_id>` | one order's decision history with cost terms (404 if unknown) |
| `/api/couriers` | couriers with status, activity, load and position |
| `/api/merchants` | merchants with their orders |
| `/api/map` | what the map draws, projected to metres |
| `/api/exceptions` | ready orders without courier, predicted late, idle far, dead letters |
| `/api/dead_letters` | dead letters by source topic and reason, and the latest |
| `/api/kpis` | per-shard KPIs and scraped worker figures |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from console.exceptions import ExceptionRules, exceptions_view
from console.kpis import kpis_view
from console.model import OpsModel
from console.reader import TopicReader
from console.scraper import WorkerScraper
from console.views import (
    couriers_view,
    dead_letters_view,
    map_view,
    merchants_view,
    order_detail,
    orders_view,
)

STATIC_DIR = Path(__file__).parent / "static"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(payload: Any, status: int = 200) -> web.Response:
    """`payload` as JSON, never cached."""
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@dataclass
class Console:
    """What the handlers read: the model, the reader's progress and the workers' figures."""

    model: OpsModel
    reader: TopicReader
    scraper: WorkerScraper
    rules: ExceptionRules

    async def status(self, _: web.Request) -> web.Response:
        """`/api/status`."""
        return json_response(
            {
                "clock_ts_ms": self.model.clock_ms,
                "reader": await self.reader.status(),
                "applied_by_topic": dict(sorted(self.model.records.items())),
                "workers": [w.url for w in self.scraper.latest()],
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        """`/api/orders`."""
        return json_response(orders_view(self.model, request.query.get("state")))

    async def order(self, request: web.Request) -> web.Response:
        """`/api/orders/<order_id>`."""
        order_id = request.match_info["order_id"]
        detail = order_detail(self.model, order_id)
        if detail is None:
            return json_response({"error": f"no order {order_id!r} known"}, status=404)
        return json_response(detail)

    async def couriers(self, _: web.Request) -> web.Response:
        """`/api/couriers`."""
        return json_response(couriers_view(self.model))

    async def merchants(self, _: web.Request) -> web.Response:
        """`/api/merchants`."""
        return json_response(merchants_view(self.model))

    async def map(self, _: web.Request) -> web.Response:
        """`/api/map`."""
        return json_response(map_view(self.model))

    async def exceptions(self, _: web.Request) -> web.Response:
        """`/api/exceptions`."""
        return json_response(exceptions_view(self.model, self.rules))

    async def dead_letters(self, _: web.Request) -> web.Response:
        """`/api/dead_letters`."""
        return json_response(dead_letters_view(self.model))

    async def kpis(self, _: web.Request) -> web.Response:
        """`/api/kpis`."""
        return json_response(kpis_view(self.model, self.scraper.latest()))


async def _index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


def build_app(console: Console) -> web.Application:
    """The aiohttp application serving the page and the API."""
    app = web.Application()
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR)
    routes: dict[str, Handler] = {
        "/api/status": console.status,
        "/api/orders": console.orders,
        "/api/orders/{order_id}": console.order,
        "/api/couriers": console.couriers,
        "/api/merchants": console.merchants,
        "/api/map": console.map,
        "/api/exceptions": console.exceptions,
        "/api/dead_letters": console.dead_letters,
        "/api/kpis": console.kpis,
    }
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    return app
