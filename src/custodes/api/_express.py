"""The express lane: well-formed requests to the lean record routes skip the framework's stack.

A request to ``POST /v1/records/{collection}/get`` passes, on its way in and again with every
message of its answer, through about fifteen layers of FastAPI and Starlette: error and
telemetry middleware, FastAPI's body limit, custodes' metrics and body limit, the exception
middleware, the exit-stack middleware, the router and the included router (which matches the
path twice), the route and its request/response wrappers. Skipping them took an audited read
from ~670 to ~470 µs of server CPU over loopback (~40 µs in process; docs/benchmarks.md, HTTP,
2026-12-07, evening). This middleware, the
outermost of custodes' own, answers the requests the lean path (``custodes.api._lean``) would
answer anyway, directly:

- the route is one of the given lean routes and matches in full (path and method), and its
  path parameters match the name pattern;
- the body's declared ``Content-Length`` is within the body limit, and the content type is JSON;
- the body parses and validates against the route's model.

It then does what the skipped layers would have done for such a request: it authenticates the
caller through the same dependency function (rate limits included), calls the endpoint, turns an
exception into a response with the app's own exception handlers (the one error shape), counts
the request in the app's metrics under the route template, and sends the answer. Any other
request, including one whose body turns out malformed, goes down the full stack unchanged (the
body it already read is handed on), so every refusal (413, 415, 422, 401, 405...) is the one
FastAPI and custodes' middleware give. Unexpected exceptions are re-raised to Starlette's
server-error middleware (outside this one), which answers 500 in the one shape as before.

``tests/api/test_lean_route.py`` sends every request both ways (this lane and the lean path on,
then both off) and compares status, headers, body, ledger and metrics.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.api import _lean
from custodes.api._lean import Lean, LeanRoute, is_json
from custodes.api._limits import content_length
from custodes.api._metrics import Metrics

__all__ = ["ExpressLane"]

_Handler = Callable[[Request, Exception], Any]


class ExpressLane:
    """ASGI middleware answering well-formed requests of ``routes`` (lean routes) directly.

    ``handlers`` is the app's exception handler mapping (``app.exception_handlers``), read per
    request; ``max_bytes`` the body limit of :class:`~custodes.api._limits.BodyLimit`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[BaseRoute],
        metrics: Metrics,
        max_bytes: int,
        handlers: Mapping[Any, _Handler],
    ) -> None:
        self.app = app
        self.routes = [
            (r, r.lean) for r in routes if isinstance(r, LeanRoute) and r.lean is not None
        ]
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _lean.enabled:
            await self.app(scope, receive, send)
            return
        matched = self._match(scope)
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, lean, child = matched
        if not self._plain_json(scope) or not lean.paths_ok(child["path_params"]):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        raw, pending = await _read_body(receive)
        replay = _replaying(raw, pending, receive)
        arguments = lean.arguments(child["path_params"], raw) if pending is None else None
        if arguments is None:
            await self.app(scope, replay, send)
            return
        scope.update(child)
        request = Request(scope, replay)
        try:
            response = await lean.answer(request, arguments)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:  # unexpected: the server-error middleware answers (500)
                self.metrics.observe("POST", route.path, 500, time.perf_counter() - start)
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, replay, send)
        self.metrics.observe("POST", route.path, response.status_code, time.perf_counter() - start)

    def _match(self, scope: Scope) -> tuple[LeanRoute, Lean, Scope] | None:
        for route, lean in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return route, lean, child
        return None

    def _plain_json(self, scope: Scope) -> bool:
        """A declared length within the limit and a JSON content type (else: the full stack)."""
        length = content_length(scope)
        if length is None or not 0 <= length <= self.max_bytes:
            return False
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        return is_json(content_type.decode("latin-1"))

    def _handler(self, exc: Exception) -> _Handler | None:
        """The app's handler for ``exc``, as Starlette's exception middleware finds it (the
        handler of ``Exception`` belongs to the server-error middleware: None)."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            found = self.handlers.get(cls)
            if found is not None:
                return found
        return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message] | None]:
    """Read the whole request body; return it and, if the client went away before it ended,
    the messages as received instead of None."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replaying(raw: bytes, pending: list[Message] | None, receive: Receive) -> Receive:
    """A ``receive`` that hands on what was read already, then the real one."""
    queue: list[Message] = (
        list(pending)
        if pending is not None
        else [{"type": "http.request", "body": raw, "more_body": False}]
    )

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
