"""Test helpers shared by the vault, CLI and benchmark tests."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.model import Access, Accessor
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
