"""Upgrading a schema-version-3 database, whose ledger kept one row per entry, to bundles."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from custodes.config import StoreSettings
from custodes.errors import VerificationError
from custodes.ledger import Ledger, LedgerTamperError, merkle
from custodes.model import AccessEvent
from custodes.store import open_store

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
EVENTS = 3000

# The version-3 ledger table and its guards, as custodes created them before bundles.
V3 = {
    "sqlite": [
        "CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY CHECK (seq >= 0), "
        "entry BLOB NOT NULL, hashes BLOB NOT NULL)",
        "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
        "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
        "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
        "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    ],
    "postgres": [
        "CREATE TABLE ledger_entries (seq bigint PRIMARY KEY CHECK (seq >= 0), "
        "entry bytea NOT NULL, hashes bytea NOT NULL)",
        "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION custodes_ledger_append_only()",
        "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION custodes_ledger_append_only()",
    ],
}


def _event(i: int) -> AccessEvent:
    return AccessEvent(
        T0 + timedelta(seconds=i), f"clerk-{i % 7}", "city", "clerk", "get", "people",
        ("name",), f"psn-{i}", "benefits", None, "allow", "ok", 1,
    )  # fmt: skip


def _sql(settings: StoreSettings, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Run statements in one transaction behind custodes' back; return the last one's rows."""
    rows: list[Any] = []
    if settings.backend == "sqlite":
        with closing(sqlite3.connect(settings.path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            for sql, params in statements:
                rows = conn.execute(sql, params).fetchall()
            conn.execute("COMMIT")
        return rows
    assert settings.url is not None
    with psycopg.connect(settings.url) as pg, pg.transaction():
        for sql, params in statements:
            cur = pg.execute(sql.replace("?", "%s"), params or None)
            rows = cur.fetchall() if cur.description else []
    return rows


def _version_3(settings: StoreSettings, edit: int | None = None) -> tuple[int, bytes]:
    """Write EVENTS events, then rewrite the database as version 3 left it: one ledger row per
    entry (its bytes, its leaf and completed-subtree hashes). Return the log's size and root.
    ``edit``: also change that entry's bytes, as an intruder would have before the upgrade."""
    store = open_store(settings)
    store.migrate()
    for first in (0, 1, 2, 700, 2900):  # bundles of 1, 1, 698, 2,048 + 152 and 100
        with store.transaction() as tx:
            nxt = {0: 1, 1: 2, 2: 700, 700: 2900, 2900: EVENTS}[first]
            tx.append_events([_event(i) for i in range(first, nxt)])
    ledger = Ledger(store=store)
    size, root = ledger.size(), ledger.root()
    rows = list(store.ledger_rows())
    store.close()
    if edit is not None:
        seq, entry, hashes = rows[edit]
        rows[edit] = (seq, entry.replace(b'"clerk-', b'"judge-'), hashes)
    _sql(
        settings,
        [("DROP TABLE ledger_bundles", ())]
        + [(sql, ()) for sql in V3[settings.backend]]
        + [("INSERT INTO ledger_entries (seq, entry, hashes) VALUES (?, ?, ?)", r) for r in rows]
        + [("UPDATE meta SET value = '3' WHERE key = 'schema_version'", ())],
    )
    return size, root


def test_a_version_3_ledger_is_upgraded_entry_for_entry(store_settings: StoreSettings) -> None:
    size, root = _version_3(store_settings)
    store = open_store(store_settings)
    try:
        store.migrate()
        ledger = Ledger(store=store)
        ledger.verify(expect_size=size, expect_root=root)
        entries = [_event(i).canonical(i) for i in range(EVENTS)]
        assert [e for _, e, _ in store.ledger_rows()] == entries
        proof = ledger.inclusion_proof(1234, size)
        merkle.verify_inclusion(entries[1234], 1234, size, proof, root)
        with store.transaction() as tx:  # the upgraded log grows as any other
            tx.append_events([_event(i) for i in range(EVENTS, EVENTS + 10)])
        ledger.verify()
        store.migrate()  # idempotent
    finally:
        store.close()
    tables = _sql(
        store_settings,
        [
            (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ledger%'"
                if store_settings.backend == "sqlite"
                else "SELECT tablename FROM pg_tables WHERE tablename LIKE 'ledger%'",
                (),
            )
        ],
    )
    assert sorted(t for (t,) in tables) == ["ledger_bundles"]
    version = _sql(store_settings, [("SELECT value FROM meta WHERE key = 'schema_version'", ())])
    assert version == [("4",)]


def test_an_entry_edited_before_the_upgrade_is_still_found_at_its_index(
    store_settings: StoreSettings,
) -> None:
    _version_3(store_settings, edit=1500)
    store = open_store(store_settings)
    try:
        store.migrate()
        with pytest.raises(VerificationError) as caught:
            Ledger(store=store).verify()
    finally:
        store.close()
    assert isinstance(caught.value, LedgerTamperError)
    assert caught.value.index == 1500
