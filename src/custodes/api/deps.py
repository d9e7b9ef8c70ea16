"""FastAPI dependencies as ``Annotated`` aliases: the service, the caller, the caller's role.

Routes declare what they need (``caller: AccessorCaller``, ``caller: OversightCaller``) and never
parse credentials themselves. Credentials, in the order they are looked for:

- ``Authorization: Bearer cst_...``: an API token from ``custodes token create``;
- ``Authorization: Bearer <JWT>``: an OIDC access token from the configured issuer;
- the ``custodes_session`` cookie of an accessor signed in to the dashboard.

The checks themselves live in :class:`~custodes.api._guard.Guard` (one per app, with its caches
and rate limiter). Every route that depends on :func:`authenticate` is marked in the OpenAPI
document as needing one of the security schemes (see ``custodes.api._openapi``); the schemes
are not dependencies themselves, which would cost every request a few more dependency steps.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from custodes.api._guard import SESSION_COOKIE, Caller
from custodes.api._service import Service
from custodes.errors import AccessDenied

__all__ = [
    "SESSION_COOKIE",
    "AccessorCaller",
    "Caller",
    "OversightCaller",
    "ServiceDep",
    "authenticate",
    "get_service",
    "require_oversight",
]


def get_service(request: Request) -> Service:
    """Return the service the app was built with."""
    service: Service = request.app.state.service
    return service


async def _service(request: Request) -> Service:
    # An async dependency runs on the event loop; a plain one would cost a thread-pool hop.
    return get_service(request)


ServiceDep = Annotated[Service, Depends(_service)]


async def authenticate(request: Request) -> Caller:
    """Return the caller the request's credentials prove (and count it for the rate limit).

    Raises:
        AuthenticationError: no credentials, or credentials that are unknown, expired, forged
            or of a deactivated accessor (HTTP 401).
        AccessDenied: a cookie session on a state-changing cross-site request (HTTP 403).
        HTTPException: 429 when the credential's rate limit is exhausted.
    """
    guard = get_service(request).guard
    return await guard.authenticate(request.method, request.headers)


AccessorCaller = Annotated[Caller, Depends(authenticate)]


async def require_oversight(caller: AccessorCaller, service: ServiceDep) -> Caller:
    """Return the caller if their role is an oversight role of the policy.

    Raises:
        AccessDenied: the caller's role is not an oversight role (HTTP 403).
    """
    roles = service.vault.policy.oversight_roles
    if caller.principal.role not in roles:
        allowed = ", ".join(sorted(roles)) or "none"
        raise AccessDenied(
            f"role '{caller.principal.role}' is not an oversight role (oversight roles: {allowed})",
            ("oversight_role",),
        )
    return caller


OversightCaller = Annotated[Caller, Depends(require_oversight)]
