"""Wrapped subject data keys, in their own SQLite file beside the root key (never the database)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from custodes.clock import Clock, system_clock
from custodes.errors import InputError, StoreError

__all__ = ["SubjectKeyStore"]

_T = TypeVar("_T")
# SQLite's default limit on host parameters is 999 in old builds; stay well below it.
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_ref BLOB PRIMARY KEY,
    wrapped BLOB NOT NULL,
    created_at TEXT
)
"""


class SubjectKeyStore:
    """Per-subject wrapped data keys; deleting one makes that subject's data unrecoverable.

    ``secure_delete`` overwrites deleted rows in the file, and the rollback journal (not a WAL)
    is removed after each commit, so a shredded key is not left behind in this file.

    Raises:
        StoreError: the file cannot be created or opened, or SQLite fails.
    """

    def __init__(self, path: Path, *, clock: Clock = system_clock) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        _create_private_file(path)
        try:
            self._conn: sqlite3.Connection | None = _connect(path)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the subject key store: {exc}") from exc

    def __repr__(self) -> str:
        return f"SubjectKeyStore(path={str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, subject_ref: bytes) -> bytes | None:
        """Return the wrapped key of a subject, or None.

        Raises:
            StoreError: SQLite failed or the store is closed.
        """
        _check_ref(subject_ref)
        return self._run(lambda c: _select_one(c, subject_ref))

    def get_many(self, subject_refs: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the wrapped keys of those subjects that have one.

        Raises:
            StoreError: SQLite failed or the store is closed.
        """
        refs = list(dict.fromkeys(subject_refs))
        for ref in refs:
            _check_ref(ref)
        return self._run(lambda c: _select_many(c, refs))

    def put_if_absent(self, subject_ref: bytes, wrapped: bytes) -> bytes:
        """Store a wrapped key unless the subject has one; return the one stored (first wins).

        Raises:
            StoreError: SQLite failed or the store is closed.
        """
        _check_ref(subject_ref)
        created = self._clock().isoformat()

        def insert(conn: sqlite3.Connection) -> bytes:
            _insert_or_ignore(conn, [(subject_ref, wrapped)], created)
            stored = _select_one(conn, subject_ref)
            if stored is None:  # cannot happen: inserted or present, in this same transaction
                raise StoreError(f"{self.path}: a stored subject key vanished mid-transaction")
            return stored

        return self._transaction(insert)

    def put_many_if_absent(self, items: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
        """Store many wrapped keys in one transaction; subjects that have a key keep it.

        Returns the key stored for each subject of ``items`` (first wins), read in the same
        transaction, so a racing writer's key is never mistaken for this one.

        Raises:
            StoreError: SQLite failed or the store is closed.
        """
        for ref, _ in items:
            _check_ref(ref)
        created = self._clock().isoformat()
        refs = list(dict.fromkeys(ref for ref, _ in items))

        def insert(conn: sqlite3.Connection) -> dict[bytes, bytes]:
            _insert_or_ignore(conn, items, created)
            return _select_many(conn, refs)

        return self._transaction(insert)

    def delete(self, subject_ref: bytes) -> bool:
        """Delete a subject's wrapped key (shredding); return whether there was one.

        Raises:
            StoreError: SQLite failed or the store is closed.
        """
        _check_ref(subject_ref)

        def remove(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM subject_keys WHERE subject_ref = ?", (subject_ref,))
            return cursor.rowcount > 0

        return self._transaction(remove)

    def close(self) -> None:
        """Close the store; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._connection() as conn:
            return work(conn)

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._connection() as conn:
            # IMMEDIATE takes the write lock up front, so another process cannot interleave.
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self.path}: the subject key store is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: subject key store failed: {exc}") from exc


def _check_ref(subject_ref: bytes) -> None:
    if not isinstance(subject_ref, bytes) or not subject_ref:
        raise InputError("subject_ref must be non-empty bytes")


def _create_private_file(path: Path) -> None:
    """Create the key store file owner-only (0600) before SQLite opens it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the subject key store: {exc.strerror}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (see SubjectKeyStore._transaction).
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, expected delete")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _select_one(conn: sqlite3.Connection, subject_ref: bytes) -> bytes | None:
    row = conn.execute(
        "SELECT wrapped FROM subject_keys WHERE subject_ref = ?", (subject_ref,)
    ).fetchone()
    return None if row is None else bytes(row[0])


def _select_many(conn: sqlite3.Connection, refs: list[bytes]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for start in range(0, len(refs), _CHUNK):
        chunk = refs[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT subject_ref, wrapped FROM subject_keys WHERE subject_ref IN ({marks})"  # noqa: S608 - only placeholders
        found.update((bytes(r), bytes(w)) for r, w in conn.execute(sql, chunk))
    return found


def _insert_or_ignore(
    conn: sqlite3.Connection, items: Sequence[tuple[bytes, bytes]], created: str
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO subject_keys (subject_ref, wrapped, created_at) VALUES (?, ?, ?)",
        [(ref, wrapped, created) for ref, wrapped in items],
    )
