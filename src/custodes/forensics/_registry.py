"""The forensic registry of a vault home: planted canaries and fingerprinted exports.

Two JSON-lines files under ``<home>/forensics/`` (directory mode 0700, files 0600):

- ``canaries.jsonl``: one line per planted canary subject: its ledger pseudonym, its scope
  (organization, accessor), who planted it, when, and in which collections it has records.
- ``exports.jsonl``: one line per fingerprinted export: export id, recipient, collection,
  fields, row counts, the keyed tokens of its canary rows, the ledger index of its
  ``export_mark`` entry.

Neither holds an ID number, a name or any record value: subjects appear as pseudonyms, canary
values as keyed tokens (keyed BLAKE2b under a key derived from the vault's index key). The
files are the index; the ledger is the proof: every export line's digest is in its
``export_mark`` entry, and :func:`read_exports` keeps only lines that still match it. Writers
take an exclusive ``flock`` on ``.lock`` and replace the file atomically (temporary file,
fsync, rename).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from custodes.errors import InputError
from custodes.ledger._checkpoint import atomic_write

__all__ = [
    "CANARIES_FILE",
    "EXPORTS_FILE",
    "FOLDER",
    "CanaryRow",
    "ExportRecord",
    "PlantedCanary",
    "append_lines",
    "body_digest",
    "planted_canaries",
    "read_lines",
]

FOLDER = "forensics"
CANARIES_FILE = "canaries.jsonl"
EXPORTS_FILE = "exports.jsonl"


@dataclass(frozen=True, slots=True)
class PlantedCanary:
    """A canary subject planted in the vault: a synthetic person no legitimate work reaches.

    ``org`` and ``accessor`` are its scope: the organization or accessor it was planted for
    (e.g. seeded into their systems), so a touch or a leak of it names that source.
    """

    pseudonym: str
    org: str | None
    accessor: str | None
    planted_by: str
    planted_at: datetime
    collections: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The registry line of this canary."""
        return {
            "pseudonym": self.pseudonym,
            "org": self.org,
            "accessor": self.accessor,
            "planted_by": self.planted_by,
            "planted_at": self.planted_at.isoformat(),
            "collections": list(self.collections),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> PlantedCanary:
        """Read a registry line.

        Raises:
            InputError: a key is missing or of the wrong type.
        """
        try:
            return cls(
                pseudonym=str(obj["pseudonym"]),
                org=_opt(obj.get("org")),
                accessor=_opt(obj.get("accessor")),
                planted_by=str(obj["planted_by"]),
                planted_at=datetime.fromisoformat(str(obj["planted_at"])),
                collections=tuple(str(c) for c in obj["collections"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed canary registry line ({exc})") from exc


@dataclass(frozen=True, slots=True)
class CanaryRow:
    """A per-export canary row as registered: the pseudonym of its ID number (if it has one)
    and its anchors, ``(keyed token, weight)`` per distinctive value. A leaked row is this
    canary row when it holds at least two anchors whose weights (the negative base-10
    logarithm of the chance that a real value equals the anchor) add up to ``HIT_WEIGHT``."""

    subject: str | None
    anchors: tuple[tuple[str, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "anchors": [list(a) for a in self.anchors]}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> CanaryRow:
        anchors = tuple((str(token), int(weight)) for token, weight in obj["anchors"])
        return cls(subject=_opt(obj.get("subject")), anchors=anchors)


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """A fingerprinted export as registered (and bound to its ledger entry)."""

    export_id: str
    accessor: str
    org: str
    role: str
    purpose: str | None
    case: str | None
    collection: str
    fields: tuple[str, ...]
    created_at: datetime
    rows: int
    canaries: tuple[CanaryRow, ...]
    carriers: int
    scheme: str
    ledger_index: int

    def body(self) -> dict[str, Any]:
        """The registry line without what the ledger entry itself holds (its index and time):
        what the entry's digest covers."""
        return {
            "v": 1,
            "export": self.export_id,
            "accessor": self.accessor,
            "org": self.org,
            "role": self.role,
            "purpose": self.purpose,
            "case": self.case,
            "collection": self.collection,
            "fields": list(self.fields),
            "rows": self.rows,
            "canaries": [c.as_dict() for c in self.canaries],
            "carriers": self.carriers,
            "scheme": self.scheme,
        }

    def as_dict(self) -> dict[str, Any]:
        """The registry line."""
        return {
            **self.body(),
            "created_at": self.created_at.isoformat(),
            "ledger_index": self.ledger_index,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ExportRecord:
        """Read a registry line.

        Raises:
            InputError: a key is missing or of the wrong type.
        """
        try:
            return cls(
                export_id=str(obj["export"]),
                accessor=str(obj["accessor"]),
                org=str(obj["org"]),
                role=str(obj["role"]),
                purpose=_opt(obj.get("purpose")),
                case=_opt(obj.get("case")),
                collection=str(obj["collection"]),
                fields=tuple(str(f) for f in obj["fields"]),
                created_at=datetime.fromisoformat(str(obj["created_at"])),
                rows=int(obj["rows"]),
                canaries=tuple(CanaryRow.from_dict(c) for c in obj["canaries"]),
                carriers=int(obj["carriers"]),
                scheme=str(obj["scheme"]),
                ledger_index=int(obj["ledger_index"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed export registry line ({exc})") from exc


def body_digest(body: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a registry body in canonical JSON: what the ledger entry holds."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def folder(home: Path) -> Path:
    """The registry folder of a vault home."""
    return home / FOLDER


@contextmanager
def _locked(home: Path) -> Iterator[Path]:
    where = folder(home)
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(where / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # other vault processes register too
        yield where
    finally:
        os.close(fd)


def append_lines(home: Path, name: str, lines: Sequence[Mapping[str, Any]]) -> None:
    """Append JSON objects to a registry file, atomically (all lines or none).

    Raises:
        OSError: the folder cannot be written.
    """
    with _locked(home) as where:
        path = where / name
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        if old and not old.endswith("\n"):
            old += "\n"
        new = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in lines)
        atomic_write(path, old + new, mode=0o600)


def read_lines(home: Path, name: str) -> list[dict[str, Any]]:
    """Return the objects of a registry file (none if it does not exist).

    Raises:
        InputError: the file is unreadable or a line is not a JSON object.
    """
    path = folder(home) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path.name} line {number}: not valid JSON") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path.name} line {number}: not a JSON object")
        out.append(obj)
    return out


def planted_canaries(home: Path) -> list[PlantedCanary]:
    """Return the canaries planted in the vault at ``home``, in planting order.

    Raises:
        InputError: the registry is unreadable or malformed.
    """
    return [PlantedCanary.from_dict(obj) for obj in read_lines(home, CANARIES_FILE)]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
