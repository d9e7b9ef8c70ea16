"""The PostgreSQL backend (production): psycopg 3, one autocommit connection, one lock."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from custodes.errors import StoreError
from custodes.store._codec import SQLReads, SQLWrites, statements
from custodes.store._protocol import StoreGuards

__all__ = ["PostgresStore"]

_SQL = statements("%s")

# Any constant shared by every custodes process on the database; it serializes event numbering.
_SEQ_LOCK = 0x637573746F646573  # "custodes"
_MIGRATE_LOCK = _SEQ_LOCK + 1

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (record_id text PRIMARY KEY, collection text NOT NULL, "
    "subject_ref bytea NOT NULL, created_at text NOT NULL, body bytea NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_subject ON records (subject_ref, collection, created_at)",
    "CREATE TABLE IF NOT EXISTS record_index (token bytea NOT NULL, subject_ref bytea NOT NULL, "
    "record_id text NOT NULL, PRIMARY KEY (token, record_id))",
    "CREATE TABLE IF NOT EXISTS events (seq bigint PRIMARY KEY CHECK (seq >= 0), "
    "ts text NOT NULL, accessor text NOT NULL, org text NOT NULL, role text NOT NULL, "
    "action text NOT NULL, collection text, fields text NOT NULL, subject text, purpose text, "
    "case_id text, decision text NOT NULL, reason text NOT NULL, count bigint NOT NULL, "
    "break_glass boolean NOT NULL, justification text)",
    "CREATE INDEX IF NOT EXISTS events_accessor ON events (accessor, ts)",
    "CREATE INDEX IF NOT EXISTS events_subject ON events (subject)",
    "CREATE OR REPLACE FUNCTION custodes_events_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'events are append-only'; END $$",
    "DROP TRIGGER IF EXISTS events_append_only ON events",
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION custodes_events_append_only()",
    "DROP TRIGGER IF EXISTS events_no_truncate ON events",
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION custodes_events_append_only()",
    # One row per append of up to 2,048 entries (seq: the first one's; n: how many): the
    # layout of the entries and hashes blobs is in store/_codec.py and docs/ledger.md. Both
    # are stored uncompressed by PostgreSQL (entries come compressed, hashes are random).
    "CREATE TABLE IF NOT EXISTS ledger_bundles (seq bigint PRIMARY KEY CHECK (seq >= 0), "
    "n integer NOT NULL CHECK (n > 0), tops bytea NOT NULL, hashes bytea NOT NULL, "
    "entries bytea NOT NULL)",
    "ALTER TABLE ledger_bundles ALTER COLUMN entries SET STORAGE EXTERNAL, "
    "ALTER COLUMN hashes SET STORAGE EXTERNAL, ALTER COLUMN tops SET STORAGE EXTERNAL",
    "CREATE OR REPLACE FUNCTION custodes_ledger_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$",
    "DROP TRIGGER IF EXISTS ledger_bundles_append_only ON ledger_bundles",
    "CREATE TRIGGER ledger_bundles_append_only BEFORE UPDATE OR DELETE ON ledger_bundles "
    "FOR EACH ROW EXECUTE FUNCTION custodes_ledger_append_only()",
    "DROP TRIGGER IF EXISTS ledger_bundles_no_truncate ON ledger_bundles",
    "CREATE TRIGGER ledger_bundles_no_truncate BEFORE TRUNCATE ON ledger_bundles "
    "FOR EACH STATEMENT EXECUTE FUNCTION custodes_ledger_append_only()",
    "CREATE TABLE IF NOT EXISTS cases (case_id text PRIMARY KEY, org text NOT NULL, "
    "purpose text NOT NULL, subjects bytea NOT NULL, assigned text NOT NULL, "
    "opened_by text NOT NULL, opened_at text NOT NULL, expires_at text, approved_by text, "
    "approver_role text, approved_at text, closed_at text)",
    "CREATE TABLE IF NOT EXISTS accessors (accessor text PRIMARY KEY, org text NOT NULL, "
    "role text NOT NULL, active boolean NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credentials (digest bytea PRIMARY KEY, kind text NOT NULL, "
    "principal text NOT NULL, created_at text NOT NULL, expires_at text NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('schema_version', '4') ON CONFLICT (key) DO NOTHING",
)

# The append-only guards as the catalog shows them (pg_get_triggerdef, with the schema filled
# in), and the bodies of their functions: a trigger that is disabled, or calls a function that
# no longer refuses, guards nothing.
_GUARD_FUNCTIONS = {
    "custodes_events_append_only": "BEGIN RAISE EXCEPTION 'events are append-only'; END",
    "custodes_ledger_append_only": "BEGIN RAISE EXCEPTION 'the ledger is append-only'; END",
}
_GUARD_TRIGGERS = {
    f"{table}_{suffix}": (
        f"CREATE TRIGGER {table}_{suffix} BEFORE {events} ON {{schema}}.{table} FOR EACH "
        f"{level} EXECUTE FUNCTION {function}()",
        function,
    )
    for table, function in (
        ("events", "custodes_events_append_only"),
        ("ledger_bundles", "custodes_ledger_append_only"),
    )
    for suffix, events, level in (
        ("append_only", "DELETE OR UPDATE", "ROW"),
        ("no_truncate", "TRUNCATE", "STATEMENT"),
    )
}
_TRIGGERS_QUERY = (
    "SELECT t.tgname, t.tgenabled, p.proname, p.prosrc, pg_get_triggerdef(t.oid), "
    "current_schema() FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal "
    "AND c.relnamespace = current_schema()::regnamespace"
)
_ROLE_QUERY = (
    "SELECT r.rolsuper, (SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename = 'events') = current_user FROM pg_roles r WHERE r.rolname = current_user"
)


# Bulk inserts of at least _COPY_MIN rows go through binary COPY, several times faster than
# executemany for the batches of bulk ingest (measured in bench/ingest.py), in the same
# transaction and with the same outcome: any failing row fails the statement and the
# transaction is rolled back. Smaller ones (single events on the read path) keep executemany.
_COPY_MIN = 64
_COLUMN_TYPES: dict[str, dict[str, str]] = {
    "records": {
        "record_id": "text",
        "collection": "text",
        "subject_ref": "bytea",
        "created_at": "text",
        "body": "bytea",
    },
    "record_index": {"token": "bytea", "subject_ref": "bytea", "record_id": "text"},
    "events": {
        "seq": "bigint",
        "ts": "text",
        "accessor": "text",
        "org": "text",
        "role": "text",
        "action": "text",
        "collection": "text",
        "fields": "text",
        "subject": "text",
        "purpose": "text",
        "case_id": "text",
        "decision": "text",
        "reason": "text",
        "count": "bigint",
        "break_glass": "boolean",
        "justification": "text",
    },
    "ledger_bundles": {
        "seq": "bigint",
        "n": "integer",
        "tops": "bytea",
        "hashes": "bytea",
        "entries": "bytea",
    },
}
_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([%s, ]+\)")


def _copy_statement(insert: str) -> tuple[bytes, tuple[str, ...]]:
    """Return the binary COPY statement and column types equivalent to an INSERT of one row."""
    found = _INSERT.fullmatch(insert)
    if found is None:
        raise ValueError(f"not a plain one-row INSERT: {insert}")
    table, columns = found[1], [c.strip() for c in found[2].split(",")]
    types = tuple(_COLUMN_TYPES[table][column] for column in columns)
    copy = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    return copy.encode(), types


_COPY = {
    _SQL[name]: _copy_statement(_SQL[name])
    for name in ("insert_record", "insert_index", "insert_event", "insert_bundle")
}


class _PostgresTx(SQLWrites):
    _sql = _SQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__()
        self._conn = conn

    def _run(self, op: str, sql: str, params: Sequence[Any]) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except psycopg.Error as exc:
            raise _error(op, exc) from exc

    def _run_many(self, op: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        copy = _COPY.get(sql) if len(rows) >= _COPY_MIN else None
        try:
            with self._conn.cursor() as cur:
                if copy is None:
                    cur.executemany(sql, rows)
                    return
                with cur.copy(copy[0]) as target:
                    target.set_types(copy[1])
                    for row in rows:
                        target.write_row(row)
        except psycopg.Error as exc:
            raise _error(op, exc) from exc
        except (TypeError, ValueError) as exc:  # a value COPY cannot send as its column's type
            raise StoreError(f"PostgreSQL could not {op}: {exc}") from exc

    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise _error(op, exc) from exc

    def _first_seq(self) -> int:
        # The advisory lock is held until commit, so writers in other processes wait here
        # rather than computing the same max+1.
        try:
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SEQ_LOCK,))
            row = self._conn.execute(_SQL["next_entry"]).fetchone()
        except psycopg.Error as exc:
            raise _error("number an event", exc) from exc
        assert row is not None  # noqa: S101 (an aggregate always returns one row)
        return int(row[0])


class PostgresStore(SQLReads):
    """The PostgreSQL store (production backend); safe to share between threads.

    Raises:
        StoreError: the server cannot be reached or refuses the connection.
    """

    _sql = _SQL
    _ddl = tuple(_DDL)

    def __init__(self, url: str) -> None:
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, application_name="custodes")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                raise _error(op, exc) from exc

    def _lock_schema(self, tx: Any) -> None:
        # Two processes starting at once must not both create the schema.
        tx._run("lock the schema", "SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))

    def _schema_version(self) -> int | None:
        row = self._conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return None
        found = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        value = found.fetchone()
        return None if value is None else int(value[0])

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Nothing to tune: the server checkpoints on its own schedule."""
        yield

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTx]:
        """Open a write transaction; commit on a clean exit.

        Raises:
            StoreError: the transaction could not begin or commit, or a backend error occurred
                inside it (it is then rolled back).
        """
        with self._lock:
            tx = _PostgresTx(self._conn)
            tx.tip, self._tip = self._tip, None
            body_done = False
            try:
                with self._conn.transaction():
                    try:
                        yield tx
                    finally:
                        tx.active = False
                    if tx.broken is not None:
                        # Raised inside the block so psycopg rolls the transaction back.
                        raise StoreError(f"{tx.broken}; the transaction was rolled back")
                    body_done = True
            except psycopg.Error as exc:
                op = "commit a transaction" if body_done else "complete a transaction"
                raise _error(op, exc) from exc
            self._tip = tx.tip_after or tx.tip

    def guards(self) -> StoreGuards:
        """Report which append-only triggers are missing, disabled or altered, and whether the
        connecting role is a superuser or owns the tables (and so could remove them).

        Raises:
            StoreError: the catalog cannot be read.
        """
        present = {
            name: (enabled, function, source.strip(), definition, schema)
            for name, enabled, function, source, definition, schema in self._fetch(
                "read the triggers", _TRIGGERS_QUERY, ()
            )
        }
        missing = tuple(
            name
            for name, expected in _GUARD_TRIGGERS.items()
            if not _guarding(present.get(name), expected)
        )
        rows = self._fetch("read the connecting role", _ROLE_QUERY, ())
        superuser, owner = rows[0] if rows else (False, False)
        privileged = "is a superuser" if superuser else "owns the vault's tables" if owner else None
        with self._lock:
            version = self._schema_version()
        return StoreGuards(
            missing=missing,
            privileged=privileged,
            volatile=self._volatile(),
            schema_version=version,
        )

    def _volatile(self) -> str | None:
        settings = dict(
            self._fetch(
                "read the server's durability settings",
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'synchronous_commit')",
                (),
            )
        )
        if settings.get("fsync") == "off":
            return "the PostgreSQL server runs with fsync=off"
        if settings.get("synchronous_commit") == "off":
            return "the PostgreSQL server commits with synchronous_commit=off"
        return None

    def close(self) -> None:
        """Close the connection; later calls raise StoreError."""
        with self._lock:
            self._conn.close()


def _guarding(found: tuple[str, str, str, str, str] | None, expected: tuple[str, str]) -> bool:
    if found is None:
        return False
    enabled, function, source, definition, schema = found
    template, wanted_function = expected
    return (
        enabled in ("O", "A")  # fires in normal sessions ('D': disabled, 'R': replicas only)
        and function == wanted_function
        and source == _GUARD_FUNCTIONS[function]
        and definition == template.format(schema=schema)
    )


def _error(op: str, exc: psycopg.Error) -> StoreError:
    return StoreError(f"PostgreSQL could not {op}: {exc}")
