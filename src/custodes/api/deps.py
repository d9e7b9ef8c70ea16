"""FastAPI dependencies as ``Annotated`` aliases: the service, the caller, the caller's role.

Routes declare what they need (``caller: AccessorCaller``, ``caller: OversightCaller``) and never
parse credentials themselves. Credentials, in the order they are looked for:

- ``Authorization: Bearer cst_...``: an API token from ``custodes token create``;
- ``Authorization: Bearer <JWT>``: an OIDC access token from the configured issuer;
- the ``custodes_session`` cookie of an accessor signed in to the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from custodes.api._service import Service
from custodes.errors import AccessDenied, AuthenticationError, NotFound
from custodes.model import CredentialKind, Principal

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

SESSION_COOKIE = "custodes_session"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated accessor: who, and by which kind of credential."""

    principal: Principal
    via: str  # "token", "oidc" or "session"
    credential_key: str  # what rate limits count against (a digest prefix or the OIDC subject)


def get_service(request: Request) -> Service:
    """Return the service the app was built with."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return value.strip()


def _principal(service: Service, accessor_id: str) -> Principal:
    try:
        return service.vault.principal(accessor_id)
    except (NotFound, AccessDenied) as exc:
        # A token of a removed or deactivated accessor is no credential at all.
        raise AuthenticationError("the credential's accessor is unknown or deactivated") from exc


def authenticate(request: Request, service: ServiceDep) -> Caller:
    """Return the caller the request's credentials prove.

    Raises:
        AuthenticationError: no credentials, or credentials that are unknown, expired, forged
            or of a deactivated accessor (HTTP 401).
    """
    token = _bearer(request)
    if token is not None:
        if token.startswith("cst_"):
            found = service.credentials.check(CredentialKind.API_TOKEN, token)
            if found is None:
                raise AuthenticationError("unknown or expired API token")
            principal = _principal(service, found.principal)
            return Caller(principal=principal, via="token", credential_key=found.digest.hex()[:16])
        raise AuthenticationError("unrecognized bearer token")
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        found = service.credentials.check(CredentialKind.ACCESSOR_SESSION, session)
        if found is None:
            raise AuthenticationError("the sign-in has expired: sign in again")
        principal = _principal(service, found.principal)
        return Caller(principal=principal, via="session", credential_key=found.digest.hex()[:16])
    raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>'")


AccessorCaller = Annotated[Caller, Depends(authenticate)]


def require_oversight(caller: AccessorCaller, service: ServiceDep) -> Caller:
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
