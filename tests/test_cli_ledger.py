"""``custodes ledger verify|prove|consistency|export`` on a small SQLite vault: proofs that check
out independently, tampering named by index with exit 1, one-line errors, safe exports."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from custodes.cli import main
from custodes.config import StoreSettings
from custodes.errors import AccessDenied
from custodes.ledger import merkle
from custodes.sim import generate_people
from tests.helpers import access, bundle_entry, make_vault, one_entry

PEOPLE = generate_people(6, seed=44)


def tamper_event(home: Path, seq: int) -> None:
    """Edit one stored event behind custodes' back, as an intruder with the database file
    would. (The one place that knows the storage layout: adapt it when the layout changes.)"""
    with closing(sqlite3.connect(home / "data" / "custodes.db", isolation_level=None)) as conn:
        for table in ("events", "ledger_bundles"):
            conn.execute(f"DROP TRIGGER {table}_no_update")
        conn.execute("UPDATE events SET accessor = 'x' WHERE seq = ?", (seq,))
        query = "SELECT entries FROM ledger_bundles WHERE seq = ? AND n = 1"
        entry = bundle_entry(conn.execute(query, (seq,)).fetchone()[0])
        forged = re.sub(rb'"accessor":"[^"]*"', b'"accessor":"x"', entry)
        conn.execute(
            "UPDATE ledger_bundles SET entries = ? WHERE seq = ?", (one_entry(forged), seq)
        )


def truncate_log(home: Path, keep: int) -> None:
    """Drop every entry from ``keep`` on, events and ledger rows alike, behind custodes' back."""
    with closing(sqlite3.connect(home / "data" / "custodes.db", isolation_level=None)) as conn:
        for table in ("events", "ledger_bundles"):
            conn.execute(f"DROP TRIGGER {table}_no_delete")
            conn.execute(f"DELETE FROM {table} WHERE seq >= ?", (keep,))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A SQLite vault with a few dozen entries: writes, reads, denials and a case."""
    home = tmp_path / "vault"
    store = StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")
    with make_vault(home, store) as vault:
        reg = access(vault, "reg-1", "registration")
        for person in PEOPLE:
            values = {"name": person.name, "id_number": person.id_number, "phone": person.phone}
            vault.put(reg, "identity", person.id_number, values)
        duty = access(vault, "duty-1", "identity_check")
        for _ in range(3):
            for person in PEOPLE:
                vault.get(duty, "identity", person.id_number)
        for person in PEOPLE:
            with pytest.raises(AccessDenied):
                vault.get(
                    access(vault, "inv-1", "criminal_investigation"), "identity", person.id_number
                )
        case = vault.open_case(
            access(vault, "inv-1", "criminal_investigation"), [PEOPLE[0].id_number]
        )
        vault.approve_case(access(vault, "sup-1", None), case.case_id)
        assert vault.ledger.size() == 32
    return home


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["ledger", *args, "--home", str(home)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok_json(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Any:
    code, out, err = run(capsys, home, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def one_line_error(code: int, err: str) -> str:
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


# -- verify ---------------------------------------------------------------------------------


def test_verify_passes_on_a_clean_log(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    data = ok_json(capsys, home, "verify")
    assert data["ok"] is True and data["size"] == 32
    assert data["first_bad_index"] is None and data["error"] is None
    root = ok_json(capsys, home, "consistency", "32", "32")["new_root"]
    assert data["root"] == root
    code, out, _ = run(capsys, home, "verify")
    assert code == 0 and "32 entries" in out and b64(root).hex() in out


def test_verify_names_the_first_tampered_index(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    tamper_event(home, 5)
    code, _, err = run(capsys, home, "verify")
    assert "entry 5" in one_line_error(code, err)
    code, out, err = run(capsys, home, "verify", "--json")
    assert code == 1 and "entry 5" in err
    data = json.loads(out)
    assert data["ok"] is False and data["first_bad_index"] == 5 and "entry 5" in data["error"]


def test_verify_against_checkpoint_catches_truncation(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, _, err = run(capsys, home, "checkpoint")
    assert code == 0, err
    data = ok_json(capsys, home, "verify")
    assert data["ok"] is True and data["checkpoint_size"] == 32
    truncate_log(home, 27)
    code, out, err = run(capsys, home, "verify", "--json")
    assert code == 1 and "entry 27" in err
    assert json.loads(out)["first_bad_index"] == 27


# -- prove ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, None), (5, None), (31, None), (3, "4"), (6, "7")])
def test_prove_output_verifies_independently(
    capsys: pytest.CaptureFixture[str], home: Path, index: int, size: str | None
) -> None:
    extra = ("--size", size) if size else ()
    data = ok_json(capsys, home, "prove", str(index), *extra)
    n = int(size) if size else 32
    assert (data["index"], data["size"]) == (index, n)
    entry = data["entry"].encode()
    assert json.loads(entry)["seq"] == index
    assert b64(data["leaf_hash"]) == merkle.leaf_hash(entry)
    proof = [b64(p) for p in data["proof"]]
    merkle.verify_inclusion(entry, index, n, proof, b64(data["root"]))
    if n > 1:
        same = ok_json(capsys, home, "consistency", str(n), "32")
        assert same["old_root"] == data["root"]


def test_prove_a_tampered_entry_is_tamper_evidence(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    tamper_event(home, 5)
    code, out, err = run(capsys, home, "prove", "5")
    assert "entry 5" in one_line_error(code, err) and "altered" in err
    assert out == ""
    assert run(capsys, home, "prove", "4")[0] == 0


def test_prove_prints_the_entry_and_proof_for_people(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    entry = ok_json(capsys, home, "prove", "2")["entry"]
    assert '"fields":["' in entry
    code, out, _ = run(capsys, home, "prove", "2")
    assert code == 0 and "entry 2 is included" in out
    assert entry in out  # printed verbatim: its JSON brackets are not taken for console markup


# -- consistency ----------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), [(1, 32), (7, 8), (8, 32), (20, 29), (32, 32)])
def test_consistency_output_verifies_independently(
    capsys: pytest.CaptureFixture[str], home: Path, old: int, new: int
) -> None:
    data = ok_json(capsys, home, "consistency", str(old), str(new))
    assert (data["old_size"], data["new_size"]) == (old, new)
    proof = [b64(p) for p in data["proof"]]
    merkle.verify_consistency(old, new, b64(data["old_root"]), b64(data["new_root"]), proof)
    code, out, _ = run(capsys, home, "consistency", str(old), str(new))
    assert code == 0 and "prefix" in out


# -- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("prove", "abc"), "INDEX must be a whole number"),
        (("prove", "-1"), "INDEX must be a whole number"),
        (("prove", "32"), "not in a tree of size 32"),
        (("prove", "3", "--size", "3"), "not in a tree of size 3"),
        (("prove", "0", "--size", "33"), "tree size 33"),
        (("prove", "0", "--size", "x"), "--size must be a whole number"),
        (("consistency", "0", "5"), "0 < OLD <= NEW"),
        (("consistency", "6", "5"), "0 < OLD <= NEW"),
        (("consistency", "3", "33"), "tree size 33"),
        (("consistency", "a", "5"), "OLD must be a whole number"),
        (("consistency", "-1", "5"), "OLD must be a whole number"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], home: Path, args: tuple[str, ...], needle: str
) -> None:
    code, out, err = run(capsys, home, *args)
    assert needle in one_line_error(code, err)
    assert out == ""


# -- export ---------------------------------------------------------------------------------


def test_export_writes_one_event_line_per_entry(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    data = ok_json(capsys, home, "export", "--out", str(tmp_path / "x"))
    assert data["events"] == data["size"] == 32 and data["cases"] == 1
    assert data["subjects"] == len(PEOPLE) and data["accessors"] == 8
    events = (tmp_path / "x" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(events) == 32
    actions = [json.loads(line)["action"] for line in events]
    assert actions[:6] == ["write"] * 6 and actions[6:30] == ["read"] * 24
    assert actions[30:] == ["case_open", "case_approve"]
    assert data["root"] == ok_json(capsys, home, "verify")["root"]


def test_export_holds_no_plaintext(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    assert ok_json(capsys, home, "export", "--out", str(tmp_path / "x"))["events"] == 32
    blob = b"".join(p.read_bytes() for p in (tmp_path / "x").iterdir())
    for person in PEOPLE:
        for value in (person.id_number, person.id_number[:17], person.name, person.phone):
            assert value.encode() not in blob


def test_export_refuses_to_overwrite_without_force(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "x"
    ok_json(capsys, home, "export", "--out", str(target))
    first = (target / "events.jsonl").read_bytes()
    code, out, err = run(capsys, home, "export", "--out", str(target))
    assert "--force" in one_line_error(code, err) and out == ""
    assert (target / "events.jsonl").read_bytes() == first
    code, out, _ = run(capsys, home, "export", "--out", str(target), "--force")
    assert code == 0 and "exported 32 events" in out
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["events.jsonl", "accessors.jsonl", "cases.jsonl", "subjects.jsonl"]
    )
