"""Run the console: listen, connect to the broker, then read, scrape and serve until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from console.exceptions import ExceptionRules
from console.model import OpsModel
from console.reader import BrokerUnreachable, TopicReader
from console.scraper import WorkerScraper
from console.server import Console, build_app


class StartError(RuntimeError):
    """The console could not start (its message is one line, for the command line)."""


@dataclass(frozen=True)
class OpsOptions:
    """What `dispatchflow ops` runs with.

    Attributes:
        client_kwargs: aiokafka client options.
        host: address to listen on.
        port: port to listen on (0: any free one).
        worker_urls: workers whose `/metrics` and `/readyz` to scrape.
        rules: exception thresholds.
        retention_ms: how long ended orders and offline couriers stay, event time.
        broker_timeout_s: how long to wait for the broker at start.
    """

    client_kwargs: dict[str, Any]
    host: str = "127.0.0.1"
    port: int = 8090
    worker_urls: tuple[str, ...] = ()
    rules: ExceptionRules = field(default_factory=ExceptionRules)
    retention_ms: int = 3 * 3_600_000
    broker_timeout_s: float = 15.0


async def _listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Start listening; return the port. Raises `StartError` if the address is taken."""
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartError(f"cannot listen on {host}:{port}: {reason.lower()}") from None
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    return int(sockets[0].getsockname()[1]) if sockets else port


async def run_console(options: OpsOptions) -> None:
    """Serve until SIGINT or SIGTERM. Raises `StartError` when the port or the broker fails."""
    model = OpsModel(retention_ms=options.retention_ms)
    reader = TopicReader(options.client_kwargs, model)
    scraper = WorkerScraper(options.worker_urls, lambda: model.clock_ms)
    console = Console(model, reader, scraper, options.rules)
    runner = web.AppRunner(build_app(console), access_log=None)
    await runner.setup()
    try:
        port = await _listen(runner, options.host, options.port)
        try:
            await reader.start(options.broker_timeout_s)
        except BrokerUnreachable as exc:
            raise StartError(str(exc)) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        url = f"http://{options.host}:{port}"
        print(f"ops console at {url} (broker {reader.bootstrap})", flush=True)
        tasks = [asyncio.create_task(reader.run()), asyncio.create_task(scraper.run())]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([tasks[0], stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in (*tasks, stopper):
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks[0] in done:
            tasks[0].result()  # the reader ended by itself: report why
    finally:
        await reader.stop()
        await runner.cleanup()
