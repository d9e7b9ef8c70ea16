"""Field types and error-response declarations shared by the API's routers.

The types carry the constraints the vault would enforce anyway (name syntax, lengths), so that
the OpenAPI document says exactly what a request may hold and generated clients and fuzzers
(schemathesis in the tests) can rely on it. The vault still checks everything itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from custodes.api._errors import ErrorResponse
from custodes.model import AccessEvent

__all__ = [
    "NAME_PATTERN",
    "AccessorId",
    "CaseRef",
    "CollectionName",
    "EventOut",
    "FieldName",
    "Input",
    "Name",
    "Output",
    "Purpose",
    "SubjectId",
    "errors",
    "json_response",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# Printable text without control characters: what accessor and case ids may hold.
_ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,64}$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
CollectionName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="A collection of the vault's schema.")
]
FieldName = Annotated[
    str, StringConstraints(pattern=NAME_PATTERN), Field(description="A field of the collection.")
]
Purpose = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(description="Why: a purpose declared in the policy. Required; recorded in the ledger."),
]
CaseRef = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The case that explains this access, where policy requires one.",
    ),
]
SubjectId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(
        description="The subject's ID number. It travels only in request bodies, never in URLs "
        "(which reach access logs)."
    ),
]
AccessorId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Base of response bodies: exactly the declared fields (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")


_DESCRIPTIONS = {
    401: "No valid credentials (missing, unknown, expired, forged or of a deactivated accessor).",
    403: "Refused: policy denied the access (recorded in the ledger; `missing` names what was "
    "missing), or the caller's role may not use this route.",
    404: "No such record, collection, case or ledger entry.",
    413: "The request body is larger than `api.max_body_bytes`.",
    422: "The request is malformed: a missing or invalid field, an invalid ID number or value.",
    429: "Too many requests with this credential; retry after `Retry-After` seconds.",
    503: "The ledger could not record the access, so nothing was done or returned.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the ``responses=`` declaration of these error statuses, in the one error shape."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        declared[status] = entry
    return declared


def json_response(body: BaseModel, status_code: int = 200) -> Response:
    """Serialize a response model in the route itself.

    FastAPI validates and serializes a plain ``def`` route's return value in a second thread-pool
    hop; a route that returns a ``Response`` skips that. The model was validated when it was
    built, and ``response_model=`` on the route still documents it.
    """
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json")


class EventOut(Output):
    """An access event as the ledger entry records it (subject by pseudonym)."""

    ts: datetime
    accessor: str
    org: str
    role: str
    action: str
    collection: str | None
    fields: list[str]
    subject: str | None
    purpose: str | None
    case: str | None
    decision: str
    reason: str
    count: int
    break_glass: bool

    @classmethod
    def fields_of(cls, event: AccessEvent) -> dict[str, Any]:
        """The model's fields taken from a ledger event (for this model and its subclasses)."""
        return {
            "ts": event.ts,
            "accessor": event.accessor,
            "org": event.org,
            "role": event.role,
            "action": event.action,
            "collection": event.collection,
            "fields": list(event.fields),
            "subject": event.subject,
            "purpose": event.purpose,
            "case": event.case,
            "decision": event.decision,
            "reason": event.reason,
            "count": event.count,
            "break_glass": event.break_glass,
        }
