"""Who is calling: API tokens, OIDC bearer JWTs and dashboard sessions, then the rate limit.

The hot path (a known API token) touches no store: the credential and the accessor behind it
come from short-lived in-memory caches, so the check runs on the event loop without a thread
hop. A cache miss reads the store: on the loop with an embedded store (``inline_lookups``, a
read of microseconds), else in the thread pool; every OIDC token is checked in the thread pool
(the issuer's keys may have to be fetched).

Cookie sessions are what a browser sends by itself, so a state-changing request carrying one
must come from this site: its ``Origin`` (or, without one, its ``Referer``) must name the host
the request was sent to. Bearer tokens need no such check: a browser never attaches them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser

from custodes.api._credentials import Credentials
from custodes.api._limits import RateLimiter
from custodes.api._oidc import OidcVerifier
from custodes.clock import Clock
from custodes.config import Settings
from custodes.errors import AccessDenied, AuthenticationError, NotFound
from custodes.model import Credential, CredentialKind, Principal
from custodes.vault import Vault

__all__ = ["SESSION_COOKIE", "Caller", "Guard"]

SESSION_COOKIE = "custodes_session"
CACHE_SECONDS = 2.0  # how stale a cached credential or accessor may be (revocations elsewhere)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PRINCIPALS_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated accessor: who, and by which kind of credential."""

    principal: Principal
    via: str  # "token", "oidc" or "session"
    credential_key: str  # what rate limits count against (a digest prefix or the OIDC subject)


class Guard:
    """Authenticates API callers and applies the per-credential rate limit."""

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        credentials: Credentials,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        inline_lookups: bool = False,
    ) -> None:
        self._vault = vault
        self._inline = inline_lookups
        self._credentials = credentials
        self._monotonic = monotonic
        self._oidc = OidcVerifier.from_settings(settings.api, clock=clock)
        self.rates = RateLimiter(
            rate=settings.api.rate_per_second, burst=settings.api.rate_burst, monotonic=monotonic
        )
        self._principals: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, method: str, headers: Mapping[str, str]) -> Caller:
        """Return the caller the request's credentials prove, after the rate limit.

        Raises:
            AuthenticationError: no credentials, or credentials that are unknown, expired,
                forged or of an unknown or deactivated accessor (HTTP 401).
            AccessDenied: a cookie session on a state-changing request from another site (403).
            HTTPException: 429, the credential's rate limit is exhausted.
        """
        token = _bearer(headers)
        if token is not None:
            caller = await self._bearer_caller(token)
        else:
            # Cookies are parsed only here: a bearer request never pays for it.
            session = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
            if not session:
                raise AuthenticationError(
                    "authentication required: send 'Authorization: Bearer <token>'"
                )
            if method not in _SAFE_METHODS:
                _check_same_origin(headers)
            caller = await self._stored_caller(CredentialKind.ACCESSOR_SESSION, session, "session")
        self.rates.check(caller.credential_key)
        return caller

    async def _bearer_caller(self, token: str) -> Caller:
        if token.startswith("cst_"):
            return await self._stored_caller(CredentialKind.API_TOKEN, token, "token")
        if self._oidc is not None and token.count(".") == 2:
            return await run_in_threadpool(self._oidc_caller, self._oidc, token)
        raise AuthenticationError("unrecognized bearer token")

    async def _stored_caller(self, kind: CredentialKind, secret: str, via: str) -> Caller:
        found = self._credentials.cached(kind, secret)
        if found is not None:
            principal = self._cached_principal(found.principal)
            if principal is not None:
                return Caller(principal, via, found.digest.hex()[:16])
        if self._inline:
            return self._load_stored(kind, secret, via)
        return await run_in_threadpool(self._load_stored, kind, secret, via)

    def _load_stored(self, kind: CredentialKind, secret: str, via: str) -> Caller:
        found: Credential | None = self._credentials.check(kind, secret)
        if found is None:
            if kind is CredentialKind.ACCESSOR_SESSION:
                raise AuthenticationError("the sign-in has expired: sign in again")
            raise AuthenticationError("unknown or expired API token")
        principal = self._cached_principal(found.principal) or self._principal(found.principal)
        return Caller(principal, via, found.digest.hex()[:16])

    def _oidc_caller(self, oidc: OidcVerifier, token: str) -> Caller:
        accessor = oidc.accessor_id(token)
        principal = self._cached_principal(accessor) or self._principal(accessor)
        return Caller(principal, "oidc", "oidc:" + accessor)

    def _cached_principal(self, accessor_id: str) -> Principal | None:
        entry = self._principals.get(accessor_id)
        if entry is None or self._monotonic() - entry[1] >= CACHE_SECONDS:
            return None
        return entry[0]

    def _principal(self, accessor_id: str) -> Principal:
        try:
            principal = self._vault.principal(accessor_id)
        except (NotFound, AccessDenied) as exc:
            # A credential of a removed or deactivated accessor is no credential at all.
            raise AuthenticationError(
                "the credential's accessor is unknown or deactivated"
            ) from exc
        if len(self._principals) >= _PRINCIPALS_MAX:
            self._principals.clear()
        self._principals[accessor_id] = (principal, self._monotonic())
        return principal


def _bearer(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return value.strip()


def _check_same_origin(headers: Mapping[str, str]) -> None:
    host = headers.get("host", "").lower()
    origin = headers.get("origin")
    source = origin if origin is not None else headers.get("referer")
    netloc = urlsplit(source).netloc.lower() if source and source != "null" else ""
    if not host or netloc != host:
        raise AccessDenied(
            "a signed-in browser request that changes something must come from this site "
            "(its Origin or Referer must name this host)",
            ("same_origin",),
        )
