"""Scrape the workers' `/metrics` and `/readyz` every few seconds (only when given worker URLs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import aiohttp
import orjson

from console.worker_metrics import WorkerFigures, figures_from_metrics


class WorkerScraper:
    """Keeps the latest `WorkerFigures` of each worker URL; `run()` until cancelled.

    Args:
        urls: base URLs of the workers (`http://host:port`).
        clock: the console's clock (epoch ms), read at each scrape for the lag.
        every_s: time between two scrapes of every worker.
        timeout_s: time one request may take.
    """

    def __init__(
        self,
        urls: Sequence[str],
        clock: Callable[[], int],
        every_s: float = 5.0,
        timeout_s: float = 3.0,
    ) -> None:
        self.clock = clock
        self.urls = [u.rstrip("/") for u in urls]
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.figures = {u: WorkerFigures(u, "not scraped yet") for u in self.urls}

    def latest(self) -> list[WorkerFigures]:
        """The newest figures of every worker, in the order given."""
        return [self.figures[u] for u in self.urls]

    async def scrape_once(self, http: aiohttp.ClientSession) -> None:
        """Scrape every worker once."""
        for url in self.urls:
            try:
                async with http.get(f"{url}/metrics") as response:
                    text = await response.text()
                    if response.status != 200:
                        raise RuntimeError(f"/metrics answered {response.status}")
                readiness = None
                with contextlib.suppress(aiohttp.ClientError, ValueError):
                    async with http.get(f"{url}/readyz") as response:
                        readiness = orjson.loads(await response.read())
                self.figures[url] = figures_from_metrics(url, text, readiness, self.clock())
            except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError, ValueError) as exc:
                self.figures[url] = WorkerFigures(url, error=str(exc) or type(exc).__name__)

    async def run(self) -> None:
        """Scrape every `every_s` until cancelled."""
        if not self.urls:
            return
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await self.scrape_once(http)
                await asyncio.sleep(self.every_s)
