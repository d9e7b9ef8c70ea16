"""The ledger: public checkpoints, consistency proofs and witness cosignatures; entries with
inclusion proofs for the accessor who made them (or oversight).

Checkpoints, consistency proofs and cosignatures reveal no personal data (entries name subjects
by keyed pseudonym, and these routes return only hashes and signed notes), so anyone may fetch
them to check that the log only ever grows. Hashes and roots are base64, as in the signed
notes. Clients must verify what they get: the signatures, not this service, are the evidence.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Path, Query, Response

from custodes.api._schemas import EventOut, Output, errors, json_response
from custodes.api._service import Service
from custodes.api.deps import AccessorCaller, ServiceDep
from custodes.errors import AccessDenied, InputError, NotFound
from custodes.ledger import HASH_SIZE, SignedCheckpoint
from custodes.model import AccessEvent

__all__ = ["router"]

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

_MAX_NOTE_BYTES = 64 * 1024  # a cosigned note is a few hundred bytes


class CheckpointOut(Output):
    """A signed checkpoint of the log (C2SP tlog-checkpoint) and the key that signed it."""

    origin: str
    size: int
    root: str
    signed_at: datetime
    note: str
    vkey: str


class ConsistencyOut(Output):
    """An RFC 9162 consistency proof: the tree of ``old`` entries is a prefix of ``new``."""

    old: int
    new: int
    proof: list[str]


class CosignatureOut(Output):
    """A witness's latest cosigned note (the log's note plus the witness's line)."""

    witness: str
    note: str


class CosignaturesOut(Output):
    """Published cosignatures and the witness keys this log's checkpoints are checked with."""

    log_vkey: str
    witnesses: list[str]
    cosignatures: list[CosignatureOut]


class EntryOut(Output):
    """One ledger entry, its exact bytes, and the proof that it is in a signed tree."""

    seq: int
    entry: str
    leaf_hash: str
    event: EventOut
    size: int
    proof: list[str]
    checkpoint: CheckpointOut | None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_all(items: Sequence[bytes]) -> list[str]:
    return [_b64(item) for item in items]


def _checkpoint(service: Service, signed: SignedCheckpoint) -> CheckpointOut:
    return CheckpointOut(
        origin=signed.checkpoint.origin,
        size=signed.checkpoint.size,
        root=_b64(signed.checkpoint.root),
        signed_at=signed.signed_at,
        note=signed.note,
        vkey=service.checkpoints.vkey,
    )


@router.get(
    "/checkpoint",
    response_model=CheckpointOut,
    operation_id="ledger_checkpoint",
    responses=errors(404),
)
def latest_checkpoint(service: ServiceDep) -> Response:
    """Return the latest signed checkpoint (public)."""
    latest = service.checkpoints.latest()
    if latest is None:
        raise NotFound("no checkpoint has been signed yet")
    return json_response(_checkpoint(service, latest))


@router.get(
    "/consistency",
    response_model=ConsistencyOut,
    operation_id="ledger_consistency",
    responses=errors(422),
)
def consistency(
    service: ServiceDep,
    old: Annotated[int, Query(ge=1, le=2**62, description="The older tree size.")],
    new: Annotated[int, Query(ge=1, le=2**62, description="The newer tree size.")],
) -> Response:
    """Prove that the log of ``old`` entries is a prefix of the log of ``new`` (public)."""
    if old > new:
        raise InputError(f"old ({old}) must not be larger than new ({new})")
    proof = service.vault.ledger.consistency_proof(old, new)
    return json_response(ConsistencyOut(old=old, new=new, proof=_b64_all(proof)))


@router.get(
    "/cosignatures",
    response_model=CosignaturesOut,
    operation_id="ledger_cosignatures",
)
def cosignatures(service: ServiceDep) -> Response:
    """Return the witnesses' published cosigned notes and the configured witness keys
    (public); clients check each cosignature against the keys they trust."""
    body = CosignaturesOut(
        log_vkey=service.checkpoints.vkey,
        witnesses=list(service.settings.witnesses),
        cosignatures=_published(service),
    )
    return json_response(body)


def _published(service: Service) -> list[CosignatureOut]:
    directory = service.settings.ledger_dir / "cosignatures"
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if name.startswith("."):  # an atomic write's temporary file
            continue
        try:
            with (directory / name).open("rb") as handle:
                data = handle.read(_MAX_NOTE_BYTES + 1)
            note = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if len(data) <= _MAX_NOTE_BYTES:
            found.append(CosignatureOut(witness=unquote(name), note=note))
    return found


@router.get(
    "/entries/{seq}",
    response_model=EntryOut,
    operation_id="ledger_entry",
    responses=errors(401, 403, 404, 422, 429),
)
def ledger_entry(
    seq: Annotated[int, Path(ge=0, le=2**62, description="The entry's index in the log.")],
    caller: AccessorCaller,
    service: ServiceDep,
    size: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description="Prove inclusion in the tree of this size (default: the latest "
            "checkpoint, signed now if it does not cover the entry yet).",
        ),
    ] = None,
) -> Response:
    """Return a ledger entry and its inclusion proof, to the accessor it records or to an
    oversight role."""
    ledger = service.vault.ledger
    event = _event(service, seq, ledger.size())
    principal = caller.principal
    if event.accessor != principal.accessor and (
        principal.role not in service.vault.policy.oversight_roles
    ):
        raise AccessDenied(
            "a ledger entry is shown to the accessor it records or to an oversight role",
            ("entry.accessor",),
        )
    checkpoint = None
    if size is None:
        latest = service.checkpoints.latest()
        if latest is None or latest.checkpoint.size <= seq:
            latest = service.checkpoints.sign(ledger, service.clock())
        checkpoint, size = _checkpoint(service, latest), latest.checkpoint.size
    elif size <= seq:
        raise InputError(f"entry {seq} is not in a tree of size {size}")
    entry, hashes = _row(service, seq)
    body = EntryOut(
        seq=seq,
        entry=_b64(entry),
        leaf_hash=_b64(hashes[:HASH_SIZE]),
        event=_event_out(event),
        size=size,
        proof=_b64_all(ledger.inclusion_proof(seq, size)),
        checkpoint=checkpoint,
    )
    return json_response(body)


def _event(service: Service, seq: int, ledger_size: int) -> AccessEvent:
    if seq >= ledger_size:
        raise NotFound(f"no ledger entry {seq} (the log has {ledger_size} entries)")
    for _, event in service.vault.store.events(seq, seq + 1):
        return event
    raise NotFound(f"no ledger entry {seq}")


def _row(service: Service, seq: int) -> tuple[bytes, bytes]:
    for _, entry, hashes in service.vault.store.ledger_rows(seq, seq + 1):
        return entry, hashes
    raise NotFound(f"no ledger entry {seq}")


def _event_out(event: AccessEvent) -> EventOut:
    return EventOut(**EventOut.fields_of(event))
