"""The storage contract every backend implements.

Backends hold only ciphertexts, keyed tokens and pseudonyms; they never see a key. All writes
happen inside :meth:`Store.transaction`, so that a record and the access event that accounts for
it are committed together or not at all. The event table is append-only: there is no method to
change or remove an event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from custodes.model import AccessEvent, Accessor, Case, Credential, IndexEntry, StoredRecord

__all__ = ["EncodedEvents", "EncodedRecords", "EventCount", "Store", "StoreGuards", "StoreTx"]


@dataclass(frozen=True, slots=True)
class EncodedRecords:
    """Records and their index entries as row values, encoded before a transaction begins
    (``encode_records``), so that the write lock is held only while they are inserted."""

    records: list[tuple[Any, ...]]
    entries: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class EncodedEvents:
    """Access events encoded before a transaction begins (``encode_events``): everything but
    their sequence numbers, which only the write lock can give.

    ``halves[i]`` is the ledger entry of event ``i`` around its position (see
    ``AccessEvent.canonical_halves``); ``columns[i]`` its ``events`` row without ``seq``.
    """

    halves: list[tuple[bytes, bytes]]
    columns: list[tuple[Any, ...]]

    def __post_init__(self) -> None:
        if len(self.halves) != len(self.columns):
            raise ValueError("encoded events need as many ledger halves as event rows")


@dataclass(frozen=True, slots=True)
class EventCount:
    """How many events of one quarter hour (``quarter``: its start, with the offset the events
    were written with) share an org, purpose, action, decision and break-glass flag."""

    quarter: datetime
    org: str
    purpose: str | None
    action: str
    decision: str
    break_glass: bool
    count: int


@dataclass(frozen=True, slots=True)
class StoreGuards:
    """What the database itself says about the guards of the append-only tables.

    ``missing`` names each append-only trigger that is absent, disabled or altered;
    ``privileged`` says why the connecting role could remove the guards itself (``None``: it
    cannot, or the backend has no roles); ``volatile`` says why a committed event may not
    survive a power loss (``None``: every commit is flushed to disk); ``schema_version`` is the
    stored version (``None``: an empty database).
    """

    missing: tuple[str, ...]
    privileged: str | None
    volatile: str | None
    schema_version: int | None


class StoreTx(Protocol):
    """Writes inside one transaction; everything commits on a clean exit, nothing otherwise."""

    def insert_record(self, record: StoredRecord, index: Sequence[IndexEntry]) -> None:
        """Insert one record and its blind-index entries."""

    def insert_records(
        self, items: Sequence[tuple[StoredRecord, Sequence[IndexEntry]]] | EncodedRecords
    ) -> None:
        """Insert many records and their blind-index entries (batched, for bulk ingest)."""

    def append_event(self, event: AccessEvent) -> int:
        """Append one access event and return its sequence number (0-based, gap-free)."""

    def append_events(self, events: Sequence[AccessEvent] | EncodedEvents) -> list[int]:
        """Append events in order and return their (consecutive) sequence numbers."""

    def append_entries(self, entries: Sequence[bytes]) -> list[int]:
        """Append raw ledger entries with their Merkle hashes; return their sequence numbers."""

    def put_case(self, case: Case) -> None:
        """Insert a case or replace the stored state of an existing one."""

    def put_credential(self, credential: Credential) -> None:
        """Store a new credential (its digest only)."""

    def delete_credential(self, digest: bytes) -> bool:
        """Delete a credential; return whether it existed."""

    def delete_expired_credentials(self, now: datetime) -> int:
        """Delete credentials that expired before ``now``; return how many."""

    def put_accessor(self, accessor: Accessor) -> None:
        """Insert an accessor or replace an existing one with the same id."""

    def delete_subject_records(self, subject_ref: bytes) -> int:
        """Delete every record and index entry of a subject; return the number of records."""


class Store(Protocol):
    """A storage backend (SQLite or PostgreSQL)."""

    def migrate(self) -> None:
        """Create the tables if they do not exist yet (idempotent)."""

    def bulk_writes(self) -> AbstractContextManager[None]:
        """While open, tune this connection for a run of large transactions (a bulk load);
        what is written and committed is the same. Raises ``StoreError`` if it cannot."""

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """Open a write transaction; raise :class:`~custodes.errors.StoreError` on failure.

        Any backend error inside or at commit is raised as ``StoreError`` (``raise ... from``);
        the transaction is then rolled back.
        """

    def records(self, collection: str, subject_ref: bytes) -> list[StoredRecord]:
        """Return the records of one subject in one collection, oldest first."""

    def record(self, record_id: str) -> StoredRecord | None:
        """Return one record by id, or ``None``."""

    def lookup(self, token: bytes, limit: int) -> list[tuple[bytes, str]]:
        """Return up to ``limit`` ``(subject_ref, record_id)`` pairs whose index token equals
        ``token`` exactly."""

    def lookup_many(
        self, tokens: Sequence[bytes], limit: int
    ) -> dict[bytes, list[tuple[bytes, str]]]:
        """Return, for each of ``tokens`` that has index entries, up to ``limit``
        ``(subject_ref, record_id)`` pairs (a batched :meth:`lookup`)."""

    def subject_refs(self, collection: str, limit: int | None = None) -> list[bytes]:
        """Return the distinct subject refs that have records in ``collection``."""

    def case(self, case_id: str) -> Case | None:
        """Return a case by id, or ``None``."""

    def accessor(self, accessor_id: str) -> Accessor | None:
        """Return an accessor by id, or ``None``."""

    def accessors(self) -> list[Accessor]:
        """Return every accessor, ordered by id."""

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, AccessEvent]]:
        """Yield ``(seq, event)`` for ``start <= seq < stop`` in order."""

    def event_counts(self, start: int = 0, stop: int | None = None) -> list[EventCount]:
        """Count the events with ``start <= seq < stop`` by quarter hour, org, purpose, action,
        decision and break-glass flag."""

    def events_about(
        self, subjects: Sequence[str], start: int = 0, stop: int | None = None
    ) -> list[tuple[int, AccessEvent]]:
        """Return the events about any of ``subjects`` with ``start <= seq < stop``, oldest
        first."""

    def subject_events(self, subject: str, limit: int) -> list[tuple[int, AccessEvent]]:
        """Return the newest ``limit`` events about a subject pseudonym, newest first."""

    def accessor_events(self, accessor: str, limit: int) -> list[tuple[int, AccessEvent]]:
        """Return the newest ``limit`` events of one accessor, newest first."""

    def credential(self, digest: bytes) -> Credential | None:
        """Return the stored credential with this digest, or ``None``."""

    def event_count(self) -> int:
        """Return the size of the ledger (the next sequence number)."""

    def node(self, level: int, idx: int) -> bytes | None:
        """Return the ledger's Merkle node ``(level, idx)``, or ``None``.

        Level 0 holds leaf hashes (``idx`` is the entry's seq); node ``(k, i)`` is the hash of
        the perfect subtree over leaves ``i * 2**k .. (i + 1) * 2**k - 1``. Appending an entry
        stores its leaf and every subtree it completes in the same transaction (one bundle row
        per append, docs/ledger.md).
        """

    def nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return the stored ledger nodes among ``keys``; absent ones are left out."""

    def ledger_rows(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """Yield ``(seq, entry, hashes)`` of the stored ledger rows for ``start <= seq <
        stop``, in order: the entry bytes, then its leaf hash and completed-subtree hashes."""

    def subjects_accessed_since(self, accessor_id: str, since: datetime) -> set[str]:
        """Return the subject pseudonyms of allowed events by ``accessor_id`` at or after
        ``since``."""

    def guards(self) -> StoreGuards:
        """Report the append-only triggers and the connecting role's power over them (for
        ``custodes doctor``; reads the catalog, changes nothing)."""

    def close(self) -> None:
        """Release connections."""
