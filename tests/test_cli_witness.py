"""``custodes ledger checkpoint`` and ``custodes witness init|trust|cosign|show`` on a SQLite vault:
a cosignature that verifies, and refusals that exit 1 and print both checkpoints as evidence."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from custodes.cli import main
from custodes.config import Settings
from custodes.errors import AccessDenied
from custodes.ledger import NoteSigner, open_note, verify_cosignature
from custodes.sim import generate_people
from custodes.vault import Vault
from tests.helpers import STAFF, access

PERSON = generate_people(1, seed=63)[0]
ORIGIN = "custodes.local/default"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def grow(home: Path, n: int) -> None:
    """``n`` access events (refused reads) through the library, as the vault's users make them."""
    with Vault.open(Settings.load(home)) as vault:
        for accessor in STAFF:
            vault.add_accessor(accessor)
        for _ in range(n):
            with pytest.raises(AccessDenied):
                vault.get(access(vault, "inv-1", None), "identity", PERSON.id_number)


def tamper_event(home: Path, seq: int) -> None:
    """Edit one stored event behind custodes' back (knows the storage layout; adapt with it)."""
    with closing(sqlite3.connect(home / "data" / "custodes.db", isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET accessor = 'x' WHERE seq = ?", (seq,))


def snapshot(home: Path) -> dict[str, bytes]:
    """Every file of the home except the database itself and the witnesses' cosignatures."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and "cosignatures" not in p.parts and p.parent.name != "data"
    }


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A vault home with 12 entries and a signed checkpoint; a witness that trusts its key."""
    home, state = tmp_path / "vault", tmp_path / "witness"
    ok(capsys, "init", "--home", str(home))
    grow(home, 12)
    ok(capsys, "ledger", "checkpoint", "--home", str(home))
    ok(capsys, "witness", "init", "--state", str(state), "--name", "w.example/one")
    vkey_file = str(home / "keys" / "log.vkey")
    assert ok(capsys, "witness", "trust", "--state", str(state), "--log-vkey", vkey_file) == {
        "origin": ORIGIN,
        "vkey": (home / "keys" / "log.vkey").read_text(encoding="utf-8").strip(),
    }
    return home, state


def test_checkpoint_signs_the_current_tree_and_shows_it_until_the_log_grows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "vault"
    ok(capsys, "init", "--home", str(home))
    grow(home, 7)
    first = ok(capsys, "ledger", "checkpoint", "--home", str(home))
    assert first["origin"] == ORIGIN and first["size"] == 7
    assert first["vkey"] == (home / "keys" / "log.vkey").read_text(encoding="utf-8").strip()
    text, _ = open_note(first["note"], {ORIGIN: first["vkey"]})
    assert text == f"{ORIGIN}\n7\n{first['root']}\n"
    assert ok(capsys, "ledger", "checkpoint", "--home", str(home)) == first
    code, out, _ = run(capsys, "ledger", "checkpoint", "--home", str(home))
    assert code == 0 and out == first["note"]


def test_a_group_readable_signing_key_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "vault"
    ok(capsys, "init", "--home", str(home))
    (home / "keys" / "log-signing.key").chmod(0o640)
    code, _, err = run(capsys, "ledger", "checkpoint", "--home", str(home))
    assert code == 1
    assert "chmod 600" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cosign_verifies_and_writes_only_the_cosignature_into_the_home(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, state = setup
    before = snapshot(home)
    result = ok(capsys, "witness", "cosign", "--state", str(state), "--log-home", str(home))
    assert snapshot(home) == before
    assert result["cosigned"] is True and result["size"] == 12 and result["previous"] is None
    vkey = ok(capsys, "witness", "show", "--state", str(state))["vkey"]
    body = f"{ORIGIN}\n12\n{result['root']}\n"
    assert verify_cosignature(result["cosignature"], body, vkey) == result["timestamp"]
    file = home / "ledger" / "cosignatures" / "w.example%2Fone"
    assert Path(result["file"]) == file
    assert file.read_text(encoding="utf-8") == result["note"]
    assert result["note"].endswith(result["cosignature"])
    grow(home, 3)
    ok(capsys, "ledger", "checkpoint", "--home", str(home))
    again = ok(capsys, "witness", "cosign", "--state", str(state), "--log-home", str(home))
    assert again["size"] == 15 and again["previous"].startswith(f"{ORIGIN}\n12\n")


def test_a_tampered_entry_is_refused_with_both_checkpoints(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home, state = setup
    cosigned = ok(capsys, "witness", "cosign", "--state", str(state), "--log-home", str(home))
    kept = (state / "state.json").read_bytes()
    tamper_event(home, 5)
    grow(home, 2)
    presented = ok(capsys, "ledger", "checkpoint", "--home", str(home))["note"]
    code, out, err = run(
        capsys, "witness", "cosign", "--state", str(state), "--log-home", str(home), "--json"
    )
    assert code == 1
    evidence = json.loads(out)
    assert evidence["cosigned"] is False and evidence["first_bad_index"] == 5
    assert evidence["witnessed"] == cosigned["note"].removesuffix(cosigned["cosignature"])
    assert evidence["presented"] == presented
    assert "entry 5" in evidence["reason"]
    assert err.startswith("error: witness refused to cosign") and len(err.splitlines()) == 1
    assert (state / "state.json").read_bytes() == kept
    cosignature = home / "ledger" / "cosignatures" / "w.example%2Fone"
    assert cosignature.read_text(encoding="utf-8") == cosigned["note"]


def test_a_rollback_prints_both_checkpoints(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home, state = setup
    old = tmp_path / "old-checkpoint"
    old.write_text((home / "ledger" / "checkpoint").read_text(encoding="utf-8"))
    grow(home, 4)
    newer = ok(capsys, "ledger", "checkpoint", "--home", str(home))["note"]
    ok(capsys, "witness", "cosign", "--state", str(state), "--log-home", str(home))
    code, out, err = run(
        capsys,
        "witness", "cosign", "--state", str(state), "--log-home", str(home),
        "--checkpoint", str(old),
    )  # fmt: skip
    assert code == 1 and "rollback" in err
    assert newer in out and old.read_text(encoding="utf-8") in out
    assert out.index(newer) < out.index(old.read_text(encoding="utf-8"))  # cosigned, then shown


def test_an_unknown_key_is_refused(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home, state = setup
    genuine = (home / "ledger" / "checkpoint").read_text(encoding="utf-8")
    forged = tmp_path / "forged"
    forged.write_text(NoteSigner.generate(ORIGIN).sign(genuine.split("\n\n")[0] + "\n"))
    code, out, err = run(
        capsys,
        "witness", "cosign", "--state", str(state), "--log-home", str(home),
        "--checkpoint", str(forged), "--json",
    )  # fmt: skip
    assert code == 1 and "not validly signed" in err
    assert json.loads(out)["witnessed"] is None


def test_witness_usage_errors_are_one_line(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home, state = setup
    for args in (
        ("witness", "init", "--state", str(state), "--name", "again"),
        ("witness", "init", "--state", str(tmp_path / "w2"), "--name", "has space"),
        ("witness", "trust", "--state", str(state), "--log-vkey", "nonsense"),
        ("witness", "cosign", "--state", str(tmp_path / "none"), "--log-home", str(home)),
        ("witness", "cosign", "--state", str(state), "--log-home", str(tmp_path / "none")),
    ):
        code, _, err = run(capsys, *args)
        assert code == 1, args
        assert err.startswith("error:") and len(err.splitlines()) == 1, err
