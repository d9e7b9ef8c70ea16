"""Calling an ASGI app and learning how it answered: what the metrics and the access log share."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["observed"]


async def observed(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, done: Callable[[int, float], None]
) -> None:
    """Run ``app`` on an HTTP request, then call ``done(status, seconds)`` however it ended:
    status 500 if the app raised before it answered (what the server then sends)."""
    start = time.perf_counter()
    status = 500

    async def send_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_status)
    finally:
        done(status, time.perf_counter() - start)
