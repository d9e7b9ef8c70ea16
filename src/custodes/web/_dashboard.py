"""The auditor dashboard: alerts by severity with their evidence, acknowledgements, charts of
access across the ledger, and each accessor's timeline.

Routes (outside the OpenAPI document)::

    GET  /dashboard/login                  sign-in page
    POST /dashboard/login                  an oversight accessor's API token -> a session
    POST /dashboard/logout                 end the session
    GET  /dashboard                        alerts (filterable), charts, canary touches
    GET  /dashboard/alerts/{alert_id}      one alert: all its evidence, its acknowledgements
    POST /dashboard/alerts/{alert_id}/ack  acknowledge it (a ledger entry by the auditor)
    GET  /dashboard/accessors/{accessor}   an accessor's timeline and alerts

A sign-in is an accessor session (``custodes_session`` cookie: HttpOnly, SameSite=Strict,
Path=/, Secure over https), issued only for a token whose accessor holds an oversight role of the
policy. Without a live session a page redirects to the sign-in; a session whose accessor is no
longer in an oversight role gets a 403 page. Every POST must come from this site.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from custodes.api._routes_alerts import OVERSIGHT_PURPOSE, BookDep
from custodes.api._service import Service
from custodes.api.deps import SESSION_COOKIE, ServiceDep
from custodes.detect import SEVERITIES, AlertBook, FiledAlert
from custodes.errors import AccessDenied, InputError, NotFound, StoreError
from custodes.model import Access, AccessEvent, CredentialKind, Principal
from custodes.vault import MAX_ALERT_NOTE
from custodes.web._dashboard_activity import Activity, ActivityCounter
from custodes.web._dashboard_charts import Chart, stacked_bars
from custodes.web._pages import page

__all__ = ["activity_counter", "dashboard_router"]

_ALERT_ID = re.compile(r"[0-9a-f]{24}")
_CARD_EVIDENCE = 12  # evidence events shown inline on the overview, per alert
_TIMELINE = 2000  # newest events on an accessor's page
_TOUCH_ROWS = 50
_counter_lock = threading.Lock()
_DECISION_COLORS = {"allowed": "#59a14f", "denied": "#e15759"}


def activity_counter(request: Request, service: Service) -> ActivityCounter:
    """Return the app's activity counter (one per app, made on first use)."""
    state = request.app.state
    counter: ActivityCounter | None = getattr(state, "activity_counter", None)
    if counter is None:
        with _counter_lock:
            counter = getattr(state, "activity_counter", None)
            if counter is None:
                counter = state.activity_counter = ActivityCounter(vault=service.vault)
    return counter


# --- sessions and origins ---------------------------------------------------------------------


def _signed_in(request: Request, service: Service) -> Principal | None:
    """The accessor a live dashboard session belongs to, or ``None``."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    found = service.credentials.check(CredentialKind.ACCESSOR_SESSION, secret)
    if found is None:
        return None
    try:
        return service.vault.principal(found.principal)
    except (NotFound, AccessDenied):  # removed or deactivated since signing in
        return None


def _auditor(request: Request, service: Service) -> Principal | Response:
    """The signed-in oversight accessor, or the response to send instead (sign-in, 403)."""
    principal = _signed_in(request, service)
    if principal is None:
        return RedirectResponse("/dashboard/login", status_code=303)
    if principal.role not in service.vault.policy.oversight_roles:
        return _denied(request, service, principal)
    return principal


def _denied(request: Request, service: Service, principal: Principal) -> Response:
    context = {"who": principal, "roles": sorted(service.vault.policy.oversight_roles)}
    return page(request, "dashboard_denied.html", context, status=403)


def _same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this site: its ``Origin`` header (browsers send one
    on every POST), else its ``Referer``, must name this host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "").lower()
    if not source or source == "null" or not host:
        return False
    # The host only: behind a TLS-terminating proxy the app itself may see http.
    return urlsplit(source).netloc.lower() == host


def _login_page(request: Request, error: str | None, status: int) -> Response:
    return page(request, "dashboard_login.html", {"error": error}, status=status)


def _sign_in(request: Request, service: Service, token: str) -> Response:
    token = token.strip()
    found = service.credentials.check(CredentialKind.API_TOKEN, token) if token else None
    if found is None:
        return _login_page(request, "That token is unknown, expired or revoked.", 401)
    try:
        principal = service.vault.principal(found.principal)
    except (NotFound, AccessDenied):
        return _login_page(request, "That token's accessor is unknown or deactivated.", 401)
    roles = service.vault.policy.oversight_roles
    if principal.role not in roles:
        message = (
            f"{principal.accessor} has the role '{principal.role}', which is not an oversight "
            f"role ({', '.join(sorted(roles)) or 'none configured'}): the dashboard is for "
            "oversight only."
        )
        return _login_page(request, message, 403)
    ttl = timedelta(minutes=service.settings.api.session_minutes)
    secret = service.credentials.issue(CredentialKind.ACCESSOR_SESSION, principal.accessor, ttl)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=service.settings.api.session_minutes * 60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


# --- the pages' data --------------------------------------------------------------------------


class _View:
    """Turns events and alerts into what the templates show (times in the policy's zone)."""

    def __init__(self, service: Service, counter: ActivityCounter) -> None:
        self.zone = ZoneInfo(service.vault.policy.timezone)
        self.canaries = counter.canaries

    def when(self, event: AccessEvent) -> str:
        return event.ts.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def row(self, seq: int, event: AccessEvent, evidence: frozenset[int] = frozenset()) -> Any:
        return {
            "seq": seq,
            "when": self.when(event),
            "accessor": event.accessor,
            "org": event.org,
            "role": event.role,
            "action": event.action,
            "collection": event.collection or "",
            "fields": ", ".join(event.fields),
            "subject": event.subject,
            "canary": event.subject is not None and event.subject in self.canaries,
            "purpose": event.purpose or "",
            "case": event.case or "",
            "allowed": event.decision == "allow",
            "reason": event.reason,
            "count": event.count,
            "break_glass": event.break_glass,
            "evidence": seq in evidence,
        }

    def card(self, book: AlertBook, alert: FiledAlert, limit: int | None) -> Any:
        events = book.evidence(alert, limit=limit)
        return {
            "alert": alert,
            "raised": alert.raised_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
            if alert.raised_at
            else "",
            "span": f"{alert.first_ts.astimezone(self.zone):%Y-%m-%d} to "
            f"{alert.last_ts.astimezone(self.zone):%Y-%m-%d}",
            "rows": [self.row(seq, event) for seq, event in events],
            "acks": [
                {"ack": ack, "when": ack.at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")}
                for ack in alert.acknowledgements
            ],
        }


def _filters(query: dict[str, str]) -> dict[str, str]:
    severity = query.get("severity", "")
    status = query.get("status", "")
    return {
        "severity": severity if severity in SEVERITIES else "",
        "kind": query.get("kind", "")[:64],
        "status": status if status in ("open", "acknowledged") else "",
    }


def _overview(
    service: Service, book: AlertBook, counter: ActivityCounter, query: dict[str, str]
) -> dict[str, Any]:
    view = _View(service, counter)
    chosen = _filters(query)
    acknowledged = {"open": False, "acknowledged": True}.get(chosen["status"])
    problem = None
    try:
        every = book.alerts()
        shown = book.alerts(
            severity=chosen["severity"] or None,
            kind=chosen["kind"] or None,
            acknowledged=acknowledged,
        )
    except StoreError as exc:  # a damaged alerts file must not hide the rest of the page
        problem, every, shown = exc.diagnostics(), [], []
    groups = [
        (sev, [view.card(book, a, _CARD_EVIDENCE) for a in shown if a.severity == sev])
        for sev in SEVERITIES
    ]
    activity = counter.current()
    return {
        "filters": chosen,
        "problem": problem,
        "kinds": sorted({k for a in every for k in a.kinds}),
        "groups": groups,
        "counts": Counter(a.severity for a in every),
        "open": sum(not a.acknowledged for a in every),
        "total_alerts": len(every),
        "shown": len(shown),
        "activity": activity,
        "charts": _charts(activity.days, activity),
        "touches": [view.row(seq, e) for seq, e in activity.touches[:_TOUCH_ROWS]],
        "zone": service.vault.policy.timezone,
        "max_note": MAX_ALERT_NOTE,
    }


def _charts(days: tuple[date, ...], activity: Activity) -> dict[str, Chart]:
    return {
        "org": stacked_bars(
            label="Record accesses per day by organization", days=days, series=activity.by_org
        ),
        "purpose": stacked_bars(
            label="Record accesses per day by purpose", days=days, series=activity.by_purpose
        ),
        "denials": stacked_bars(
            label="Refused requests per day",
            days=days,
            series={"denied": activity.denials},
            colors={"denied": "#e15759"},
        ),
        "canary": stacked_bars(
            label="Canary touches per day",
            days=days,
            series={"canary touches": activity.canary},
            colors={"canary touches": "#b07aa1"},
        ),
    }


def _accessor_page(
    service: Service, book: AlertBook, counter: ActivityCounter, accessor: str
) -> dict[str, Any] | None:
    store = service.vault.store
    info = store.accessor(accessor)
    events = store.accessor_events(accessor, _TIMELINE)
    if info is None and not events:
        return None
    view = _View(service, counter)
    alerts = book.alerts(accessor=accessor)
    evidence = frozenset(i for a in alerts for i in a.evidence)
    days, series = _per_day(view, events)
    return {
        "accessor": accessor,
        "info": info,
        "alerts": [view.card(book, a, 0) for a in alerts],
        "rows": [view.row(seq, e, evidence) for seq, e in events],
        "capped": len(events) >= _TIMELINE,
        "limit": _TIMELINE,
        "chart": stacked_bars(
            label=f"{accessor}: requests per day", days=days, series=series, colors=_DECISION_COLORS
        ),
        "zone": service.vault.policy.timezone,
    }


def _per_day(
    view: _View, events: list[tuple[int, AccessEvent]]
) -> tuple[tuple[date, ...], dict[str, list[int]]]:
    counts: Counter[tuple[date, str]] = Counter()
    for _, event in events:
        day = event.ts.astimezone(view.zone).date()
        counts[day, "allowed" if event.decision == "allow" else "denied"] += 1
    if not counts:
        return (), {"allowed": [], "denied": []}
    first, last = min(d for d, _ in counts), max(d for d, _ in counts)
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    return days, {k: [counts[d, k] for d in days] for k in ("allowed", "denied")}


def _alert_page(service: Service, book: AlertBook, counter: ActivityCounter, alert_id: str) -> Any:
    view = _View(service, counter)
    return {
        "card": view.card(book, book.alert(alert_id), None),
        "zone": service.vault.policy.timezone,
        "max_note": MAX_ALERT_NOTE,
    }


# --- routes -----------------------------------------------------------------------------------


def dashboard_router() -> APIRouter:
    """Build the dashboard's routes."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, service: ServiceDep) -> Response:
        activity_counter(request, service).warm()  # the first pass runs while they sign in
        principal = _signed_in(request, service)
        if principal is not None and principal.role in service.vault.policy.oversight_roles:
            return RedirectResponse("/dashboard", status_code=303)
        return _login_page(request, None, 200)

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request, service: ServiceDep, token: Annotated[str, Form(max_length=512)] = ""
    ) -> Response:
        if not _same_origin(request):
            return _login_page(request, "Sign in from this site's own page.", 403)
        response = _sign_in(request, service, token)
        if response.status_code == 303:
            activity_counter(request, service).warm()  # if the sign-in page was skipped
        return response

    @router.post("/logout")
    def logout(request: Request, service: ServiceDep) -> Response:
        if not _same_origin(request):
            return _login_page(request, "Sign out from this site's own page.", 403)
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            service.credentials.revoke(CredentialKind.ACCESSOR_SESSION, secret)
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("", response_class=HTMLResponse)
    def overview(request: Request, service: ServiceDep, book: BookDep) -> Response:
        who = _auditor(request, service)
        if not isinstance(who, Principal):
            return who
        counter = activity_counter(request, service)
        context = _overview(service, book, counter, dict(request.query_params))
        return page(request, "dashboard.html", {**context, "auditor": who})

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert(request: Request, service: ServiceDep, book: BookDep, alert_id: str) -> Response:
        who = _auditor(request, service)
        if not isinstance(who, Principal):
            return who
        return _render_alert(request, service, book, who, alert_id, None, 200)

    @router.post("/alerts/{alert_id}/ack", response_class=HTMLResponse)
    def acknowledge(
        request: Request,
        service: ServiceDep,
        book: BookDep,
        alert_id: str,
        note: Annotated[str, Form(max_length=4 * MAX_ALERT_NOTE)] = "",
    ) -> Response:
        if not _same_origin(request):
            return page(request, "dashboard_denied.html", {"origin": True}, status=403)
        who = _signed_in(request, service)
        if who is None:
            return RedirectResponse("/dashboard/login", status_code=303)
        if not _ALERT_ID.fullmatch(alert_id):
            return page(request, "dashboard_missing.html", {"auditor": who}, status=404)
        try:
            # Through the book even for a session that lost its oversight role since signing
            # in: the vault refuses it and the refusal is ledgered.
            book.acknowledge(Access(principal=who, purpose=OVERSIGHT_PURPOSE), alert_id, note)
        except AccessDenied:
            return _denied(request, service, who)
        except InputError as exc:
            return _render_alert(request, service, book, who, alert_id, exc.diagnostics(), 422)
        except NotFound:
            return page(request, "dashboard_missing.html", {"auditor": who}, status=404)
        return RedirectResponse(f"/dashboard/alerts/{alert_id}#acknowledgements", status_code=303)

    @router.get("/accessors/{accessor:path}", response_class=HTMLResponse)
    def accessor(request: Request, service: ServiceDep, book: BookDep, accessor: str) -> Response:
        who = _auditor(request, service)
        if not isinstance(who, Principal):
            return who
        counter = activity_counter(request, service)
        context = _accessor_page(service, book, counter, accessor[:200])
        if context is None:
            return page(request, "dashboard_missing.html", {"auditor": who}, status=404)
        return page(request, "dashboard_accessor.html", {**context, "auditor": who})

    return router


def _render_alert(
    request: Request,
    service: Service,
    book: AlertBook,
    who: Principal,
    alert_id: str,
    error: str | None,
    status: int,
) -> Response:
    if not _ALERT_ID.fullmatch(alert_id):
        return page(request, "dashboard_missing.html", {"auditor": who}, status=404)
    counter = activity_counter(request, service)
    try:
        context = _alert_page(service, book, counter, alert_id)
    except NotFound:
        return page(request, "dashboard_missing.html", {"auditor": who}, status=404)
    context.update(auditor=who, error=error)
    return page(request, "dashboard_alert.html", context, status=status)
