"""JSON `POST` endpoints with a body-size guard, on the worker's web server or another.

On the worker's web server an endpoint is a plain aiohttp route on the application Faust serves,
not a Faust view: Faust's view machinery (its per-request sensors and wrappers) costs the
stream's event loop as much per request as a small answer itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: An answer to a request: HTTP status, JSON body and, optionally, headers to add.
Answer = tuple[int, bytes] | tuple[int, bytes, Mapping[str, str]]


def json_post_handler(
    max_body_bytes: int,
    answer: Callable[[bytes], Answer | Awaitable[Answer]],
    refuse: Callable[[], Answer | None] | None = None,
) -> Callable[[Any], Awaitable[Any]]:
    """An aiohttp handler answering a `POST` with `answer(body)` (plain or coroutine).

    `refuse()`, when given and not None, answers first (e.g. 503 while a dependency is not
    running); a body announced larger than `max_body_bytes` gets 413 without being read.
    """
    from aiohttp import web

    too_large = b'{"error":"body larger than %d bytes"}' % max_body_bytes

    async def post(request: web.Request) -> web.Response:
        refused = None if refuse is None else refuse()
        length = request.content_length
        result: Answer
        if refused is not None:
            result = refused
        elif length is not None and length > max_body_bytes:
            result = 413, too_large
        else:
            pending = answer(await request.read())
            result = await pending if inspect.isawaitable(pending) else pending
        return web.Response(
            body=result[1],
            status=result[0],
            content_type="application/json",
            headers=result[2] if len(result) > 2 else None,
        )

    return post


def mount_json_post(
    app: Any,
    path: str,
    max_body_bytes: int,
    answer: Callable[[bytes], Answer | Awaitable[Answer]],
    refuse: Callable[[], Answer | None] | None = None,
) -> None:
    """Serve `POST path` on `app`'s web server (see `json_post_handler`).

    Call before the web server starts.
    """
    post = json_post_handler(max_body_bytes, answer, refuse)
    app.web.web_app.router.add_post(path, post, name=f"post{path.replace('/', '_')}")
