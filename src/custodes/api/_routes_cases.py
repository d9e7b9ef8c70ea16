"""Cases: open one naming its subjects, show it, approve it (dual control), close it.

Opening, approving and closing are recorded in the ledger by the vault, refusals included. A
case view names its subjects by ledger pseudonym only; it is shown to members of the case's
organization and to oversight roles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field

from custodes.api._schemas import (
    AccessorId,
    Input,
    Output,
    Purpose,
    SubjectId,
    errors,
    json_response,
)
from custodes.api._service import Service
from custodes.api.deps import AccessorCaller, Caller, ServiceDep
from custodes.errors import AccessDenied
from custodes.model import Access, Case

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["cases"])

CaseId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="The case's id.")
]


class CaseIn(Input):
    """Open a case for a purpose, naming its subjects (by ID number)."""

    purpose: Purpose
    subjects: list[SubjectId] = Field(min_length=1, max_length=1000)
    assigned: list[AccessorId] = Field(
        default_factory=list,
        max_length=100,
        description="Accessors of your organization assigned to the case (default: you).",
    )
    ttl_hours: int | None = Field(
        default=None, ge=1, le=24 * 366, description="Expire the case after this many hours."
    )


class CaseOut(Output):
    """A case's state; subjects are ledger pseudonyms, never ID numbers."""

    case_id: str
    org: str
    purpose: str
    subjects: list[str]
    assigned: list[str]
    opened_by: str
    opened_at: datetime
    expires_at: datetime | None
    approved_by: str | None
    approver_role: str | None
    approved_at: datetime | None
    closed_at: datetime | None
    open: bool


def _view(service: Service, case: Case) -> CaseOut:
    return CaseOut(
        case_id=case.case_id,
        org=case.org,
        purpose=case.purpose,
        subjects=service.vault.case_subjects(case),
        assigned=sorted(case.assigned),
        opened_by=case.opened_by,
        opened_at=case.opened_at,
        expires_at=case.expires_at,
        approved_by=case.approved_by,
        approver_role=case.approver_role,
        approved_at=case.approved_at,
        closed_at=case.closed_at,
        open=case.is_open(service.clock()),
    )


def _no_purpose(caller: Caller) -> Access:
    # Approving and closing act under the case's own purpose (the vault records it).
    return Access(principal=caller.principal, purpose=None)


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseOut,
    operation_id="open_case",
    responses=errors(401, 403, 413, 422, 429, 503),
)
def open_case(body: CaseIn, caller: AccessorCaller, service: ServiceDep) -> Response:
    """Open a case; where policy says so it needs approval before it explains any read."""
    access = Access(principal=caller.principal, purpose=body.purpose)
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    case = service.vault.open_case(access, body.subjects, assigned=body.assigned, ttl=ttl)
    return json_response(_view(service, case), 201)


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    operation_id="show_case",
    responses=errors(401, 403, 404, 429),
)
def show_case(case_id: CaseId, caller: AccessorCaller, service: ServiceDep) -> Response:
    """Show a case to a member of its organization or an oversight role."""
    case = service.vault.case(case_id)
    principal = caller.principal
    if principal.org != case.org and principal.role not in service.vault.policy.oversight_roles:
        raise AccessDenied("the case belongs to another organization", ("org",))
    return json_response(_view(service, case))


@router.post(
    "/cases/{case_id}/approve",
    response_model=CaseOut,
    operation_id="approve_case",
    responses=errors(401, 403, 404, 429, 503),
)
def approve_case(case_id: CaseId, caller: AccessorCaller, service: ServiceDep) -> Response:
    """Approve a case: by someone holding the approving role who did not open it."""
    return json_response(_view(service, service.vault.approve_case(_no_purpose(caller), case_id)))


@router.post(
    "/cases/{case_id}/close",
    response_model=CaseOut,
    operation_id="close_case",
    responses=errors(401, 403, 404, 429, 503),
)
def close_case(case_id: CaseId, caller: AccessorCaller, service: ServiceDep) -> Response:
    """Close a case (its opener, an assignee or its approver); reads under it end."""
    return json_response(_view(service, service.vault.close_case(_no_purpose(caller), case_id)))
