"""The embedded SQLite backend: one connection, one lock, WAL, explicit transactions."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from custodes.errors import StoreError
from custodes.store._codec import SQLReads, SQLWrites, statements
from custodes.store._protocol import StoreGuards

__all__ = ["SQLiteStore"]

_SQL = statements("?")
_BULK_WAL_BYTES = 64 * 1024 * 1024  # WAL size at which a bulk load's connection checkpoints

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (record_id TEXT PRIMARY KEY, collection TEXT NOT NULL, "
    "subject_ref BLOB NOT NULL, created_at TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_subject ON records (subject_ref, collection, created_at)",
    "CREATE TABLE IF NOT EXISTS record_index (token BLOB NOT NULL, subject_ref BLOB NOT NULL, "
    "record_id TEXT NOT NULL, PRIMARY KEY (token, record_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY CHECK (seq >= 0), "
    "ts TEXT NOT NULL, accessor TEXT NOT NULL, org TEXT NOT NULL, role TEXT NOT NULL, "
    "action TEXT NOT NULL, collection TEXT, fields TEXT NOT NULL, subject TEXT, purpose TEXT, "
    "case_id TEXT, decision TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, "
    "break_glass INTEGER NOT NULL, justification TEXT)",
    "CREATE INDEX IF NOT EXISTS events_accessor ON events (accessor, ts)",
    "CREATE INDEX IF NOT EXISTS events_subject ON events (subject)",
    "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END",
    # One row per append of up to 2,048 entries (seq: the first one's; n: how many): the
    # layout of the entries and hashes blobs is in store/_codec.py and docs/ledger.md.
    "CREATE TABLE IF NOT EXISTS ledger_bundles (seq INTEGER PRIMARY KEY CHECK (seq >= 0), "
    "n INTEGER NOT NULL CHECK (n > 0), tops BLOB NOT NULL, hashes BLOB NOT NULL, "
    "entries BLOB NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS ledger_bundles_no_update BEFORE UPDATE ON ledger_bundles "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_bundles_no_delete BEFORE DELETE ON ledger_bundles "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TABLE IF NOT EXISTS cases (case_id TEXT PRIMARY KEY, org TEXT NOT NULL, "
    "purpose TEXT NOT NULL, subjects BLOB NOT NULL, assigned TEXT NOT NULL, "
    "opened_by TEXT NOT NULL, opened_at TEXT NOT NULL, expires_at TEXT, approved_by TEXT, "
    "approver_role TEXT, approved_at TEXT, closed_at TEXT)",
    "CREATE TABLE IF NOT EXISTS accessors (accessor TEXT PRIMARY KEY, org TEXT NOT NULL, "
    "role TEXT NOT NULL, active INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credentials (digest BLOB PRIMARY KEY, kind TEXT NOT NULL, "
    "principal TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('schema_version', '4') ON CONFLICT (key) DO NOTHING",
)

# What sqlite_master holds for each append-only trigger (SQLite drops "IF NOT EXISTS"): a
# trigger of the same name with another body is as good as none.
_GUARDS = {
    statement.split()[5]: statement.replace(" IF NOT EXISTS", "", 1)
    for statement in _DDL
    if statement.startswith("CREATE TRIGGER")
}


class _SQLiteTx(SQLWrites):
    _sql = _SQL

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    def _run(self, op: str, sql: str, params: Sequence[Any]) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise _error(op, exc) from exc

    def _run_many(self, op: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _error(op, exc) from exc

    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _error(op, exc) from exc

    def _first_seq(self) -> int:
        # BEGIN IMMEDIATE already holds the database's write lock, so max+1 cannot race.
        try:
            return int(self._conn.execute(_SQL["next_entry"]).fetchone()[0])
        except sqlite3.Error as exc:
            raise _error("number an event", exc) from exc


class SQLiteStore(SQLReads):
    """The embedded SQLite store (default backend); one file, safe to share between threads.

    Raises:
        StoreError: the database file cannot be created or opened.
    """

    _sql = _SQL
    _ddl = tuple(_DDL)

    def __init__(
        self,
        path: Path,
        *,
        durability: Literal["normal", "full"] = "normal",
        mmap_mib: int = 1024,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._durability = durability
        self._conn = _connect(self.path, durability, mmap_mib)
        self._writer = os.open(str(self.path) + "-writer", os.O_CREAT | os.O_RDWR, 0o600)

    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _error(op, exc) from exc

    def _lock_schema(self, tx: Any) -> None:
        """Nothing to take: ``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def _schema_version(self) -> int | None:
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if found is None:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Let the WAL grow to ~64 MiB between checkpoints instead of 1,000 pages (4 MiB).

        A bulk batch rewrites most leaves of the randomly keyed indexes (subject refs, blind
        tokens, pseudonyms), and with the default every such commit was followed by a
        checkpoint copying all of them back; with room for two or more batches, a checkpoint
        copies each leaf once for all of them. Readers are unaffected (they read the WAL);
        only a power cut, with ``synchronous=NORMAL``, may lose more of the latest commits.
        """
        with self._lock:
            before = int(self._pragma("wal_autocheckpoint"))
            pages = max(before, _BULK_WAL_BYTES // int(self._pragma("page_size")))
            self._control(f"PRAGMA wal_autocheckpoint={pages}", "let the WAL grow")
            try:
                yield
            finally:
                self._control(f"PRAGMA wal_autocheckpoint={before}", "restore the WAL size")

    def checkpoint_connection(self) -> sqlite3.Connection:
        """A new connection to this database, configured like the store's own, for a
        background WAL checkpointer (:class:`custodes._walcheckpoint.WalCheckpointer`).

        Raises:
            StoreError: the database cannot be opened.
        """
        return _connect(self.path, self._durability, 0)

    def set_wal_autocheckpoint(self, pages: int) -> None:
        """Checkpoint in the committing connection once the WAL holds ``pages`` pages."""
        with self._lock:
            self._control(f"PRAGMA wal_autocheckpoint={int(pages)}", "set the WAL size")

    def _pragma(self, name: str) -> Any:
        try:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]
        except sqlite3.Error as exc:
            raise _error(f"read PRAGMA {name}", exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        """Open a write transaction (``BEGIN IMMEDIATE``); commit on a clean exit.

        Raises:
            StoreError: the transaction could not begin or commit, or a backend error occurred
                inside it (it is then rolled back).
        """
        with self._lock:
            fcntl.flock(self._writer, fcntl.LOCK_EX)
            try:
                yield from self._transaction()
            finally:
                fcntl.flock(self._writer, fcntl.LOCK_UN)

    def _transaction(self) -> Iterator[_SQLiteTx]:
        self._control("BEGIN IMMEDIATE", "begin a transaction")
        tx = _SQLiteTx(self._conn)
        tx.tip, self._tip = self._tip, None
        try:
            yield tx
        except BaseException as exc:
            tx.active = False
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise _error("complete a transaction", exc) from exc
            raise
        tx.active = False
        if tx.broken is not None:
            self._rollback()
            raise StoreError(f"{tx.broken}; the transaction was rolled back")
        self._commit()
        self._tip = tx.tip_after or tx.tip

    def _control(self, statement: str, op: str) -> None:
        try:
            self._conn.execute(statement)
        except sqlite3.Error as exc:
            raise _error(op, exc) from exc

    def _rollback(self) -> None:
        # A failed statement may already have ended the transaction; nothing left to undo then.
        if self._conn.in_transaction:
            self._control("ROLLBACK", "roll back a transaction")

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _error("commit a transaction", exc) from exc

    def guards(self) -> StoreGuards:
        """Report which append-only triggers are missing or altered. Whoever can write the
        database file can drop them, so file permissions are what guards them (no roles).

        Raises:
            StoreError: the catalog cannot be read.
        """
        rows = self._fetch(
            "read the triggers", "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'", ()
        )
        present = dict(rows)
        missing = tuple(name for name, sql in _GUARDS.items() if present.get(name) != sql)
        with self._lock:
            version = self._schema_version()
        synchronous = int(self._fetch("read the sync mode", "PRAGMA synchronous", ())[0][0])
        volatile = None if synchronous >= 2 else "SQLite commits with synchronous=NORMAL"
        return StoreGuards(
            missing=missing, privileged=None, volatile=volatile, schema_version=version
        )

    def close(self) -> None:
        """Close the connection; later calls raise StoreError."""
        with self._lock:
            self._conn.close()


def _error(op: str, exc: sqlite3.Error) -> StoreError:
    return StoreError(f"SQLite could not {op}: {exc}")


def _connect(path: Path, durability: str, mmap_mib: int) -> sqlite3.Connection:
    try:
        _create_private(path)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the SQLite database at {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=ON")
        # Pages are read from a memory map instead of one pread() each (SQLite caps the size at
        # its compile-time limit, 2 GiB by default). Writes still go through the WAL.
        conn.execute(f"PRAGMA mmap_size={int(mmap_mib) * 1024 * 1024}")
        # Up to 64 MiB of page cache (SQLite's default is 2 MiB): a batch's inserts land on
        # random pages of four indexes (record ids, subject refs, blind tokens, pseudonyms),
        # and pages evicted mid-batch are read back and rewritten. Bulk loads: +4-18 %.
        conn.execute("PRAGMA cache_size=-65536")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot configure the SQLite database at {path}: {exc}") from exc
    return conn


def _create_private(path: Path) -> None:
    # Created here, before SQLite opens it, so the file (and the WAL and shared-memory files,
    # which SQLite creates with the database's mode) are never readable by others.
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
        path.parent.chmod(0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        path.chmod(0o600)
