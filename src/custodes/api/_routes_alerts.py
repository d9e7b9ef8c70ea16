"""Misuse alerts for oversight: list them, show one with its evidence, acknowledge one.

Every route is for the policy's oversight roles only. An acknowledgement is a ledger entry by
the auditor naming the alert (the vault writes it); a caller of any other role is refused with
403 before the request body is even read, and that refusal is ledgered too. Alerts carry their
evidence as ledger indexes; ``GET /v1/alerts/{alert_id}`` returns those entries' events.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from custodes.api._schemas import EventOut, Input, Output, errors, json_response
from custodes.api.deps import AccessorCaller, Caller, OversightCaller, ServiceDep
from custodes.detect import Acknowledgement, AlertBook, FiledAlert
from custodes.model import Access, AccessEvent
from custodes.vault import MAX_ALERT_NOTE

__all__ = ["BookDep", "alert_book", "router"]

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

OVERSIGHT_PURPOSE = "oversight"
_book_lock = threading.Lock()

Severity = Literal["critical", "high", "medium", "low"]
AlertId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{24}$", description="The alert's id (24 hex digits).")
]


def alert_book(request: Request, service: ServiceDep) -> AlertBook:
    """Return the app's alert book (one per app, made on first use)."""
    state = request.app.state
    book: AlertBook | None = getattr(state, "alert_book", None)
    if book is None:
        with _book_lock:
            book = getattr(state, "alert_book", None)
            if book is None:
                book = state.alert_book = AlertBook(vault=service.vault)
    return book


BookDep = Annotated[AlertBook, Depends(alert_book)]


class AcknowledgementOut(Output):
    """A ledgered acknowledgement: its ledger index, its author and the author's note."""

    alert_id: str
    seq: int = Field(description="The acknowledgement's index in the ledger.")
    accessor: str
    org: str
    role: str
    at: datetime
    note: str | None = Field(description="The auditor's note (null if it failed to open).")


class AlertOut(Output):
    """A misuse alert: whom it is about, how grave, why, and whether it was acknowledged."""

    alert_id: str
    accessor: str
    kind: str = Field(description="The strongest finding's kind.")
    kinds: list[str] = Field(description="Every finding's kind, strongest first.")
    severity: Severity
    score: float
    first_ts: datetime
    last_ts: datetime
    raised_at: datetime | None
    explanation: str
    evidence: list[int] = Field(description="Ledger indexes of the events that show it.")
    live: bool = Field(description="Raised by streaming detection as it happened.")
    acknowledged: bool
    acknowledgements: list[AcknowledgementOut]


class AlertsOut(Output):
    """Alerts, gravest first, newest first within a severity."""

    alerts: list[AlertOut]


class AlertEvent(EventOut):
    """One evidence event, as the ledger records it (subject by pseudonym), with its index."""

    seq: int


class AlertDetailOut(AlertOut):
    """An alert with its evidence events (oldest first)."""

    events: list[AlertEvent]


class AcknowledgeIn(Input):
    """Acknowledge an alert: say what was found or done about it."""

    note: str = Field(
        min_length=1,
        max_length=MAX_ALERT_NOTE,
        description="The auditor's note; kept sealed (encrypted) in the ledger entry.",
    )


def _ack_out(ack: Acknowledgement) -> AcknowledgementOut:
    return AcknowledgementOut(
        alert_id=ack.alert_id,
        seq=ack.seq,
        accessor=ack.accessor,
        org=ack.org,
        role=ack.role,
        at=ack.at,
        note=ack.note,
    )


def _alert_fields(alert: FiledAlert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "accessor": alert.accessor,
        "kind": alert.kind,
        "kinds": list(alert.kinds),
        "severity": alert.severity,
        "score": alert.score,
        "first_ts": alert.first_ts,
        "last_ts": alert.last_ts,
        "raised_at": alert.raised_at,
        "explanation": alert.explanation,
        "evidence": list(alert.evidence),
        "live": alert.live,
        "acknowledged": alert.acknowledged,
        "acknowledgements": [_ack_out(a) for a in alert.acknowledgements],
    }


def _event_out(seq: int, event: AccessEvent) -> AlertEvent:
    return AlertEvent(seq=seq, **AlertEvent.fields_of(event))


def _acknowledger(alert_id: AlertId, caller: AccessorCaller, service: ServiceDep) -> Caller:
    """Return the caller if they may acknowledge alerts.

    Raises:
        AccessDenied: not an oversight role; the vault records the refusal (HTTP 403).
    """
    if caller.principal.role not in service.vault.policy.oversight_roles:
        # The vault checks the role before the note, so this records the refusal and raises.
        access = Access(principal=caller.principal, purpose=OVERSIGHT_PURPOSE)
        service.vault.acknowledge_alert(access, alert_id, "")
    return caller


Acknowledger = Annotated[Caller, Depends(_acknowledger)]


@router.get(
    "",
    response_model=AlertsOut,
    operation_id="list_alerts",
    responses=errors(401, 403, 422, 429, 503),
)
def list_alerts(
    caller: OversightCaller,
    book: BookDep,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    kind: Annotated[
        str | None, Query(max_length=64, description="Only alerts with a finding of this kind.")
    ] = None,
    accessor: Annotated[
        str | None, Query(max_length=64, description="Only alerts about this accessor.")
    ] = None,
    acknowledged: Annotated[
        bool | None, Query(description="Only acknowledged (true) or open (false) alerts.")
    ] = None,
) -> Response:
    """List the alerts, gravest first (oversight roles only)."""
    found = book.alerts(severity=severity, kind=kind, accessor=accessor, acknowledged=acknowledged)
    return json_response(AlertsOut(alerts=[AlertOut(**_alert_fields(a)) for a in found]))


@router.get(
    "/{alert_id}",
    response_model=AlertDetailOut,
    operation_id="show_alert",
    responses=errors(401, 403, 404, 422, 429, 503),
)
def show_alert(alert_id: AlertId, caller: OversightCaller, book: BookDep) -> Response:
    """Show one alert with its evidence events (oversight roles only)."""
    alert = book.alert(alert_id)
    events = [_event_out(seq, event) for seq, event in book.evidence(alert)]
    return json_response(AlertDetailOut(**_alert_fields(alert), events=events))


@router.post(
    "/{alert_id}/ack",
    status_code=201,
    response_model=AcknowledgementOut,
    operation_id="acknowledge_alert",
    responses=errors(401, 403, 404, 413, 422, 429, 503),
)
def acknowledge_alert(
    alert_id: AlertId, body: AcknowledgeIn, caller: Acknowledger, book: BookDep
) -> Response:
    """Acknowledge an alert with a note; the acknowledgement is a ledger entry by the caller
    (oversight roles only; anyone else's attempt is refused and ledgered)."""
    access = Access(principal=caller.principal, purpose=OVERSIGHT_PURPOSE)
    ack = book.acknowledge(access, alert_id, body.note)
    return json_response(_ack_out(ack), status_code=201)
