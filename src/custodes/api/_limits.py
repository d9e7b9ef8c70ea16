"""Request limits: the body size cap (pure ASGI middleware) and per-credential rate limits.

The body cap runs before any route reads the body: a declared ``Content-Length`` over the cap is
answered with 413 without reading a byte, and a body sent without one (chunked) is counted as it
streams and cut off at the cap. It is plain ASGI rather than ``BaseHTTPMiddleware``, which would
add a task and a memory stream to every request of the hot path.

Rate limits are token buckets keyed by credential (an API token's digest prefix, an OIDC
accessor, a session): each key may make ``rate`` requests per second on average and ``burst``
at once. They are enforced in the authentication dependency, where the credential is known.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.api._errors import error_response

__all__ = ["BodyLimit", "RateLimiter", "content_length"]


class _TooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the cap (mapped to 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        started = False
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            # Only reached when no handler turned it into a response (a route that streams).
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "request_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length`` of a request, or None (absent or not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RateLimiter:
    """Token buckets per key: ``rate`` requests per second on average, ``burst`` at once.

    Thread-safe; ``monotonic`` is the time source (seconds), injectable for tests.
    """

    _PRUNE_AT = 10_000  # keys kept before full (idle) buckets are dropped

    def __init__(
        self, *, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = float(rate)
        self._burst = float(burst)
        self._now = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def retry_after(self, key: str) -> int:
        """Take one request from ``key``'s bucket; return 0 if allowed, else the whole
        seconds to wait before the next request would be."""
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / self._rate))
            if len(self._buckets) >= self._PRUNE_AT and key not in self._buckets:
                self._prune(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0

    def check(self, key: str) -> None:
        """Take one request from ``key``'s bucket.

        Raises:
            HTTPException: 429 with ``Retry-After`` when the bucket is empty.
        """
        wait = self.retry_after(key)
        if wait:
            raise HTTPException(
                429,
                f"too many requests with this credential: retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]
