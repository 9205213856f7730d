"""Mounting JSON `POST` endpoints on the worker's web server with a body-size guard."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: An answer to a request: HTTP status, JSON body and, optionally, headers to add.
Answer = tuple[int, bytes] | tuple[int, bytes, Mapping[str, str]]


def mount_json_post(
    app: Any,
    path: str,
    max_body_bytes: int,
    answer: Callable[[bytes], Answer | Awaitable[Answer]],
    refuse: Callable[[], Answer | None] | None = None,
) -> None:
    """Serve `POST path` with `answer(body)` (a function or a coroutine function).

    `refuse()`, when given and not None, answers first (e.g. 503 while a dependency is not
    running); a body announced larger than `max_body_bytes` gets 413 without being read.
    """
    import faust

    class JsonPostView(faust.web.View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            refused = None if refuse is None else refuse()
            length = request.content_length
            result: Answer
            if refused is not None:
                result = refused
            elif length is not None and length > max_body_bytes:
                result = 413, b'{"error":"body larger than %d bytes"}' % max_body_bytes
            else:
                pending = answer(await request.read())
                result = await pending if inspect.isawaitable(pending) else pending
            headers = dict(result[2]) if len(result) > 2 else None
            return self.bytes(
                result[1], content_type="application/json", status=result[0], headers=headers
            )

    app.page(path, name=f"post{path.replace('/', '_')}")(JsonPostView)
