"""custodes doctor: each unsafe setting is reported, and a sound vault is not accused of one.

Every check gets a vault where it must fail (or warn) and one where it must pass; the database
checks run on both backends, tampering with the schema the way an insider with database access
would.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.doctor import CHECKS, Report, Status, run_doctor
from custodes.doctor._store import _tls
from custodes.ledger import CheckpointLog
from custodes.ledger.witness import Witness, publish_cosignature
from custodes.vault import Vault
from tests.helpers import START, access, make_vault, raw_sql

SUBJECT = "11010519491231002X"


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    """A vault with its staff registered and a few reads and writes on the ledger."""
    clock = ManualClock(START)
    opened = make_vault(tmp_path / "home", store_settings, clock)
    opened.put(
        access(opened, "reg-1", "registration"),
        "identity",
        SUBJECT,
        {"name": "王芳", "id_number": SUBJECT},
    )
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        opened.get(access(opened, "duty-1", "identity_check"), "identity", SUBJECT)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_vault(tmp_path: Path) -> Iterator[Vault]:
    """A vault on SQLite, for the checks of its database files."""
    store = StoreSettings(backend="sqlite", path=tmp_path / "home" / "data" / "custodes.db")
    opened = make_vault(tmp_path / "home", store)
    yield opened
    opened.close()


def _doctor(vault: Vault) -> Report:
    return run_doctor(Settings.load(vault.settings.home))


def _status(report: Report, check: str) -> list[Status]:
    return [f.status for f in report.findings if f.check == check]


def _message(report: Report, check: str) -> str:
    return " ".join(f.message for f in report.findings if f.check == check)


def _set(settings: Settings, section: str, line: str) -> None:
    """Add ``line`` to ``[section]`` of custodes.toml (appending the table if it is absent)."""
    path = settings.home / "custodes.toml"
    text = path.read_text(encoding="utf-8")
    header = f"[{section}]\n"
    text = (
        text.replace(header, header + line + "\n", 1)
        if header in text
        else (text + f"\n{header}{line}\n")
    )
    path.write_text(text, encoding="utf-8")


def _sign(vault: Vault) -> None:
    CheckpointLog.open(vault.settings).sign(vault.ledger, START + timedelta(hours=1))


# -- a sound vault -------------------------------------------------------------------------------


def test_a_fresh_vault_has_nothing_unsafe_and_says_what_to_harden(vault: Vault) -> None:
    _sign(vault)
    report = _doctor(vault)
    assert report.worst is Status.WARN, [f for f in report.findings if f.status is Status.FAIL]
    warned = {f.check for f in report.findings if f.status is Status.WARN}
    assert {"ledger.witnesses", "detect.stream", "forensics.canaries", "policy.oversight"} <= (
        warned
    )
    for check in ("home.files", "keys.files", "keys.root", "store.guards", "policy.grants"):
        assert _status(report, check) == [Status.OK], check
    assert _status(report, "ledger.checkpoint") == [Status.OK]
    assert "matches the checkpoint signed at 4 entries" in _message(report, "ledger.checkpoint")


def test_every_check_reports_unless_it_does_not_apply_to_the_backend(vault: Vault) -> None:
    report = _doctor(vault)
    other_backend = {"sqlite": "store.tls", "postgres": "store.files"}
    expected = {name for name, _ in CHECKS} - {other_backend[vault.settings.store.backend]}
    assert expected <= {f.check for f in report.findings}
    assert all(f.message for f in report.findings)


def test_findings_never_quote_secrets(vault: Vault) -> None:
    secret = json.loads(vault.settings.root_key_path.read_text())["secret"]
    text = json.dumps(_doctor(vault).as_dict())
    assert secret not in text and SUBJECT not in text and "王芳" not in text


# -- files and keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["custodes.toml", "policy.toml", "schema.toml", "."])
def test_settings_writable_by_others_fail(vault: Vault, name: str) -> None:
    path = vault.settings.home / name
    path.chmod(0o777 if name == "." else 0o666)
    report = _doctor(vault)
    assert _status(report, "home.files") == [Status.FAIL]
    assert str(path.resolve() if name == "." else path) in _message(report, "home.files")


@pytest.mark.parametrize("name", ["root.key", "log-signing.key", "subject-keys.db"])
def test_key_files_readable_by_others_fail(vault: Vault, name: str) -> None:
    (vault.settings.keys_dir / name).chmod(0o644)
    report = _doctor(vault)
    assert _status(report, "keys.files") == [Status.FAIL]
    assert name in _message(report, "keys.files")


def test_a_key_directory_others_can_write_fails_one_they_can_list_warns(vault: Vault) -> None:
    keys = vault.settings.keys_dir
    keys.chmod(0o755)
    assert _status(_doctor(vault), "keys.files") == [Status.WARN]
    keys.chmod(0o733)
    assert _status(_doctor(vault), "keys.files") == [Status.FAIL]
    keys.chmod(0o700)
    assert _status(_doctor(vault), "keys.files") == [Status.OK]


def test_a_missing_key_file_fails(vault: Vault) -> None:
    vault.settings.log_signing_key_path.unlink()
    report = _doctor(vault)
    assert _status(report, "keys.files") == [Status.FAIL]
    assert "log-signing.key" in _message(report, "keys.files")


def test_a_demo_root_key_fails_even_with_its_mark_removed(tmp_path: Path) -> None:
    from custodes._home import init_home

    settings = init_home(tmp_path / "demo", demo_seed=41)
    report = run_doctor(settings)
    assert _status(report, "keys.root") == [Status.FAIL]
    assert "custodes demo" in _message(report, "keys.root")
    key = settings.root_key_path
    body = json.loads(key.read_text())
    assert body.pop("demo") is True
    key.write_text(json.dumps(body))  # an insider hides where the key came from
    assert _status(run_doctor(settings), "keys.root") == [Status.FAIL]


def test_keys_nested_in_the_database_directory_fail(sqlite_vault: Vault) -> None:
    vault = sqlite_vault
    home = vault.settings.home
    vault.close()
    os.rename(home / "keys", home / "data" / "keys")
    text = (home / "custodes.toml").read_text().replace('dir = "keys"', 'dir = "data/keys"')
    (home / "custodes.toml").write_text(text)
    report = run_doctor(Settings.load(home))
    assert _status(report, "keys.apart") == [Status.FAIL]


def test_keys_on_the_database_volume_warn(vault: Vault) -> None:
    status = _status(_doctor(vault), "keys.apart")
    expected = Status.WARN if vault.settings.store.backend == "sqlite" else Status.OK
    assert status == [expected]


def test_a_database_file_others_can_read_fails(sqlite_vault: Vault) -> None:
    sqlite_vault.settings.store.path.chmod(0o644)
    assert _status(_doctor(sqlite_vault), "store.files") == [Status.FAIL]


def test_a_missing_database_is_reported_once_and_nothing_is_created(
    sqlite_vault: Vault,
) -> None:
    vault = sqlite_vault
    path = vault.settings.store.path
    vault.close()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    report = run_doctor(Settings.load(vault.settings.home))
    assert report.worst is Status.FAIL
    assert _status(report, "store.files") == [Status.FAIL]
    cannot = [f for f in report.findings if "cannot check the database" in f.message]
    assert len(cannot) == 1
    assert not path.exists()


# -- the database's guards -----------------------------------------------------------------------


def test_a_dropped_append_only_trigger_fails(vault: Vault) -> None:
    if vault.settings.store.backend == "sqlite":
        raw_sql(vault, "DROP TRIGGER ledger_bundles_no_delete")
        gone = "ledger_bundles_no_delete"
    else:
        raw_sql(vault, "DROP TRIGGER ledger_bundles_no_truncate ON ledger_bundles")
        gone = "ledger_bundles_no_truncate"
    report = _doctor(vault)
    assert _status(report, "store.guards") == [Status.FAIL]
    assert gone in _message(report, "store.guards")


def test_a_trigger_replaced_by_one_that_lets_edits_through_fails(vault: Vault) -> None:
    if vault.settings.store.backend == "sqlite":
        raw_sql(vault, "DROP TRIGGER events_no_update")
        raw_sql(
            vault,
            "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT 1; END",
        )
    else:
        raw_sql(
            vault,
            "CREATE OR REPLACE FUNCTION custodes_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        )
    report = _doctor(vault)
    assert _status(report, "store.guards") == [Status.FAIL]
    assert "events_" in _message(report, "store.guards")


@pytest.mark.postgres
def test_a_disabled_trigger_fails(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_database")
    opened = make_vault(tmp_path / "home", StoreSettings(backend="postgres", url=url))
    try:
        raw_sql(opened, "ALTER TABLE events DISABLE TRIGGER events_append_only")
        report = _doctor(opened)
    finally:
        opened.close()
    assert _status(report, "store.guards") == [Status.FAIL]
    assert "events_append_only" in _message(report, "store.guards")


@pytest.mark.postgres
def test_a_superuser_connection_and_a_password_in_the_file_warn(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_database")
    with_password = url.replace("postgres@", "postgres:hunter2@", 1)
    opened = make_vault(tmp_path / "home", StoreSettings(backend="postgres", url=with_password))
    try:
        report = _doctor(opened)
    finally:
        opened.close()
    assert _status(report, "store.role") == [Status.WARN]  # the tests connect as postgres
    assert "superuser" in _message(report, "store.role")
    assert _status(report, "store.password") == [Status.WARN]
    assert "hunter2" not in json.dumps(report.as_dict())
    assert _status(report, "store.tls") == [Status.OK]  # 127.0.0.1


@pytest.mark.parametrize(
    ("info", "status"),
    [
        ({"host": "db.example.org"}, Status.FAIL),
        ({"host": "db.example.org", "sslmode": "disable"}, Status.FAIL),
        ({"host": "10.0.0.5", "sslmode": "prefer"}, Status.FAIL),
        ({"host": "db.example.org", "sslmode": "require"}, Status.WARN),
        ({"host": "db.example.org", "sslmode": "verify-full"}, Status.OK),
        ({"host": "127.0.0.1,db.example.org", "sslmode": "allow"}, Status.FAIL),
        ({"host": "/var/run/postgresql"}, Status.OK),
        ({"host": "localhost"}, Status.OK),
        ({"host": "::1"}, Status.OK),
        ({}, Status.OK),
    ],
)
def test_an_unencrypted_connection_to_another_host_fails(
    info: dict[str, str], status: Status
) -> None:
    assert _tls(info).status is status


def test_durability_normal_warns_and_full_passes(vault: Vault) -> None:
    report = _doctor(vault)
    if vault.settings.store.backend == "postgres":
        assert _status(report, "store.durability") == [Status.OK]  # fsync and sync commit on
        return
    assert _status(report, "store.durability") == [Status.WARN]
    path = vault.settings.home / "custodes.toml"
    path.write_text(path.read_text().replace('durability = "normal"', 'durability = "full"'))
    assert _status(_doctor(vault), "store.durability") == [Status.OK]


# -- the ledger ----------------------------------------------------------------------------------


def test_a_rewritten_stored_hash_contradicts_the_signed_checkpoint(vault: Vault) -> None:
    _sign(vault)  # 4 entries: entry 3 holds the root of the whole tree
    if vault.settings.store.backend == "sqlite":
        raw_sql(vault, "DROP TRIGGER ledger_bundles_no_update")
    else:
        raw_sql(vault, "DROP TRIGGER ledger_bundles_append_only ON ledger_bundles")
    raw_sql(vault, "UPDATE ledger_bundles SET hashes = ? WHERE seq = 3", (bytes(96),))
    report = _doctor(vault)
    assert _status(report, "ledger.checkpoint") == [Status.FAIL]
    assert "rewritten" in _message(report, "ledger.checkpoint")


def test_entries_removed_below_the_signed_size_fail(vault: Vault) -> None:
    _sign(vault)
    if vault.settings.store.backend == "sqlite":
        raw_sql(vault, "DROP TRIGGER ledger_bundles_no_delete")
    else:
        raw_sql(vault, "DROP TRIGGER ledger_bundles_append_only ON ledger_bundles")
    raw_sql(vault, "DELETE FROM ledger_bundles WHERE seq >= 2")
    report = _doctor(vault)
    assert _status(report, "ledger.checkpoint") == [Status.FAIL]
    assert "2 entries but its checkpoint signed 4" in _message(report, "ledger.checkpoint")


def test_entries_without_a_checkpoint_warn(vault: Vault) -> None:
    for name in ("checkpoint", "checkpoints.jsonl"):  # lost, or never signed
        (vault.settings.ledger_dir / name).unlink(missing_ok=True)
    report = _doctor(vault)
    assert _status(report, "ledger.checkpoint") == [Status.WARN]
    assert "no signed checkpoint" in _message(report, "ledger.checkpoint")


def test_a_configured_witness_that_never_cosigned_warns_until_it_does(
    vault: Vault, tmp_path: Path
) -> None:
    _sign(vault)
    witness = Witness.create(tmp_path / "witness", "witness.example.org/w1")
    _set(vault.settings, "ledger", f"witnesses = [{json.dumps(witness.vkey)}]")
    report = _doctor(vault)
    assert _status(report, "ledger.witnesses") == [Status.WARN]
    assert "no configured witness has cosigned" in _message(report, "ledger.witnesses")
    log = CheckpointLog.open(vault.settings)
    witness.trust(log.vkey)
    latest = log.latest()
    assert latest is not None
    cosigned = witness.cosign(latest.note, vault.ledger, START + timedelta(hours=2))
    publish_cosignature(vault.settings.ledger_dir, witness.name, cosigned)
    report = _doctor(vault)
    assert _status(report, "ledger.witnesses") == [Status.OK]
    assert "witness.example.org/w1" in _message(report, "ledger.witnesses")


# -- policy, watchers, API -----------------------------------------------------------------------

_UNLIMITED = """
[[grants]]
role = "clerk"
purpose = "identity_check"
actions = ["get"]
collections = ["identity"]
fields = ["name", "phone"]
"""
_EXPORT = """
[[grants]]
role = "clerk"
purpose = "statistics"
actions = ["export"]
collections = ["flights"]
fields = ["*"]
"""
_SHRED = """
[[grants]]
role = "clerk"
purpose = "erasure"
actions = ["shred"]
collections = ["*"]
fields = ["*"]
requires_case = true
"""


@pytest.mark.parametrize(
    ("grant", "words"),
    [
        (_UNLIMITED, "any number of people a day without a case"),
        (_EXPORT, "without a case approved by a second person"),
        (_SHRED, "without a second person's approval"),
    ],
    ids=["unlimited-reads", "unapproved-export", "unapproved-erasure"],
)
def test_grants_that_leave_room_for_abuse_warn(vault: Vault, grant: str, words: str) -> None:
    policy = vault.settings.policy_path
    policy.write_text(policy.read_text() + grant)
    report = _doctor(vault)
    assert Status.WARN in _status(report, "policy.grants")
    assert words in _message(report, "policy.grants")
    assert re.search(r"grant \d+ \(clerk / ", _message(report, "policy.grants"))


def test_an_invalid_policy_fails_with_its_error(vault: Vault) -> None:
    vault.settings.policy_path.write_text("[[grants]]\nrole = 3\n")
    report = _doctor(vault)
    assert _status(report, "policy.grants") == [Status.FAIL]
    assert "policy" in _message(report, "policy.grants")
    assert len([f for f in report.findings if "cannot check the schema" in f.message]) == 1


def test_an_active_auditor_satisfies_oversight(vault: Vault) -> None:
    from custodes.model import Accessor

    vault.add_accessor(Accessor("aud-1", "oversight-office", "auditor"))
    assert _status(_doctor(vault), "policy.oversight") == [Status.OK]
    vault.add_accessor(Accessor("aud-1", "oversight-office", "auditor", active=False))
    assert _status(_doctor(vault), "policy.oversight") == [Status.WARN]


def test_streaming_detection_and_canaries_pass_once_on(vault: Vault) -> None:
    from custodes.forensics import plant_canaries

    _set(vault.settings, "detect", "stream = true")
    plant_canaries(vault, access(vault, "reg-1", "registration"), count=3, rng=random.Random(5))
    report = _doctor(vault)
    assert _status(report, "detect.stream") == [Status.OK]
    assert _status(report, "forensics.canaries") == [Status.OK]
    assert "3 canary subjects" in _message(report, "forensics.canaries")


@pytest.mark.parametrize(
    ("lines", "check", "status"),
    [
        (
            [
                'oidc_issuer = "https://id.example.org"',
                'oidc_audience = "custodes"',
                'oidc_jwks = "http://id.example.org/jwks.json"',
            ],
            "api.oidc",
            Status.FAIL,
        ),
        (
            [
                'oidc_issuer = "http://id.example.org"',
                'oidc_audience = "custodes"',
                'oidc_jwks = "https://id.example.org/jwks.json"',
            ],
            "api.oidc",
            Status.WARN,
        ),
        (["token_days = 3650"], "api.lifetimes", Status.WARN),
        (["max_body_bytes = 1073741824"], "api.limits", Status.WARN),
    ],
    ids=["jwks-over-http", "issuer-not-https", "decade-tokens", "gigabyte-bodies"],
)
def test_unsafe_api_settings(vault: Vault, lines: list[str], check: str, status: Status) -> None:
    for line in lines:
        _set(vault.settings, "api", line)
    assert _status(_doctor(vault), check) == [status]


# -- the command ---------------------------------------------------------------------------------


def test_cli_exit_status_json_and_strict(vault: Vault, capsys: pytest.CaptureFixture[str]) -> None:
    from custodes.cli import main

    home = str(vault.settings.home)
    assert main(["doctor", "--home", home]) == 0  # warnings only
    assert main(["doctor", "--home", home, "--strict"]) == 1
    capsys.readouterr()
    assert main(["doctor", "--home", home, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["worst"] == "warn" and data["counts"]["fail"] == 0
    assert {"check", "status", "message", "fix"} <= set(data["findings"][0])
    vault.settings.policy_path.chmod(0o666)
    assert main(["doctor", "--home", home]) == 1
    assert "writable by group or others" in capsys.readouterr().out


def test_an_unreachable_database_is_one_failure_on_one_line(tmp_path: Path) -> None:
    from custodes._home import init_home

    settings = init_home(tmp_path / "home")
    path = settings.home / "custodes.toml"
    text = path.read_text().replace(
        'backend = "sqlite"', 'backend = "postgres"\nurl = "postgresql://nobody@127.0.0.1:1/x"'
    )
    path.write_text(text)
    report = run_doctor(Settings.load(settings.home))
    failed = [f for f in report.findings if f.status is Status.FAIL]
    assert len(failed) == 1 and "cannot check the database" in failed[0].message
    assert "\n" not in failed[0].message
    assert _status(report, "keys.root") == [Status.OK]  # the checks that need no database ran


def test_cli_on_a_directory_that_is_no_vault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from custodes.cli import main

    assert main(["doctor", "--home", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "no vault at" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "custodes.toml").exists()
