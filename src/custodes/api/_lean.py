"""A leaner way through FastAPI for the record routes: well-formed requests skip its generic
request handling, everything else takes it.

FastAPI's handler for a route parses the content type through ``email.message``, builds an
error context, opens telemetry scopes and resolves the route's dependencies through its generic
solver on every request: about 120 µs of CPU per audited read in process, a fifth of it
(docs/benchmarks.md, HTTP, 2026-12-06). :class:`LeanRoute` is FastAPI's documented extension
point (``APIRoute.get_route_handler``) used for routes of one known shape: an ``async``
endpoint whose parameters are the collection path parameter, one request body model, the
authenticated caller and the service. For such a route, a request is answered on the lean
path only if its content type is ``application/json``, its collection name matches the
pattern, and its body parses as JSON and validates against the model; the caller is then
authenticated exactly as the dependency does, and the endpoint called. Any other request, and
every route of another shape, goes through FastAPI's own handler unchanged, so every error (its
status, shape and the order in which checks fail) is FastAPI's. A test compares the two paths
on valid and invalid requests.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from custodes.api._schemas import NAME_PATTERN, CollectionName
from custodes.api.deps import AccessorCaller, ServiceDep, authenticate, get_service

__all__ = ["LeanRoute"]

_JSON = "application/json"
_NAME = re.compile(NAME_PATTERN)
_Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# Off only in the test that compares the lean path with FastAPI's own (read per request).
enabled = True


class _Shape:
    """Which endpoint parameter gets what: path parameters, the body model, caller, service."""

    def __init__(self, endpoint: Callable[..., Any]) -> None:
        self.paths: list[str] = []
        self.body: tuple[str, type[BaseModel]] | None = None
        self.caller: str | None = None
        self.service: str | None = None
        hints = typing.get_type_hints(endpoint, include_extras=True)
        for name in inspect.signature(endpoint).parameters:
            self._take(name, hints.get(name))

    def _take(self, name: str, hint: Any) -> None:
        if hint == AccessorCaller and self.caller is None:
            self.caller = name
        elif hint == ServiceDep and self.service is None:
            self.service = name
        elif hint == CollectionName:
            self.paths.append(name)
        elif isinstance(hint, type) and issubclass(hint, BaseModel) and self.body is None:
            self.body = (name, hint)
        else:
            raise TypeError(f"parameter {name!r} is not of a shape the lean path knows")


class LeanRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` answering well-formed requests on a lean path.

    Routes of any other shape (a ``def`` endpoint, other parameters, extra dependencies) are
    handled by FastAPI alone.
    """

    def get_route_handler(self) -> _Handler:
        full = super().get_route_handler()
        known = {authenticate, _dependency(ServiceDep)}
        if not inspect.iscoroutinefunction(self.endpoint) or any(
            dependency.call not in known for dependency in self.dependant.dependencies
        ):
            return full
        try:
            shape = _Shape(self.endpoint)
        except TypeError:
            return full
        if shape.body is None or shape.caller is None or shape.service is None:
            return full
        endpoint = self.endpoint
        body_name, model = shape.body
        caller_name, service_name, paths = shape.caller, shape.service, tuple(shape.paths)

        async def handler(request: Request) -> Response:
            if not enabled:
                return await full(request)
            content_type = request.headers.get("content-type", "")
            if content_type.partition(";")[0].strip().lower() != _JSON:
                return await full(request)
            values = request.path_params
            if any(_NAME.fullmatch(str(values.get(name, ""))) is None for name in paths):
                return await full(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as exc:  # as FastAPI answers a body it could not read
                raise HTTPException(400, "There was an error parsing the body") from exc
            try:
                body = model.model_validate(json.loads(raw))
            except Exception:  # not JSON, too deep, or invalid: FastAPI answers, in its order
                return await full(request)
            arguments: dict[str, Any] = {name: values[name] for name in paths}
            arguments[body_name] = body
            arguments[caller_name] = await authenticate(request)
            arguments[service_name] = get_service(request)
            response: Response = await endpoint(**arguments)
            return response

        return handler


def _dependency(alias: Any) -> Callable[..., Any]:
    """The function an ``Annotated[..., Depends(f)]`` alias stands for: ``f``."""
    _, depends = typing.get_args(alias)
    dependency: Callable[..., Any] = depends.dependency
    return dependency
