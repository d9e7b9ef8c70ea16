"""Test helpers shared by the vault, CLI and benchmark tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.model import Access, Accessor
from custodes.sim import Person
from custodes.store import open_store
from custodes.store._codec import pack_entries, single_bundle, unpack_entries
from custodes.store._postgres import _DDL as POSTGRES_DDL
from custodes.store._sqlite import _DDL as SQLITE_DDL
from custodes.vault import Vault

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a working hour

STAFF = [
    Accessor("reg-1", "hotel-1", "registrar"),
    Accessor("inv-1", "police-1", "investigator"),
    Accessor("inv-2", "police-1", "investigator"),
    Accessor("sup-1", "police-1", "supervisor"),
    Accessor("dir-1", "police-1", "director"),
    Accessor("duty-1", "police-1", "duty_officer"),
    Accessor("dpo-1", "police-1", "custodian"),
    Accessor("sup-9", "police-9", "supervisor"),
]


def make_vault(home: Path, store: StoreSettings, clock: ManualClock | None = None) -> Vault:
    """A fresh vault in ``home`` on the backend of ``store``, with STAFF registered."""
    settings = init_home(home, backend=store.backend, url=store.url)
    vault = Vault.open(settings, clock=clock or ManualClock(START))
    for accessor in STAFF:
        vault.add_accessor(accessor)
    return vault


def home_with_grants(home: Path, store: StoreSettings, grants: str) -> Settings:
    """A fresh home on the backend of ``store`` whose policy has ``grants`` (TOML) appended."""
    settings = init_home(home, backend=store.backend, url=store.url)
    with settings.policy_path.open("a", encoding="utf-8") as handle:
        handle.write(grants)
    return settings


def checker_vault(home: Path, store: StoreSettings, grants: str, people: Sequence[Person]) -> Vault:
    """A vault with ``grants`` appended, registrar ``reg-1`` and accessor ``chk-1`` of role
    ``checker``, and an identity record (name, ID number) of each of ``people``."""
    vault = Vault.open(home_with_grants(home, store, grants), clock=ManualClock(START))
    vault.add_accessor(Accessor("reg-1", "hotel-1", "registrar"))
    vault.add_accessor(Accessor("chk-1", "org-1", "checker"))
    reg = Access(vault.principal("reg-1"), "registration")
    for p in people:
        vault.put(reg, "identity", p.id_number, {"name": p.name, "id_number": p.id_number})
    return vault


def officers_vault(
    home: Path,
    store: StoreSettings,
    people: Sequence[Person],
    officers: int = 1,
    clock: ManualClock | None = None,
) -> tuple[Vault, list[Access]]:
    """:func:`make_vault` with an identity record (name, ID number) of each of ``people`` and
    duty officers ``duty-1`` .. ``duty-N``; returns the vault and the officers' accesses for
    ``identity_check``."""
    vault = make_vault(home, store, clock)
    registrar = access(vault, "reg-1", "registration")
    for p in people:
        vault.put(registrar, "identity", p.id_number, {"name": p.name, "id_number": p.id_number})
    for i in range(2, officers + 1):  # duty-1 is one of STAFF
        vault.add_accessor(Accessor(f"duty-{i}", "police-1", "duty_officer"))
    return vault, [access(vault, f"duty-{i}", "identity_check") for i in range(1, officers + 1)]


def access(vault: Vault, accessor: str, purpose: str | None, case: str | None = None) -> Access:
    """An Access for a registered accessor."""
    return Access(vault.principal(accessor), purpose, case)


def raw_sql(vault: Vault, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run SQL on the vault's database behind its back, as an intruder or a fault would."""
    st = vault.settings.store
    if st.backend == "sqlite":
        with sqlite3.connect(st.path) as conn:
            conn.execute(sql, params)
    else:
        assert st.url is not None
        with psycopg.connect(st.url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)


def assert_records_open(
    vault: Vault,
    collection: str,
    items: Sequence[tuple[str, Mapping[str, object]]],
    record_ids: Sequence[str],
) -> None:
    """Every record written from ``items`` opens with its subject's key, in its own place
    (record id, subject), to the normalized values."""
    coll = vault.schema.collection(collection)
    for (subject, values), record_id in zip(items, record_ids, strict=True):
        ref = vault._subject(subject).ref
        stored = vault.store.record(record_id)
        assert stored is not None
        assert stored.subject_ref == ref
        (opened,) = vault._open_records([stored], ref, list(coll.fields))
        assert opened.values == coll.validate(values)


def count_rows(vault: Vault, table: str) -> int:
    """Count the rows of one of the vault's tables behind its back."""
    st = vault.settings.store
    sql = f"SELECT COUNT(*) FROM {table}"  # a table name of the tests' own, never input
    if st.backend == "sqlite":
        with sqlite3.connect(st.path) as conn:
            return int(conn.execute(sql).fetchone()[0])
    assert st.url is not None
    with psycopg.connect(st.url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])


def break_event_table(vault: Vault) -> None:
    """Make every later event insert fail, as a full disk or a broken table would."""
    if vault.settings.store.backend == "sqlite":
        raw_sql(
            vault,
            "CREATE TRIGGER fault BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END",
        )
    else:
        raw_sql(
            vault,
            "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk quota exceeded'; END $$",
        )
        raw_sql(
            vault,
            "CREATE TRIGGER fault BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fault()",
        )


def explode_ledger(settings: StoreSettings) -> None:
    """Rewrite the stored ledger as one bundle per entry, with the same entries and hashes.

    A one-entry bundle holds exactly one entry's bytes, leaf hash and completed-subtree hashes,
    so after this an intruder's edit of one row (``ledger_bundles`` by ``seq``: replace
    ``entries`` with ``pack_entries([forged])``, delete, renumber) touches one entry, as it would
    in a log written one event per transaction. Verification passes before such an edit. The
    append-only triggers are dropped for the rewrite and put back.
    """
    store = open_store(settings)
    try:
        singles = [single_bundle(s, e, h) for s, e, h in store.ledger_rows()]
    finally:
        store.close()
    insert = "INSERT INTO ledger_bundles (seq, n, tops, hashes, entries) VALUES (?, ?, ?, ?, ?)"
    if settings.backend == "sqlite":
        guards = [s for s in SQLITE_DDL if "TRIGGER" in s and "ledger_bundles" in s]
        with closing(sqlite3.connect(settings.path, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            for name in ("ledger_bundles_no_update", "ledger_bundles_no_delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            conn.execute("DELETE FROM ledger_bundles")
            conn.executemany(insert, singles)
            for statement in guards:
                conn.execute(statement)
            conn.execute("COMMIT")
        return
    assert settings.url is not None
    guards = [s for s in POSTGRES_DDL if "TRIGGER" in s and "ledger_bundles" in s]
    with psycopg.connect(settings.url) as pg, pg.transaction():
        for name in ("ledger_bundles_append_only", "ledger_bundles_no_truncate"):
            pg.execute(f"DROP TRIGGER IF EXISTS {name} ON ledger_bundles")
        pg.execute("DELETE FROM ledger_bundles")
        pg.cursor().executemany(insert.replace("?", "%s"), singles)
        for statement in guards:
            pg.execute(statement)


def stored_entry(settings: StoreSettings, seq: int) -> bytes:
    """Return the stored bytes of ledger entry ``seq`` (read through the store)."""
    store = open_store(settings)
    try:
        return next(store.ledger_rows(seq, seq + 1))[1]
    finally:
        store.close()


def one_entry(entry: bytes) -> bytes:
    """The ``entries`` value of a one-entry ledger bundle holding ``entry``."""
    packed = pack_entries([entry])
    assert isinstance(packed, bytes)
    return packed


def bundle_entry(blob: bytes) -> bytes:
    """The entry of a one-entry bundle's ``entries`` value."""
    entries = unpack_entries(1, bytes(blob))
    assert entries is not None, "not a one-entry bundle"
    return entries[0]
