"""A standalone `POST /eta` server over one model directory (benchmarks and local trials).

Run as `python -m models.serve --model DIR --port N`. The worker mounts the same handler
(`models.http.eta_view`) on its own web server instead.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence
from pathlib import Path

from models.http import make_app
from models.model_files import load_model
from models.registry import ModelRegistry
from models.service import EtaService, LoadedModel, ModelSource, StaticModelSource


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    from aiohttp import web

    parser = argparse.ArgumentParser(prog="python -m models.serve", description=__doc__)
    parser.add_argument("--model", type=Path, help="one model directory (metadata.json inside)")
    parser.add_argument("--registry", type=Path, help="a registry directory (serve its newest)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address")
    parser.add_argument("--port", type=int, default=8080, help="bind port")
    parser.add_argument(
        "--with-noop",
        action="store_true",
        help="also mount POST /noop (answers {} without work): a latency baseline for benchmarks",
    )
    args = parser.parse_args(argv)
    source: ModelSource
    if args.model is not None:
        model = load_model(args.model)
        model.set_threads(1)
        source = StaticModelSource(LoadedModel(model, str(model.metadata.get("version", "local"))))
    elif args.registry is not None:
        registry = ModelRegistry(args.registry)
        registry.refresh()
        source = registry
    else:
        parser.error("give --model or --registry")
    service = EtaService(source)
    service.warm_up()
    gc.collect()
    gc.freeze()
    app = make_app(service)
    if args.with_noop:

        async def noop(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=b"{}", content_type="application/json")

        app.router.add_post("/noop", noop)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
