"""The one JSON error shape of the HTTP API, mapped once from the exception tree.

Every error response, whatever raised it, has this body (pinned by ``tests/api``)::

    {"error": {"code": "access_denied", "message": "access denied: ...", "missing": ["case"]}}

``missing`` is present (possibly empty) only for ``access_denied``; ``detail`` (a list) only for
``invalid_request`` raised by request validation.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodes.errors import (
    AccessDenied,
    AuditFailure,
    AuthenticationError,
    ConfigError,
    CryptoError,
    CustodesError,
    InputError,
    IntegrityError,
    NotFound,
    StoreError,
    VerificationError,
)

__all__ = ["ErrorBody", "ErrorResponse", "error_response", "install_error_handlers"]

_log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
_STATUS: tuple[tuple[type[CustodesError], int, str], ...] = (
    (AuthenticationError, 401, "unauthenticated"),
    (AccessDenied, 403, "access_denied"),
    (NotFound, 404, "not_found"),
    (InputError, 422, "invalid_request"),
    (IntegrityError, 500, "integrity_error"),
    (AuditFailure, 503, "audit_unavailable"),
    (StoreError, 503, "store_unavailable"),
    (VerificationError, 500, "verification_failed"),
    (CryptoError, 500, "crypto_error"),
    (ConfigError, 500, "misconfigured"),
)
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ErrorBody(BaseModel):
    """What went wrong, for people (``message``) and programs (``code``)."""

    code: str
    message: str
    missing: list[str] | None = None
    detail: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build an error response in the one shape."""
    body = ErrorBody(code=code, message=message, **extra)
    return JSONResponse(
        {"error": body.model_dump(exclude_none=True)}, status_code=status, headers=headers
    )


def _custodes_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CustodesError)  # noqa: S101 - registered for this class only
    status, code = next(
        ((status, code) for cls, status, code in _STATUS if isinstance(exc, cls)),
        (500, "internal_error"),
    )
    if status >= 500:
        _log.error("request failed: %s", exc.diagnostics())
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    missing = list(exc.missing) if isinstance(exc, AccessDenied) else None
    return error_response(status, code, exc.diagnostics(), headers=headers, missing=missing)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    detail = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] or first["loc"]) or "request"
    return error_response(422, "invalid_request", f"{where}: {first['msg']}", detail=detail)


# FastAPI's answer to a body it cannot decode (not UTF-8, say): a malformed request like any
# other, so it gets the same 422 as malformed JSON.
_UNPARSABLE_BODY = "There was an error parsing the body"


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return error_response(422, "invalid_request", "the request body is not UTF-8 JSON")
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    _log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "internal error (logged on the server)")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error, ours, the framework's and unexpected ones, into the one shape."""
    app.add_exception_handler(CustodesError, _custodes_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
