"""The access log in the interchange format of DESIGN.md §6 (what ``custodes ledger export``
writes and what detectors read).

Four JSON-lines files: ``events.jsonl`` (one line per ledger entry, in ledger order, so a
line's 0-based number is the entry's index), ``accessors.jsonl``, ``cases.jsonl`` and
``subjects.jsonl``. Subjects appear only as their keyed ledger pseudonyms; no file holds an ID
number, a name or a record value. Each file is written under a temporary name and renamed into
place only when complete, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from custodes.errors import InputError
from custodes.ledger._log import LedgerTamperError
from custodes.model import AccessEvent, Accessor, Action, Case

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = [
    "ACTION_NAMES",
    "EXPORT_FILES",
    "ExportSummary",
    "accessor_line",
    "case_line",
    "event_line",
    "export_ledger",
    "subject_line",
]

EXPORT_FILES = ("events.jsonl", "accessors.jsonl", "cases.jsonl", "subjects.jsonl")
"""The files an export writes, in the order it writes them."""

ACTION_NAMES: Mapping[str, str] = {
    Action.GET: "read",
    Action.PUT: "write",
    Action.FIND: "find",
    Action.EXPORT: "export",
    Action.SHRED: "shred",
    Action.CASE_OPEN: "case_open",
    Action.CASE_APPROVE: "case_approve",
    Action.CASE_CLOSE: "case_close",
    Action.ALERT_ACK: "alert_ack",
}
"""The vault's action names mapped to the interchange format's (§6 names record actions only;
case actions and alert acknowledgements keep their ledger names)."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: line counts per file and the ledger size and root it covers."""

    directory: Path
    size: int
    root: bytes
    events: int
    accessors: int
    cases: int
    subjects: int


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def event_line(event: AccessEvent) -> dict[str, Any]:
    """Return the interchange object of one access event (``events.jsonl``)."""
    return {
        "ts": _iso(event.ts),
        "accessor": event.accessor,
        "org": event.org,
        "role": event.role,
        "action": ACTION_NAMES.get(event.action, event.action),
        "collection": event.collection,
        "fields": list(event.fields),
        "subject": event.subject,
        "purpose": event.purpose,
        "case": event.case,
        "decision": event.decision,
        "count": event.count,
        "break_glass": event.break_glass,
    }


def accessor_line(accessor: Accessor) -> dict[str, Any]:
    """Return the interchange object of one accessor (``accessors.jsonl``).

    Tokens stay null until accessors are linked to person records; the vault does not record
    when an accessor started or left, so ``active_from``/``active_to`` are null (``active``
    says whether the accessor is deactivated now).
    """
    return {
        "accessor": accessor.accessor,
        "org": accessor.org,
        "role": accessor.role,
        "surname_token": None,
        "address_token": None,
        "active_from": None,
        "active_to": None,
        "active": accessor.active,
    }


def case_line(case: Case, subjects: list[str]) -> dict[str, Any]:
    """Return the interchange object of one case (``cases.jsonl``); ``subjects`` are the
    pseudonyms of the subjects it names."""
    return {
        "case": case.case_id,
        "org": case.org,
        "subjects": subjects,
        "assigned": sorted(case.assigned),
        "opened": _iso(case.opened_at),
        "approved_by": case.approved_by,
        "closed": _iso(case.closed_at),
        "purpose": case.purpose,
        "expires": _iso(case.expires_at),
    }


def subject_line(pseudonym: str) -> dict[str, Any]:
    """Return the interchange object of one subject (``subjects.jsonl``), known only by its
    pseudonym: tokens, employer, flags and relations are filled by later sources."""
    return {
        "subject": pseudonym,
        "surname_token": None,
        "address_token": None,
        "employer_org": None,
        "protected": False,
        "canary": False,
        "relations": [],
    }


def _dump(handle: IO[str], obj: Mapping[str, Any]) -> None:
    handle.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def _check_targets(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a directory")
    if force:
        return
    existing = [
        name
        for name in EXPORT_FILES
        if (directory / name).exists() or (directory / name).is_symlink()
    ]
    if existing:
        raise InputError(
            f"{directory} already holds {', '.join(existing)}; use --force to replace them"
        )


@contextmanager
def _staged(directory: Path, names: tuple[str, ...]) -> Iterator[dict[str, IO[str]]]:
    """Open a temporary file per name in ``directory``; on success flush them to disk and
    rename each over its final name, on failure remove them all."""
    handles: dict[str, IO[str]] = {}
    temps: dict[str, str] = {}
    try:
        for name in names:
            fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
            temps[name] = temp
            handles[name] = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        yield handles
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for name, temp in temps.items():
            os.replace(temp, directory / name)
    finally:
        for handle in handles.values():
            handle.close()
        for temp in temps.values():
            with suppress(FileNotFoundError):
                os.unlink(temp)


def _write_events(vault: Vault, size: int, handle: IO[str]) -> tuple[list[str], set[str]]:
    """Write events ``0..size-1`` in order; return the case ids (first seen first) and the
    subject pseudonyms they mention.

    Raises:
        LedgerTamperError: an index is missing, so line numbers would no longer be indexes.
    """
    cases: dict[str, None] = {}
    subjects: set[str] = set()
    expected = 0
    for seq, event in vault.store.events(0, size):
        if seq != expected:
            raise LedgerTamperError(
                f"entry {expected}: the event is missing, so the export cannot keep line "
                "numbers equal to ledger indexes (run 'custodes ledger verify')",
                expected,
            )
        _dump(handle, event_line(event))
        if event.case is not None:
            cases[event.case] = None
        if event.subject is not None:
            subjects.add(event.subject)
        expected += 1
    if expected != size:
        raise LedgerTamperError(
            f"entry {expected}: the event is missing (the ledger has {size} entries; run "
            "'custodes ledger verify')",
            expected,
        )
    return list(cases), subjects


def _write_cases(vault: Vault, case_ids: list[str], handle: IO[str], subjects: set[str]) -> int:
    written = 0
    for case_id in case_ids:
        case = vault.store.case(case_id)
        if case is None:  # an access that named a case that does not exist (it was refused)
            continue
        pseudonyms = vault.case_subjects(case)
        subjects.update(pseudonyms)
        _dump(handle, case_line(case, pseudonyms))
        written += 1
    return written


def export_ledger(vault: Vault, directory: Path, *, force: bool = False) -> ExportSummary:
    """Write the vault's access log to ``directory`` in the interchange format.

    The export covers the ledger's first ``size()`` entries at the time of the call (later
    appends are left for the next export); the summary names that size and its root so the
    export can be matched with a checkpoint. ``directory`` is created if needed.

    Raises:
        InputError: an export file already exists (and not ``force``), or ``directory`` is
            not a directory.
        LedgerTamperError: an event is missing from the store.
        StoreError: the store could not be read.
        OSError: the files could not be written (nothing is left half-written).
    """
    _check_targets(directory, force)
    directory.mkdir(parents=True, exist_ok=True)
    ledger = vault.ledger
    size = ledger.size()
    root = ledger.root(size)
    with _staged(directory, EXPORT_FILES) as files:
        case_ids, subjects = _write_events(vault, size, files["events.jsonl"])
        accessors = vault.store.accessors()
        for accessor in accessors:
            _dump(files["accessors.jsonl"], accessor_line(accessor))
        cases = _write_cases(vault, case_ids, files["cases.jsonl"], subjects)
        for pseudonym in sorted(subjects):
            _dump(files["subjects.jsonl"], subject_line(pseudonym))
        _check_targets(directory, force)  # nothing appeared meanwhile that we would replace
    return ExportSummary(
        directory=directory,
        size=size,
        root=root,
        events=size,
        accessors=len(accessors),
        cases=cases,
        subjects=len(subjects),
    )
