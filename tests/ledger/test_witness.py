"""The witness cosigns only a checkpoint that extends what it cosigned before and that the log's
stored entries still hash to; rollbacks, split views, rewritten logs, unknown keys and tampered
entries are refused with both checkpoints as evidence, and leave its state unchanged."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from tests.conftest import fresh_pg_database
from tests.helpers import STAFF, START, access, explode_ledger

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.errors import AccessDenied, ConfigError, InputError
from custodes.ledger import Checkpoint, NoteSigner, open_note, verify_cosignature
from custodes.ledger.witness import Witness, WitnessRefusal
from custodes.sim import generate_people
from custodes.vault import Vault

PERSON = generate_people(1, seed=62)[0]
ORIGIN = "custodes.local/default"
MakeLog = Callable[..., Vault]


@pytest.fixture
def make_log(
    tmp_path: Path, store_settings: StoreSettings, request: pytest.FixtureRequest
) -> MakeLog:
    """A vault home (own store) signing a checkpoint every 10 entries; ``keys_from`` gives it
    another home's log signing key (same origin): a rewritten log the log key would sign."""
    homes: list[Path] = []

    def make(name: str, clock: ManualClock, keys_from: Vault | None = None) -> Vault:
        home = tmp_path / name
        url = fresh_pg_database(request) if store_settings.url and homes else store_settings.url
        settings = init_home(home, backend=store_settings.backend, url=url)
        homes.append(home)
        path = home / "custodes.toml"
        path.write_text(
            path.read_text(encoding="utf-8").replace(
                "checkpoint_every = 1000", "checkpoint_every = 10"
            ),
            encoding="utf-8",
        )
        if keys_from is not None:
            for key in (settings.log_signing_key_path, settings.log_vkey_path):
                shutil.copy2(keys_from.settings.keys_dir / key.name, key)
        vault = Vault.open(Settings.load(home), clock=clock)
        request.addfinalizer(vault.close)
        for accessor in STAFF:
            vault.add_accessor(accessor)
        return vault

    return make


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    return Witness.create(tmp_path / "witness", "witness.example/w1")


def grow(vault: Vault, n: int) -> None:
    """``n`` more access events (refused reads), committed one by one."""
    for _ in range(n):
        with pytest.raises(AccessDenied):
            vault.get(access(vault, "inv-1", None), "identity", PERSON.id_number)


def published(vault: Vault) -> str:
    return (vault.settings.ledger_dir / "checkpoint").read_text(encoding="utf-8")


def trust(witness: Witness, vault: Vault) -> None:
    witness.trust(vault.settings.log_vkey_path.read_text(encoding="utf-8"))


def state_of(tmp_path: Path) -> bytes:
    return (tmp_path / "witness" / "state.json").read_bytes()


def refuse(witness: Witness, note: str, vault: Vault, match: str | None) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal, match=match) as caught:
        witness.cosign(note, vault.ledger, START)
    assert caught.value.presented == note
    return caught.value


def test_cosigns_first_contact_and_consistent_growth(make_log: MakeLog, witness: Witness) -> None:
    log = make_log("log", ManualClock(START))
    trust(witness, log)
    grow(log, 25)
    note20 = published(log)
    now = START + timedelta(minutes=5)
    first = witness.cosign(note20, log.ledger, now)
    assert first.previous is None and first.checkpoint.size == 20
    assert verify_cosignature(first.cosignature, first.checkpoint.body(), witness.vkey) == int(
        now.timestamp()
    )
    log_vkey = log.settings.log_vkey_path.read_text(encoding="utf-8").strip()
    _, signers = open_note(first.cosigned_note, {ORIGIN: log_vkey, witness.name: witness.vkey})
    assert signers == [ORIGIN, witness.name]
    grow(log, 10)
    note30 = published(log)
    second = witness.cosign(note30, log.ledger, now)
    assert second.previous == note20 and second.checkpoint.size == 30
    assert witness.witnessed(ORIGIN) == note30
    assert witness.cosign(note30, log.ledger, now).previous == note30  # same checkpoint again


def test_refuses_a_rollback(make_log: MakeLog, witness: Witness, tmp_path: Path) -> None:
    log = make_log("log", ManualClock(START))
    trust(witness, log)
    grow(log, 20)
    note20 = published(log)
    grow(log, 10)
    witness.cosign(published(log), log.ledger, START)
    before = state_of(tmp_path)
    refusal = refuse(witness, note20, log, "rollback")
    assert refusal.witnessed == published(log)
    assert state_of(tmp_path) == before


def test_refuses_a_rewritten_log_of_equal_or_larger_size(
    make_log: MakeLog, witness: Witness, tmp_path: Path
) -> None:
    """A second log holding other events, signed with the same key and origin: the split view
    (equal size) and the rewrite (larger size) a compromised log key could produce."""
    log = make_log("log", ManualClock(START))
    trust(witness, log)
    grow(log, 20)
    cosigned = published(log)
    witness.cosign(cosigned, log.ledger, START)
    before = state_of(tmp_path)
    forged = make_log("forged", ManualClock(START + timedelta(hours=1)), keys_from=log)
    grow(forged, 20)
    refusal = refuse(witness, published(forged), forged, "split view")
    assert refusal.witnessed == cosigned
    grow(forged, 10)
    refuse(witness, published(forged), forged, "not an extension of the cosigned size 20")
    assert state_of(tmp_path) == before
    assert witness.witnessed(ORIGIN) == cosigned


def test_refuses_a_checkpoint_not_signed_by_the_pinned_key(
    make_log: MakeLog, witness: Witness, tmp_path: Path
) -> None:
    log = make_log("log", ManualClock(START))
    trust(witness, log)
    grow(log, 10)
    body = Checkpoint(origin=ORIGIN, size=10, root=log.ledger.root(10)).body()
    impostor = NoteSigner.generate(ORIGIN).sign(body)
    refuse(witness, impostor, log, "not validly signed")
    stranger = NoteSigner.generate("other.example/log")
    refuse(witness, stranger.sign(body.replace(ORIGIN, stranger.name)), log, "no trusted log key")
    genuine = published(log)
    altered = genuine.replace("\n10\n", "\n11\n", 1)
    refuse(witness, altered, log, "not validly signed")
    assert json.loads(state_of(tmp_path))["logs"][ORIGIN]["checkpoint"] is None


def _raw_sql(vault: Vault, statements: list[str]) -> None:
    """Run SQL straight through the driver, as an intruder with database credentials would.
    (This knows the storage layout: adapt it when the layout changes.)"""
    store = vault.settings.store
    if store.backend == "sqlite":
        with closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
            for sql in statements:
                conn.execute(sql)
        return
    assert store.url is not None
    with psycopg.connect(store.url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[call-overload]


def _unlock(vault: Vault, table: str, action: str) -> str:
    if vault.settings.store.backend == "sqlite":
        return f"DROP TRIGGER {table}_no_{action}"
    return f"DROP TRIGGER {table}_append_only ON {table}"


def _edit(vault: Vault) -> None:
    _raw_sql(
        vault,
        [_unlock(vault, "events", "update"), "UPDATE events SET accessor = 'x' WHERE seq = 5"],
    )


def _delete(vault: Vault) -> None:
    _raw_sql(vault, [_unlock(vault, "events", "delete"), "DELETE FROM events WHERE seq = 5"])


def _swap(vault: Vault) -> None:
    moves = [(5, 1_000_000), (6, 5), (1_000_000, 6)]
    explode_ledger(vault.settings.store)  # one row per entry: each move is one entry
    _raw_sql(
        vault,
        [_unlock(vault, "ledger_bundles", "update")]
        + [f"UPDATE ledger_bundles SET seq = {new} WHERE seq = {old}" for old, new in moves],
    )


def _truncate(vault: Vault) -> None:
    explode_ledger(vault.settings.store)
    _raw_sql(
        vault,
        [
            _unlock(vault, "events", "delete"),
            _unlock(vault, "ledger_bundles", "delete"),
            "DELETE FROM events WHERE seq >= 15",
            "DELETE FROM ledger_bundles WHERE seq >= 15",
        ],
    )


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    # A truncated log refuses to sign past it; re-grown with other entries, its root at the
    # cosigned size differs and no single entry can be named.
    [(_edit, 5), (_delete, 5), (_swap, 5), (_truncate, None)],
    ids=["edit", "delete", "swap", "truncate"],
)
def test_refuses_the_next_checkpoint_after_stored_entries_were_tampered_with(
    make_log: MakeLog,
    witness: Witness,
    tmp_path: Path,
    tamper: Callable[[Vault], None],
    first_bad: int | None,
) -> None:
    clock = ManualClock(START)
    log = make_log("log", clock)
    trust(witness, log)
    grow(log, 20)
    witness.cosign(published(log), log.ledger, START)
    before = state_of(tmp_path)
    tamper(log)
    clock.advance(timedelta(minutes=1))  # later events differ from any that were removed
    grow(log, 10)  # the log signs its next checkpoint, or fails to and logs why
    refusal = refuse(witness, published(log), log, None)
    assert "do not match the signed checkpoint" in refusal.reason
    assert refusal.witnessed is not None
    assert refusal.first_bad_index == first_bad
    assert refusal.as_dict()["first_bad_index"] == first_bad
    assert state_of(tmp_path) == before


def test_trust_pins_one_note_key_per_origin(witness: Witness) -> None:
    first = NoteSigner.generate(ORIGIN)
    assert witness.trust(first.vkey) == ORIGIN
    assert witness.trust(first.vkey) == ORIGIN  # idempotent
    with pytest.raises(InputError, match="already trusts another key"):
        witness.trust(NoteSigner.generate(ORIGIN).vkey)
    with pytest.raises(InputError, match="witness"):
        witness.trust(witness.vkey)
    with pytest.raises(InputError, match="not a log vkey"):
        witness.trust("custodes.local/default+00000000+AAAA")
    assert witness.trusted() == {ORIGIN: first.vkey}


def test_the_witness_key_is_private(tmp_path: Path, witness: Witness) -> None:
    key = tmp_path / "witness" / "witness.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert Witness.open(tmp_path / "witness").vkey == witness.vkey
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others"):
        Witness.open(tmp_path / "witness")
    with pytest.raises(ConfigError, match="already holds a witness"):
        Witness.create(tmp_path / "witness", "again")
