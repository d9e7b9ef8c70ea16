"""Signed checkpoints: a private log key made by init, checkpoints every N entries or T seconds,
a history whose every line must verify, and a log that refuses to contradict its own history."""

from __future__ import annotations

import base64
import json
import logging
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import fresh_pg_database
from tests.helpers import STAFF, START, access

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.errors import AccessDenied, ConfigError, VerificationError
from custodes.ledger import CheckpointLog, NoteSigner, decode_vkey, open_note
from custodes.ledger._checkpoint import read_signing_key
from custodes.sim import generate_people
from custodes.vault import Vault

PERSON = generate_people(1, seed=61)[0]
OpenVault = Callable[..., Vault]


def configure(home: Path, **ledger: object) -> None:
    """Rewrite ``[ledger]`` settings in the home's custodes.toml."""
    path = home / "custodes.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in ledger.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =")]
        at = lines.index("[ledger]") + 1
        lines.insert(at, f"{key} = {json.dumps(value)}")
        text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def open_vault(
    tmp_path: Path, store_settings: StoreSettings, request: pytest.FixtureRequest
) -> OpenVault:
    """Make a vault home with the given [ledger] settings and open it on a manual clock; each
    home has its own store."""

    homes: list[Path] = []

    def make(clock: ManualClock, name: str = "home", **ledger: object) -> Vault:
        home = tmp_path / name
        if home not in homes:
            url = store_settings.url
            if url is not None and homes:
                url = fresh_pg_database(request)
            init_home(home, backend=store_settings.backend, url=url)
            homes.append(home)
        configure(home, **ledger)
        vault = Vault.open(Settings.load(home), clock=clock)
        request.addfinalizer(vault.close)
        for accessor in STAFF:
            vault.add_accessor(accessor)
        return vault

    return make


def record_denials(vault: Vault, n: int) -> None:
    """``n`` access events, each committed in its own transaction (a refused read)."""
    for _ in range(n):
        with pytest.raises(AccessDenied):
            vault.get(access(vault, "inv-1", None), "identity", PERSON.id_number)


def log_of(vault: Vault) -> CheckpointLog:
    return CheckpointLog.open(vault.settings)


def test_init_keeps_the_log_key_private_beside_the_other_keys_and_out_of_the_database(
    open_vault: OpenVault,
) -> None:
    vault = open_vault(ManualClock(START))
    settings = vault.settings
    key = settings.log_signing_key_path
    assert key.parent == settings.root_key_path.parent
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    if settings.store.backend == "sqlite":
        assert settings.store.path.parent.resolve() != key.parent.resolve()
    name, _ = decode_vkey(settings.log_vkey_path.read_text(encoding="utf-8").strip())
    assert name == settings.ledger_origin == "custodes.local/default"
    raw = read_signing_key(key, what="log signing key")
    signer = NoteSigner.from_private_bytes(name, raw)
    assert signer.vkey == log_of(vault).vkey
    record_denials(vault, 3)
    log_of(vault).sign(vault.ledger, START)
    if settings.store.backend == "sqlite":
        stored = b"".join(p.read_bytes() for p in settings.store.path.parent.iterdir())
        assert raw not in stored and base64.b64encode(raw) not in stored


def test_a_group_readable_signing_key_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    settings = init_home(tmp_path / "home")
    settings.log_signing_key_path.chmod(0o640)
    with pytest.raises(ConfigError, match=r"log-signing\.key.*group or others.*chmod 600"):
        Vault.open(settings)
    with pytest.raises(ConfigError, match="group or others"):
        CheckpointLog.open(settings)


def test_an_origin_changed_after_init_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home)
    configure(home, origin="other.example/log")
    with pytest.raises(ConfigError, match=r"log\.vkey does not match"):
        CheckpointLog.open(Settings.load(home))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("origin", "has space"),
        ("origin", "a+b"),
        ("origin", ""),
        ("checkpoint_every", 0),
        ("checkpoint_seconds", -5),
        ("checkpoint_every", "10"),
    ],
)
def test_invalid_ledger_settings_name_the_key(tmp_path: Path, key: str, value: object) -> None:
    home = tmp_path / "home"
    init_home(home)
    configure(home, **{key: value})
    with pytest.raises(ConfigError, match=f"ledger.{key}"):
        Settings.load(home)


def test_a_checkpoint_is_signed_every_n_entries(open_vault: OpenVault) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=10, checkpoint_seconds=3600)
    record_denials(vault, 35)
    log = log_of(vault)
    history = log.history()
    assert [s.checkpoint.size for s in history] == [10, 20, 30]
    for signed in history:
        assert signed.checkpoint.root == vault.ledger.root(signed.checkpoint.size)
        assert signed.checkpoint.origin == "custodes.local/default"
        text, signers = open_note(signed.note, {log.origin: log.vkey})
        assert signers == [log.origin] and text == signed.checkpoint.body()
    latest = log.latest()
    assert latest == history[-1]
    assert log.checkpoint_path.read_text(encoding="utf-8") == latest.note


def test_a_checkpoint_is_signed_after_t_seconds_if_the_log_grew(open_vault: OpenVault) -> None:
    clock = ManualClock(START)
    vault = open_vault(clock, checkpoint_every=1000, checkpoint_seconds=60)
    record_denials(vault, 3)
    assert log_of(vault).latest() is None
    clock.advance(timedelta(seconds=61))
    record_denials(vault, 1)
    assert [s.checkpoint.size for s in log_of(vault).history()] == [4]
    clock.advance(timedelta(seconds=30))
    record_denials(vault, 1)
    assert len(log_of(vault).history()) == 1
    clock.advance(timedelta(seconds=30))
    record_denials(vault, 1)
    sizes = [(s.checkpoint.size, s.signed_at) for s in log_of(vault).history()]
    assert sizes == [(4, START + timedelta(seconds=61)), (6, START + timedelta(seconds=121))]
    clock.advance(timedelta(hours=1))
    assert log_of(vault).maybe_sign(vault.ledger, clock()) is None  # time alone signs nothing


def test_deciding_that_nothing_is_due_touches_neither_store_nor_files(
    open_vault: OpenVault,
) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=10, checkpoint_seconds=3600)
    record_denials(vault, 12)
    log = log_of(vault)
    assert log.maybe_sign(vault.ledger, START) is None  # reads the history once
    log.history_path.unlink()
    vault.store.close()  # any query now raises StoreError
    assert log.maybe_sign(vault.ledger, START, size=13) is None


def test_a_failure_to_sign_is_logged_not_raised_and_retried(
    open_vault: OpenVault, caplog: pytest.LogCaptureFixture
) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=5, checkpoint_seconds=3600)
    history = vault.settings.ledger_dir / "checkpoints.jsonl"
    history.mkdir()  # the history cannot be opened: signing fails with OSError
    with caplog.at_level(logging.ERROR, logger="custodes.vault"):
        record_denials(vault, 6)  # each read still refused as policy says, nothing hidden
    assert "could not sign a checkpoint" in caplog.text
    assert vault.ledger.size() == 6
    history.rmdir()
    record_denials(vault, 1)
    assert [s.checkpoint.size for s in log_of(vault).history()] == [7]


def test_two_logs_on_one_home_do_not_sign_twice(open_vault: OpenVault) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=10, checkpoint_seconds=3600)
    first, second = log_of(vault), log_of(vault)
    assert first.maybe_sign(vault.ledger, START) is None
    assert second.maybe_sign(vault.ledger, START) is None
    record_denials(vault, 10)  # the vault's own log signs size 10
    assert first.maybe_sign(vault.ledger, START, size=10) is None
    assert second.maybe_sign(vault.ledger, START) is None
    assert [s.checkpoint.size for s in first.history()] == [10]


def test_sign_returns_the_latest_when_nothing_grew(open_vault: OpenVault) -> None:
    vault = open_vault(ManualClock(START))
    record_denials(vault, 4)
    log = log_of(vault)
    one = log.sign(vault.ledger, START)
    two = log.sign(vault.ledger, START + timedelta(seconds=5))
    assert one == two and len(log.history()) == 1


def _edit_size(item: dict[str, object]) -> None:
    item["size"] = 11


def _edit_root(item: dict[str, object]) -> None:
    item["root"] = base64.b64encode(bytes(32)).decode()


def _edit_signature(item: dict[str, object]) -> None:
    note = str(item["note"])
    item["note"] = note[:-6] + ("AAAAA" if note[-6:-1] != "AAAAA" else "BBBBB") + "\n"


def _edit_body(item: dict[str, object]) -> None:
    item["note"] = str(item["note"]).replace("\n10\n", "\n11\n", 1)
    item["size"] = 11


@pytest.mark.parametrize("edit", [_edit_size, _edit_root, _edit_signature, _edit_body])
def test_an_edited_history_line_is_rejected(
    open_vault: OpenVault, edit: Callable[[dict[str, object]], None]
) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=10, checkpoint_seconds=3600)
    record_denials(vault, 25)
    log = log_of(vault)
    lines = log.history_path.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[0])
    edit(item)
    lines[0] = json.dumps(item)
    log.history_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(VerificationError, match="line 1"):
        log.history()
    lines.reverse()  # the edited line last: latest() checks it too
    log.history_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(VerificationError, match="last line"):
        log.latest()


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(
    open_vault: OpenVault,
) -> None:
    vault = open_vault(ManualClock(START), checkpoint_every=10, checkpoint_seconds=3600)
    record_denials(vault, 10)
    log = log_of(vault)
    with log.history_path.open("ab") as handle:
        handle.write(b'{"size": 20, "ro')  # a crash mid-append
    assert [s.checkpoint.size for s in log.history()] == [10]
    record_denials(vault, 10)
    assert [s.checkpoint.size for s in log.history()] == [10, 20]


def test_the_log_refuses_to_sign_a_history_it_contradicts(open_vault: OpenVault) -> None:
    """A checkpoint log pointed at another store holding a different, shorter or equal-size
    log refuses to sign: it would contradict a checkpoint it already published."""
    original = open_vault(ManualClock(START), "one", checkpoint_every=10, checkpoint_seconds=3600)
    record_denials(original, 20)
    later = ManualClock(START + timedelta(hours=1))  # same kind of events, other timestamps
    other = open_vault(later, "two", checkpoint_every=1000, checkpoint_seconds=3600)
    log = log_of(original)
    before = log.history_path.read_bytes()
    with pytest.raises(VerificationError, match="smaller log"):
        log.sign(other.ledger, START)  # empty: a truncation
    record_denials(other, 20)
    with pytest.raises(VerificationError, match="rewritten log"):
        log.sign(other.ledger, START)  # same size, other entries
    record_denials(other, 5)
    with pytest.raises(VerificationError, match="consistency proof does not lead"):
        log.sign(other.ledger, START)  # larger, not an extension
    assert log.history_path.read_bytes() == before
