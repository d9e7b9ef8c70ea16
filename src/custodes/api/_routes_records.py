"""Records: put, get, find, export and shred, each with a purpose (and a case where needed).

The vault is synchronous and thread-safe. Reads and single writes go through
:func:`~custodes.api._calls.vault_call` (on the event loop with SQLite, in the thread pool with
PostgreSQL, where concurrent calls share one ledger commit: the vault's group commit); bulk
routes (export, erasure) are plain ``def`` routes that FastAPI runs in its thread pool. ID
numbers travel only in JSON bodies: a URL ends up in access logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import Field, StrictInt, StrictStr

from custodes.api._calls import vault_call
from custodes.api._lean import LeanRoute
from custodes.api._schemas import (
    CaseRef,
    CollectionName,
    FieldName,
    Input,
    Output,
    Purpose,
    SubjectId,
    errors,
    json_response,
)
from custodes.api._service import Service
from custodes.api.deps import AccessorCaller, Caller, ServiceDep
from custodes.errors import NotFound
from custodes.model import Access
from custodes.schema import Collection
from custodes.vault import Record

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["records"], route_class=LeanRoute)

FieldList = Annotated[
    list[FieldName] | None,
    Field(
        min_length=1,
        max_length=64,
        description="The fields wanted; leave it out to get exactly what the grant allows.",
    ),
]
_RECORD_ERRORS = errors(401, 403, 404, 413, 422, 429, 503)


class PutIn(Input):
    """Store one record about a subject."""

    subject: SubjectId
    values: dict[FieldName, StrictStr | StrictInt] = Field(max_length=64)
    purpose: Purpose
    case: CaseRef = None


class PutOut(Output):
    """The new record's id."""

    record_id: str


class GetIn(Input):
    """Read a subject's records in one collection."""

    subject: SubjectId
    purpose: Purpose
    case: CaseRef = None
    fields: FieldList = None
    break_glass: bool = Field(
        default=False, description="Emergency access where policy permits; always flagged."
    )
    justification: str | None = Field(
        default=None,
        max_length=2000,
        description="Why break-glass access is needed (kept sealed in the ledger).",
    )


class FindIn(Input):
    """Find records by the exact value of an indexed field (no wildcards, no prefixes)."""

    field: FieldName
    value: str = Field(max_length=4096, description="The exact value; patterns are refused.")
    purpose: Purpose
    case: CaseRef = None
    fields: FieldList = None


class ExportIn(Input):
    """Export every record of a collection (a bulk action, recorded per subject)."""

    purpose: Purpose
    case: CaseRef = None
    fields: FieldList = None


class ShredIn(Input):
    """Erase a subject: delete their records and destroy their data key."""

    subject: SubjectId
    purpose: Purpose
    case: CaseRef = None


class RecordOut(Output):
    """A decrypted record: only the fields the access was allowed to see."""

    record_id: str
    collection: str
    created_at: datetime
    values: dict[str, str]


class RecordsOut(Output):
    """The records an access returned."""

    records: list[RecordOut]


class ShredOut(Output):
    """How many records an erasure deleted (the subject's data key is destroyed)."""

    deleted: int


def _collection(service: Service, name: str) -> Collection:
    found = service.vault.schema.collections.get(name)
    if found is None:
        raise NotFound(f"no collection '{name}'")
    return found


def _access(caller: Caller, purpose: str, case: str | None) -> Access:
    return Access(principal=caller.principal, purpose=purpose, case=case)


def _records(found: list[Record]) -> RecordsOut:
    return RecordsOut(
        records=[
            RecordOut(
                record_id=r.record_id,
                collection=r.collection,
                created_at=r.created_at,
                values=r.values,
            )
            for r in found
        ]
    )


@router.post(
    "/records/{collection}",
    status_code=201,
    response_model=PutOut,
    operation_id="put_record",
    responses=_RECORD_ERRORS,
)
async def put_record(
    collection: CollectionName, body: PutIn, caller: AccessorCaller, service: ServiceDep
) -> Response:
    """Store one record about a subject (the write is recorded with its purpose)."""
    coll = _collection(service, collection)
    access = _access(caller, body.purpose, body.case)
    with service.metrics.deciding("put"):
        record_id = await vault_call(
            service,
            caller,
            lambda: service.vault.put(access, coll.name, body.subject, body.values),
        )
    return json_response(PutOut(record_id=record_id), 201)


@router.post(
    "/records/{collection}/get",
    response_model=RecordsOut,
    operation_id="get_records",
    responses=_RECORD_ERRORS,
)
async def get_records(
    collection: CollectionName, body: GetIn, caller: AccessorCaller, service: ServiceDep
) -> Response:
    """Read a subject's records; the access is recorded before anything is returned."""
    coll = _collection(service, collection)
    access = Access(
        principal=caller.principal,
        purpose=body.purpose,
        case=body.case,
        justification=body.justification,
        break_glass=body.break_glass,
    )
    vault = service.vault
    with service.metrics.deciding("get"):
        if service.inline_calls:  # an embedded store: on the loop, commits shared per turn
            found = await vault.get_on_loop(access, coll.name, body.subject, body.fields)
        else:
            found = await vault_call(
                service, caller, lambda: vault.get(access, coll.name, body.subject, body.fields)
            )
    return json_response(_records(found))


@router.post(
    "/records/{collection}/find",
    response_model=RecordsOut,
    operation_id="find_records",
    responses=_RECORD_ERRORS,
)
async def find_records(
    collection: CollectionName, body: FindIn, caller: AccessorCaller, service: ServiceDep
) -> Response:
    """Find records whose indexed field equals a value exactly (at most ``limits.find_cap``).

    An answer of at least ``forensics.fingerprint_min_rows`` records carries a fingerprint for
    its reader, like an export's (docs/forensics.md).
    """
    from custodes.forensics import fingerprint_read  # forensics loads only for bulk reads

    coll = _collection(service, collection)
    access = _access(caller, body.purpose, body.case)
    vault = service.vault

    def find() -> list[Record]:
        found = vault.find(access, coll.name, body.field, body.value, body.fields)
        if len(found) >= vault.settings.fingerprint_min_rows:
            found = fingerprint_read(vault, access, coll.name, found)
        return found

    with service.metrics.deciding("find"):
        found = await vault_call(service, caller, find)
    return json_response(_records(found))


@router.post(
    "/records/{collection}/export",
    response_model=RecordsOut,
    operation_id="export_records",
    responses=_RECORD_ERRORS,
)
def export_records(
    collection: CollectionName, body: ExportIn, caller: AccessorCaller, service: ServiceDep
) -> Response:
    """Export a collection (one ledger entry per subject whose records are returned).

    Every export carries a fingerprint for its recipient (canary rows and a keyed choice of
    spellings, see docs/forensics.md), recorded on the ledger before the rows are returned.
    """
    from custodes.forensics import export_fingerprinted  # forensics loads only for exports

    coll = _collection(service, collection)
    with service.metrics.deciding("export"):
        done = export_fingerprinted(
            service.vault, _access(caller, body.purpose, body.case), coll.name, body.fields
        )
    return json_response(_records(done.records))


@router.post(
    "/subjects/shred",
    response_model=ShredOut,
    operation_id="shred_subject",
    responses=errors(401, 403, 413, 422, 429, 503),
)
def shred_subject(body: ShredIn, caller: AccessorCaller, service: ServiceDep) -> Response:
    """Erase a subject: their records are deleted and their data key destroyed (irreversible)."""
    with service.metrics.deciding("shred"):
        deleted = service.vault.shred(_access(caller, body.purpose, body.case), body.subject)
    return json_response(ShredOut(deleted=deleted))
