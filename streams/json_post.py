"""Mounting JSON `POST` endpoints on the worker's web server with a body-size guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: An answer to a request: HTTP status and JSON body.
Answer = tuple[int, bytes]


def mount_json_post(
    app: Any,
    path: str,
    max_body_bytes: int,
    answer: Callable[[bytes], Answer],
    refuse: Callable[[], Answer | None] | None = None,
) -> None:
    """Serve `POST path` with `answer(body)`.

    `refuse()`, when given and not None, answers first (e.g. 503 while a dependency is not
    running); a body announced larger than `max_body_bytes` gets 413 without being read.
    """
    import faust

    class JsonPostView(faust.web.View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            refused = None if refuse is None else refuse()
            length = request.content_length
            if refused is not None:
                status, payload = refused
            elif length is not None and length > max_body_bytes:
                status, payload = 413, b'{"error":"body larger than %d bytes"}' % max_body_bytes
            else:
                status, payload = answer(await request.read())
            return self.bytes(payload, content_type="application/json", status=status)

    app.page(path, name=f"post{path.replace('/', '_')}")(JsonPostView)
