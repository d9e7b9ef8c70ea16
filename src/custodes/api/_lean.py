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
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from custodes.api._schemas import NAME_PATTERN, CollectionName
from custodes.api.deps import AccessorCaller, ServiceDep, authenticate, get_service

__all__ = ["Lean", "LeanRoute", "is_json"]

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


class Lean:
    """How one lean-shaped route answers a request: check and parse it, then call the endpoint.

    Shared by :class:`LeanRoute`'s handler and the express lane (``custodes.api._express``).
    """

    def __init__(self, endpoint: Callable[..., Any], shape: _Shape) -> None:
        assert shape.body is not None and shape.caller is not None  # noqa: S101 - see of()
        assert shape.service is not None  # noqa: S101
        self._endpoint = endpoint
        self._body_name, self._model = shape.body
        self._caller, self._service = shape.caller, shape.service
        self._paths = tuple(shape.paths)

    @classmethod
    def of(cls, route: APIRoute) -> Lean | None:
        """The lean way through ``route``, or None if the route is not of the known shape."""
        known = {authenticate, _dependency(ServiceDep)}
        if not inspect.iscoroutinefunction(route.endpoint) or any(
            dependency.call not in known for dependency in route.dependant.dependencies
        ):
            return None
        try:
            shape = _Shape(route.endpoint)
        except TypeError:
            return None
        if shape.body is None or shape.caller is None or shape.service is None:
            return None
        return cls(route.endpoint, shape)

    def paths_ok(self, values: Mapping[str, Any]) -> bool:
        """Whether every path parameter matches the name pattern (checked before the body)."""
        return all(_NAME.fullmatch(str(values.get(name, ""))) is not None for name in self._paths)

    def arguments(self, values: Mapping[str, Any], raw: bytes) -> dict[str, Any] | None:
        """The endpoint's path and body arguments (path parameters already checked with
        :meth:`paths_ok`), or None if FastAPI must answer (a body that is not JSON, too deep,
        or invalid)."""
        try:
            body = self._model.model_validate(json.loads(raw))
        except Exception:  # FastAPI answers, in its order of checks
            return None
        arguments: dict[str, Any] = {name: values[name] for name in self._paths}
        arguments[self._body_name] = body
        return arguments

    async def answer(self, request: Request, arguments: dict[str, Any]) -> Response:
        """Authenticate the caller exactly as the dependency does, then call the endpoint."""
        arguments[self._caller] = await authenticate(request)
        arguments[self._service] = get_service(request)
        response: Response = await self._endpoint(**arguments)
        return response


def is_json(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, any parameters)."""
    return content_type.partition(";")[0].strip().lower() == _JSON


class LeanRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` answering well-formed requests on a lean path.

    Routes of any other shape (a ``def`` endpoint, other parameters, extra dependencies) are
    handled by FastAPI alone; their ``lean`` is None.
    """

    lean: Lean | None = None

    def get_route_handler(self) -> _Handler:
        full = super().get_route_handler()
        lean = self.lean = Lean.of(self)
        if lean is None:
            return full

        async def handler(request: Request) -> Response:
            if not enabled or not is_json(request.headers.get("content-type", "")):
                return await full(request)
            if not lean.paths_ok(request.path_params):
                return await full(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as exc:  # as FastAPI answers a body it could not read
                raise HTTPException(400, "There was an error parsing the body") from exc
            arguments = lean.arguments(request.path_params, raw)
            if arguments is None:
                return await full(request)
            return await lean.answer(request, arguments)

        return handler


def _dependency(alias: Any) -> Callable[..., Any]:
    """The function an ``Annotated[..., Depends(f)]`` alias stands for: ``f``."""
    _, depends = typing.get_args(alias)
    dependency: Callable[..., Any] = depends.dependency
    return dependency
