"""The transparency portal: data subjects see, and check, every access to their records.

Routes (outside the OpenAPI document)::

    GET  /portal/login         sign-in page (public)
    POST /portal/login         redeem a one-time code from ``custodes portal-code``
    POST /portal/login/oidc    an OIDC ID token posted by the identity provider (form_post)
    POST /portal/logout        end the session
    GET  /portal               the subject's entries, newest first, filterable, with a chart
    GET  /portal/entry/{seq}   one entry with its raw bytes and inclusion proof
    GET  /portal/proofs?seqs=  proof bundle (JSON) for the subject's own entries

A sign-in is a subject session (``custodes_portal`` cookie: HttpOnly, SameSite=Strict,
Path=/portal, Secure over https) whose principal is the subject's ledger pseudonym; every page
shows only entries about that pseudonym, and any other entry is answered exactly as an absent
one. ID numbers never appear in URLs. POSTs must come from this origin (the OIDC callback also
from the issuer's), and wrong codes are throttled per client address.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from custodes.api._credentials import Credentials
from custodes.api._oidc import OidcVerifier
from custodes.api._service import Service
from custodes.api.deps import ServiceDep
from custodes.clock import Clock, system_clock
from custodes.errors import AuthenticationError, InputError
from custodes.model import AccessEvent, CredentialKind
from custodes.vault import Vault
from custodes.web import _portal_view as view
from custodes.web._pages import page
from custodes.web._proofs import MAX_SEQS, MAX_SUBJECT_EVENTS, key_fingerprint, proof_bundle

__all__ = ["PORTAL_COOKIE", "LoginThrottle", "issue_portal_code", "portal_router"]

PORTAL_COOKIE = "custodes_portal"
_MAX_ROWS = 1000  # rows on one page (newest first); the filters narrow the rest
_BAD_CODE = "That code is not valid. A code works once and only for a few minutes."
_THROTTLED = "Too many attempts from your address. Wait a few minutes, then try again."
_FOREIGN = "Use this site's own pages to sign in or out."


class LoginThrottle:
    """Counts failed sign-ins per client address; after ``limit`` failures within ``window``
    the address is refused until the oldest failure ages out (memory bounded by ``max_keys``)."""

    def __init__(
        self, *, limit: int = 10, window: timedelta = timedelta(minutes=10), max_keys: int = 10_000
    ) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str, now: datetime) -> bool:
        """Whether ``key`` has used up its failures."""
        with self._lock:
            recent = self._recent(key, now)
            return recent is not None and len(recent) >= self._limit

    def fail(self, key: str, now: datetime) -> None:
        """Count one failure of ``key``."""
        with self._lock:
            recent = self._recent(key, now)
            if recent is None:
                if len(self._failures) >= self._max_keys:
                    self._failures.pop(next(iter(self._failures)))  # the oldest key
                recent = self._failures[key] = deque()
            recent.append(now)

    def _recent(self, key: str, now: datetime) -> deque[datetime] | None:
        recent = self._failures.get(key)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if recent is not None and not recent:
            del self._failures[key]
            return None
        return recent


# --- sessions and origins ---------------------------------------------------------------------


def _subject(request: Request, service: Service) -> str | None:
    """The signed-in subject's pseudonym, or ``None`` without a live subject session.

    Raises:
        HTTPException: 429, the session has used up its rate limit (``api.rate_per_second``).
    """
    secret = request.cookies.get(PORTAL_COOKIE)
    if not secret:
        return None
    found = service.credentials.check(CredentialKind.SUBJECT_SESSION, secret)
    if found is None:
        return None
    service.guard.rates.check(f"portal:{found.digest.hex()[:16]}")
    return found.principal


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _same_origin(request: Request, *, also: str | None = None) -> bool:
    """Whether a POST comes from a page of this site (or of ``also``): its ``Origin`` header,
    else its ``Referer``, must name this host. Browsers send ``Origin`` on every POST."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    # Compare the host only: behind a TLS-terminating proxy the app may see http itself.
    host = request.headers.get("host", "").lower()
    if urlsplit(source).netloc.lower() == host and host:
        return True
    return also is not None and _origin_of(source) == _origin_of(also)


def _new_session(service: Service, pseudonym: str) -> str:
    """Issue a subject session; return the secret to set as the cookie."""
    ttl = timedelta(minutes=service.settings.api.session_minutes)
    return service.credentials.issue(CredentialKind.SUBJECT_SESSION, pseudonym, ttl)


def _set_session(response: Response, request: Request, service: Service, secret: str) -> None:
    response.set_cookie(
        PORTAL_COOKIE,
        secret,
        max_age=service.settings.api.session_minutes * 60,
        path="/portal",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _to_login() -> RedirectResponse:
    return RedirectResponse("/portal/login", status_code=303)


def _login_page(request: Request, service: Service, error: str | None, status: int) -> Response:
    context = {
        "error": error,
        "code_minutes": service.settings.api.portal_code_minutes,
        "oidc": service.settings.api.oidc_issuer is not None,
    }
    return page(request, "portal_login.html", context, status=status)


# --- the pages' data --------------------------------------------------------------------------


def _entries_context(service: Service, pseudonym: str, query: dict[str, str]) -> dict[str, Any]:
    events = _events(service, pseudonym)
    filters = view.Filters.parse(query)
    shown = [(seq, e) for seq, e in events if filters.matches(e)]
    return {
        "pseudonym": pseudonym,
        "filters": filters,
        "options": view.options(events),
        "labels": view.ACTION_LABELS,
        "rows": [view.row(seq, e) for seq, e in shown[:_MAX_ROWS]],
        "total": len(events),
        "matching": len(shown),
        "truncated": len(shown) > _MAX_ROWS,
        "capped": len(events) >= MAX_SUBJECT_EVENTS,
        "chart": view.timeline(shown),
        "log_vkey": service.checkpoints.vkey,
        "log_fingerprint": key_fingerprint(service.checkpoints.vkey),
    }


def _events(service: Service, pseudonym: str) -> list[tuple[int, AccessEvent]]:
    return service.vault.store.subject_events(pseudonym, MAX_SUBJECT_EVENTS)


def _parse_seqs(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p]
    if (
        not parts
        or len(parts) > MAX_SEQS
        or not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts)
    ):
        raise InputError(f"seqs must be 1 to {MAX_SEQS} comma-separated entry positions")
    return [int(p) for p in parts]


# --- routes -----------------------------------------------------------------------------------


def portal_router() -> APIRouter:
    """Build the portal's routes (each app gets its own sign-in throttle)."""
    pages = _PortalPages()
    router = APIRouter(prefix="/portal", include_in_schema=False)
    router.add_api_route("/login", pages.login_form, methods=["GET"])
    router.add_api_route("/login", pages.login, methods=["POST"])
    router.add_api_route("/login/oidc", pages.login_oidc, methods=["POST"])
    router.add_api_route("/logout", pages.logout, methods=["POST"])
    router.add_api_route("", pages.entries, methods=["GET"])
    router.add_api_route("/entry/{seq}", pages.entry, methods=["GET"])
    router.add_api_route("/proofs", pages.proofs, methods=["GET"])
    return router


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class _PortalPages:
    """The portal's route handlers, with the state one app keeps: the sign-in throttle and
    the OIDC verifier."""

    def __init__(self) -> None:
        self._throttle = LoginThrottle()
        self._oidc = _OidcSubjects()

    def login_form(self, request: Request, service: ServiceDep) -> Response:
        if _subject(request, service) is not None:
            return RedirectResponse("/portal", status_code=303)
        return _login_page(request, service, None, 200)

    def login(
        self, request: Request, service: ServiceDep, code: Annotated[str, Form(max_length=64)] = ""
    ) -> Response:
        if not _same_origin(request):
            return _login_page(request, service, _FOREIGN, 403)
        now = service.clock()
        if self._throttle.blocked(_client(request), now):
            return _login_page(request, service, _THROTTLED, 429)
        found = service.credentials.redeem_code(code) if code.strip() else None
        if found is None:
            self._throttle.fail(_client(request), now)
            return _login_page(request, service, _BAD_CODE, 401)
        response = RedirectResponse("/portal", status_code=303)
        _set_session(response, request, service, _new_session(service, found.principal))
        return response

    def login_oidc(
        self,
        request: Request,
        service: ServiceDep,
        id_token: Annotated[str, Form(max_length=16384)] = "",
    ) -> Response:
        issuer = service.settings.api.oidc_issuer
        if issuer is None:
            return _login_page(request, service, "Sign-in through OIDC is not configured.", 404)
        if not _same_origin(request, also=issuer):
            return _login_page(request, service, _FOREIGN, 403)
        if self._throttle.blocked(_client(request), service.clock()):
            return _login_page(request, service, _THROTTLED, 429)
        try:
            pseudonym = self._oidc.pseudonym(service, id_token)
        except (AuthenticationError, InputError):
            self._throttle.fail(_client(request), service.clock())
            return _login_page(request, service, "The identity provider's sign-in failed.", 401)
        # The POST came from the identity provider's site, so a redirect now would be a
        # cross-site navigation that drops the SameSite=Strict cookie: continue from our page.
        response = page(request, "portal_continue.html", {}, headers={"Refresh": "0; url=/portal"})
        _set_session(response, request, service, _new_session(service, pseudonym))
        return response

    def logout(self, request: Request, service: ServiceDep) -> Response:
        if not _same_origin(request):
            return _login_page(request, service, _FOREIGN, 403)
        secret = request.cookies.get(PORTAL_COOKIE)
        if secret:
            service.credentials.revoke(CredentialKind.SUBJECT_SESSION, secret)
        response = _to_login()
        response.delete_cookie(PORTAL_COOKIE, path="/portal", httponly=True, samesite="strict")
        return response

    def entries(self, request: Request, service: ServiceDep) -> Response:
        pseudonym = _subject(request, service)
        if pseudonym is None:
            return _to_login()
        context = _entries_context(service, pseudonym, dict(request.query_params))
        return page(request, "portal.html", context)

    def entry(self, request: Request, service: ServiceDep, seq: int) -> Response:
        pseudonym = _subject(request, service)
        if pseudonym is None:
            return _to_login()
        found = [(s, e) for s, e in _events(service, pseudonym) if s == seq]
        if not found:
            return page(request, "portal_missing.html", {"pseudonym": pseudonym}, status=404)
        context = {
            "row": view.row(*found[0]),
            "pseudonym": pseudonym,
            "log_vkey": service.checkpoints.vkey,
            "log_fingerprint": key_fingerprint(service.checkpoints.vkey),
        }
        return page(request, "portal_entry.html", context)

    def proofs(
        self,
        request: Request,
        service: ServiceDep,
        seqs: Annotated[str, Query(max_length=5000)] = "",
    ) -> JSONResponse:
        """The proof bundle for the signed-in subject's entries ``seqs``.

        Raises:
            AuthenticationError: no live portal session (401).
            InputError: malformed ``seqs`` (422).
            NotFound: a position that is not one of the subject's entries (404).
        """
        pseudonym = _subject(request, service)
        if pseudonym is None:
            raise AuthenticationError("sign in to the portal first")
        bundle = proof_bundle(
            store=service.vault.store,
            ledger=service.vault.ledger,
            checkpoints=service.checkpoints,
            witnesses=service.settings.witnesses,
            ledger_dir=service.settings.ledger_dir,
            subject=pseudonym,
            seqs=_parse_seqs(seqs),
        )
        return JSONResponse(bundle, headers={"Cache-Control": "no-store"})


class _OidcSubjects:
    """Turns ID tokens into subject pseudonyms; the verifier (and its JWKS) is built once."""

    def __init__(self) -> None:
        self._verifier: OidcVerifier | None = None
        self._lock = threading.Lock()

    def pseudonym(self, service: Service, id_token: str) -> str:
        """Verify an ID token; return the pseudonym of the subject its ID-number claim names.

        Raises:
            AuthenticationError: the token does not verify or lacks the claim.
            InputError: the claim is not a valid ID number.
            ConfigError: the issuer's JWKS file is missing or unusable.
        """
        with self._lock:
            if self._verifier is None:
                api = service.settings.api
                # The ID-number claim stands where the API's verifier reads the accessor id.
                subject_api = replace(api, oidc_accessor_claim=api.oidc_subject_claim)
                self._verifier = OidcVerifier.from_settings(subject_api, clock=service.clock)
            verifier = self._verifier
        if verifier is None:
            raise AuthenticationError("OIDC is not configured")
        return service.vault.pseudonym(verifier.accessor_id(id_token))


def issue_portal_code(
    vault: Vault, subject: str, *, minutes: int, clock: Clock = system_clock
) -> tuple[str, datetime]:
    """Issue a one-time portal sign-in code for the subject with ID number ``subject``; return
    the code (shown once; only its digest is stored) and when it expires.

    Raises:
        InputError: ``subject`` is not a valid ID number.
        StoreError: the code could not be stored.
    """
    ttl = timedelta(minutes=minutes)
    credentials = Credentials(store=vault.store, clock=clock)
    code = credentials.issue(CredentialKind.PORTAL_CODE, vault.pseudonym(subject), ttl)
    return code, clock() + ttl
