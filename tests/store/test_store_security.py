"""Security claims of the store: append-only events, private files, no text-encoded ciphertext."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from custodes.config import StoreSettings
from custodes.model import AccessEvent, StoredRecord
from custodes.store import Store, open_store

RawSQL = Callable[[str], list[Any]]
T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
SECRET = b"\x8a\x01" + b"110101199003077777" + b"\xfe"  # stands in for a ciphertext


def _event() -> AccessEvent:
    return AccessEvent(
        T0, "clerk-1", "city", "clerk", "get", "people", ("name",), "psn", "p", None, "allow",
        "ok", 1,
    )  # fmt: skip


def _backend_errors() -> tuple[type[Exception], ...]:
    return (sqlite3.Error, psycopg.Error)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET decision = 'deny' WHERE seq = 0",
        "UPDATE events SET seq = 5",
        "DELETE FROM events WHERE seq = 0",
        "DELETE FROM events",
    ],
)
def test_database_refuses_changes_to_events(store: Store, raw_sql: RawSQL, statement: str) -> None:
    with store.transaction() as tx:
        tx.append_events([_event(), _event()])
    with pytest.raises(_backend_errors(), match="append-only"):
        raw_sql(statement)
    back = list(store.events())
    assert [seq for seq, _ in back] == [0, 1]
    assert all(event == _event() for _, event in back)


# TRUNCATE exists only in PostgreSQL; SQLite's DELETE is covered above.
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_postgres_refuses_truncate_of_events(store: Store, raw_sql: RawSQL, backend: str) -> None:
    with store.transaction() as tx:
        tx.append_event(_event())
    with pytest.raises(psycopg.Error, match="append-only"):
        raw_sql("TRUNCATE events")
    assert store.event_count() == 1


def test_triggers_survive_a_second_migrate(store: Store, raw_sql: RawSQL) -> None:
    with store.transaction() as tx:
        tx.append_event(_event())
    store.migrate()
    with pytest.raises(_backend_errors(), match="append-only"):
        raw_sql("DELETE FROM events")


@pytest.mark.parametrize("backend", ["sqlite"])  # file modes are a matter for the embedded store
def test_sqlite_files_are_private(store_settings: StoreSettings, backend: str) -> None:
    store = open_store(store_settings)
    try:
        store.migrate()
        with store.transaction() as tx:
            tx.append_event(_event())
        files = [store_settings.path, *store_settings.path.parent.glob("*-wal")]
        assert len(files) == 2  # the WAL exists while the store is open
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert stat.S_IMODE(store_settings.path.parent.stat().st_mode) == 0o700
    finally:
        store.close()


def test_record_body_holds_raw_bytes_not_text_encodings(
    store: Store, raw_sql: RawSQL, store_settings: StoreSettings
) -> None:
    record = StoredRecord("r1", "people", b"ref", T0, {"id_number": SECRET, "name": b"\x00"})
    with store.transaction() as tx:
        tx.insert_record(record, [])
    (body,) = raw_sql("SELECT body FROM records")[0]
    body = bytes(body)
    assert SECRET in body
    for encoded in (SECRET.hex().encode(), SECRET.hex().upper().encode()):
        assert encoded not in body
    assert b"{" not in body  # not JSON
    if store_settings.backend == "sqlite":
        store.close()  # checkpoints the WAL into the file
        data = store_settings.path.read_bytes()
        assert SECRET in data and SECRET.hex().encode() not in data


def test_store_holds_no_key_material_columns(raw_sql: RawSQL, store: Store, backend: str) -> None:
    if backend == "sqlite":
        rows = raw_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = raw_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    assert sorted(row[0] for row in rows) == [
        "accessors",
        "cases",
        "credentials",  # digests of bearer secrets only (tests/api/test_credentials.py)
        "events",
        "ledger_bundles",
        "meta",
        "record_index",
        "records",
    ]
