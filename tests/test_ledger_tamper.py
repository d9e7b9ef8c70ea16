"""Tampering with a vault's stored log, as someone holding the database's credentials.

After 5,000 events written through the vault, each tamper — editing one stored entry, deleting
one, swapping two, truncating the tail — must make ``custodes ledger verify`` fail naming the first
bad index, and make a witness that cosigned the earlier checkpoint refuse the next one. Runs on
both backends; the 5,000-event vault is built once per backend and cloned for each tamper.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from custodes.cli import main
from custodes.config import StoreSettings
from custodes.errors import AccessDenied
from custodes.model import Access
from custodes.sim import generate_people
from tests.helpers import bundle_entry, make_vault, one_entry

EVENTS = 5_000
RawSQL = Callable[[str], list[Any]]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    status = main([*args, "--json"])
    captured = capsys.readouterr()
    try:
        data = json.loads(captured.out) if captured.out.strip() else None
    except json.JSONDecodeError:
        data = None
    return status, data, captured.out + captured.err


def _fill(home: Path, store: StoreSettings) -> None:
    vault = make_vault(home, store)
    people = generate_people(40, seed=5)
    registrar = Access(vault.principal("reg-1"), "registration")
    for person in people:
        vault.put(
            registrar,
            "identity",
            person.id_number,
            {"name": person.name, "id_number": person.id_number},
        )
    officer = Access(vault.principal("duty-1"), "identity_check")
    nosy = Access(vault.principal("duty-1"), "marketing")  # denied: no such purpose
    while vault.store.event_count() < EVENTS:
        n = vault.store.event_count()
        person = people[n % len(people)]
        if n % 10 == 0:
            with pytest.raises(AccessDenied):  # denials are events too
                vault.get(nosy, "identity", person.id_number)
        else:
            vault.get(officer, "identity", person.id_number)
    assert vault.store.event_count() == EVENTS
    # One event per transaction: one ledger bundle per entry, so each tamper below is one row.
    assert len(list(vault.store.ledger_rows())) == EVENTS
    vault.close()


@pytest.fixture(scope="module")
def originals() -> Iterator[dict[str, Any]]:
    """The 5,000-event vault of each backend, built on first use: ``{backend: (home, db)}``."""
    built: dict[str, Any] = {}
    yield built
    for _, database in built.values():
        if database is not None:
            _drop(database)


def _pg_admin() -> str:
    from tests.conftest import PG_ADMIN_URL

    return PG_ADMIN_URL


@pytest.fixture
def tampered_home(
    backend: str,
    originals: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Path, RawSQL]]:
    """A fresh clone of the backend's 5,000-event vault home, and raw SQL into its database."""
    if backend not in originals:
        base = tmp_path_factory.mktemp(f"tamper-{backend}")
        if backend == "sqlite":
            store = StoreSettings(backend="sqlite", path=base / "home" / "data" / "custodes.db")
            _fill(base / "home", store)
            originals[backend] = (base / "home", None)
        else:
            request.getfixturevalue("pg_admin_url")
            name = "custodes_tamper_" + uuid.uuid4().hex[:10]
            with psycopg.connect(_pg_admin(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = _pg_admin().rsplit("/", 1)[0] + "/" + name
            _fill(base / "home", StoreSettings(backend="postgres", url=url))
            originals[backend] = (base / "home", name)
    source, template = originals[backend]
    home = tmp_path / "home"
    shutil.copytree(source, home)
    clone = None
    if template is not None:
        clone = "custodes_clone_" + uuid.uuid4().hex[:10]
        with psycopg.connect(_pg_admin(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{template}"')
        url = _pg_admin().rsplit("/", 1)[0] + "/" + clone
        config = home / "custodes.toml"
        text = config.read_text(encoding="utf-8")
        old_url = next(line for line in text.splitlines() if line.startswith("url = "))
        config.write_text(text.replace(old_url, f'url = "{url}"'), encoding="utf-8")
    try:
        yield home, _raw_sql(home, clone)
    finally:
        if clone is not None:
            _drop(clone)


def _drop(name: str) -> None:
    with psycopg.connect(_pg_admin(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _raw_sql(home: Path, pg_name: str | None) -> RawSQL:
    def run(sql: str) -> list[Any]:
        if pg_name is None:
            path = home / "data" / "custodes.db"
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                return conn.execute(sql).fetchall()
        url = _pg_admin().rsplit("/", 1)[0] + "/" + pg_name
        with psycopg.connect(url, autocommit=True) as pg:
            cur = pg.execute(sql)
            return cur.fetchall() if cur.description else []

    return run


def _drop_triggers(sql: RawSQL, backend: str) -> None:
    if backend == "sqlite":
        for table in ("events", "ledger_bundles"):
            sql(f"DROP TRIGGER {table}_no_update")
            sql(f"DROP TRIGGER {table}_no_delete")
    else:
        sql("DROP TRIGGER events_append_only ON events")
        sql("DROP TRIGGER ledger_bundles_append_only ON ledger_bundles")


def _blob(data: bytes, backend: str) -> str:
    return f"X'{data.hex()}'" if backend == "sqlite" else f"'\\x{data.hex()}'::bytea"


def _edit(sql: RawSQL, backend: str) -> int:
    # The insider changes who looked: in the event row and in the entry bytes alike.
    sql("UPDATE events SET accessor = 'nobody' WHERE seq = 1234")
    # Each read committed its own event, so each entry is a bundle of one (seq, n = 1).
    entry = bundle_entry(sql("SELECT entries FROM ledger_bundles WHERE seq = 1234")[0][0])
    forged = entry.replace(b'"accessor":"duty-1"', b'"accessor":"nobody"')
    assert forged != entry
    sql(f"UPDATE ledger_bundles SET entries = {_blob(one_entry(forged), backend)} WHERE seq = 1234")
    return 1234


def _delete(sql: RawSQL, backend: str) -> int:
    for table in ("events", "ledger_bundles"):
        sql(f"DELETE FROM {table} WHERE seq = 2500")
    return 2500


def _swap(sql: RawSQL, backend: str) -> int:
    for table in ("events", "ledger_bundles"):
        sql(f"UPDATE {table} SET seq = 999999 WHERE seq = 777")
        sql(f"UPDATE {table} SET seq = 777 WHERE seq = 3333")
        sql(f"UPDATE {table} SET seq = 3333 WHERE seq = 999999")
    return 777


def _truncate(sql: RawSQL, backend: str) -> int:
    for table in ("events", "ledger_bundles"):
        sql(f"DELETE FROM {table} WHERE seq >= 4900")
    return 4900


TAMPERS = {"edit": _edit, "delete": _delete, "swap": _swap, "truncate": _truncate}


@pytest.mark.parametrize("kind", list(TAMPERS))
def test_tampering_is_named_by_verify_and_refused_by_the_witness(
    kind: str,
    backend: str,
    tampered_home: tuple[Path, RawSQL],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, sql = tampered_home
    h = ("--home", str(home))
    state = ("--state", str(tmp_path / "witness"))

    # Before: the log verifies, is checkpointed, and a witness cosigns it.
    status, report, text = _run(capsys, "ledger", "verify", *h)
    assert status == 0, text
    assert report["ok"] is True and report["size"] == EVENTS
    assert _run(capsys, "ledger", "checkpoint", *h)[0] == 0
    assert _run(capsys, "witness", "init", *state, "--name", "ngo.example/witness")[0] == 0
    vkey = str(home / "keys" / "log.vkey")
    assert _run(capsys, "witness", "trust", *state, "--log-vkey", vkey)[0] == 0
    status, cosigned, text = _run(capsys, "witness", "cosign", *state, "--log-home", str(home))
    assert status == 0, text
    witnessed_state = (tmp_path / "witness" / "state.json").read_bytes()

    _drop_triggers(sql, backend)
    first_bad = TAMPERS[kind](sql, backend)

    # verify names the first bad index and exits non-zero.
    status, report, text = _run(capsys, "ledger", "verify", *h)
    assert status == 1, text
    assert report["ok"] is False
    assert report["first_bad_index"] == first_bad, report
    assert f"entry {first_bad}" in report["error"]

    # The log keeps working (or refuses to sign a contradiction); the witness refuses the next
    # checkpoint either way, and shows both checkpoints as evidence.
    _run(capsys, "ledger", "checkpoint", *h)
    status, refusal, text = _run(capsys, "witness", "cosign", *state, "--log-home", str(home))
    assert status == 1, text
    assert refusal["cosigned"] is False
    assert refusal["witnessed"].startswith(cosigned["note"].split("\n\n")[0])
    assert refusal["presented"]
    assert (tmp_path / "witness" / "state.json").read_bytes() == witnessed_state
