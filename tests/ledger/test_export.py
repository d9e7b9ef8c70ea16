"""The interchange export, on both backends: one line per ledger entry in ledger order, the
vault's actions in §6 names, cases and subjects by pseudonym only, nothing half-written."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.helpers import STAFF, START, access, make_vault

from custodes.config import StoreSettings
from custodes.errors import AccessDenied, InputError
from custodes.ledger import LedgerTamperError
from custodes.ledger.export import EXPORT_FILES, export_ledger
from custodes.sim import generate_people
from custodes.vault import Vault

PEOPLE = generate_people(8, seed=33)


def fill(vault: Vault) -> str:
    """Writes, reads, denials, a find and a whole case; return the case id."""
    vault.put_many(
        access(vault, "reg-1", "registration"),
        "identity",
        [(p.id_number, p.identity_record()) for p in PEOPLE],
    )
    duty = access(vault, "duty-1", "identity_check")
    for person in PEOPLE[:5]:
        vault.get(duty, "identity", person.id_number)
    for person in PEOPLE[:4]:
        with pytest.raises(AccessDenied):
            vault.get(
                access(vault, "inv-1", "criminal_investigation"), "identity", person.id_number
            )
    inv = access(vault, "inv-1", "criminal_investigation")
    case = vault.open_case(
        inv, [PEOPLE[5].id_number, PEOPLE[6].id_number], assigned=["inv-1", "inv-2"]
    )
    vault.approve_case(access(vault, "sup-1", None), case.case_id)
    under_case = access(vault, "inv-1", "criminal_investigation", case.case_id)
    vault.get(under_case, "identity", PEOPLE[5].id_number)
    vault.find(duty, "identity", "id_number", PEOPLE[7].id_number)
    vault.close_case(access(vault, "inv-1", None), case.case_id)
    return case.case_id


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    with make_vault(tmp_path / "home", store_settings) as v:
        yield v


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def delete_event(vault: Vault, seq: int) -> None:
    """Remove one event row behind custodes' back (the storage layout is the lead's to adapt)."""
    st = vault.settings.store
    if st.backend == "sqlite":
        with closing(sqlite3.connect(st.path, isolation_level=None)) as conn:
            conn.execute("DROP TRIGGER events_no_delete")
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
    else:
        assert st.url is not None
        with psycopg.connect(st.url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER events_append_only ON events")
            conn.execute("DELETE FROM events WHERE seq = %s", (seq,))


def test_events_are_one_line_per_entry_in_ledger_order(vault: Vault, tmp_path: Path) -> None:
    case_id = fill(vault)
    summary = export_ledger(vault, tmp_path / "out")
    events = lines(tmp_path / "out" / "events.jsonl")
    assert len(events) == summary.events == summary.size == vault.ledger.size()
    assert summary.root == vault.ledger.root()
    for (seq, stored), line in zip(vault.store.events(), events, strict=True):
        assert json.loads(stored.canonical(seq))["ts"] == stored.ts.isoformat(
            timespec="microseconds"
        )
        assert (line["accessor"], line["decision"], line["count"], line["case"]) == (
            stored.accessor,
            stored.decision,
            stored.count,
            stored.case,
        )
        assert line["subject"] == stored.subject and line["fields"] == list(stored.fields)
    assert list(events[0]) == [
        "ts",
        "accessor",
        "org",
        "role",
        "action",
        "collection",
        "fields",
        "subject",
        "purpose",
        "case",
        "decision",
        "count",
        "break_glass",
    ]
    assert events[0]["ts"].endswith("+00:00")
    assert events[0]["ts"].startswith(START.date().isoformat())
    assert case_id in {e["case"] for e in events}


def test_actions_are_mapped_to_the_interchange_names(vault: Vault, tmp_path: Path) -> None:
    fill(vault)
    export_ledger(vault, tmp_path / "out")
    actions = [e["action"] for e in lines(tmp_path / "out" / "events.jsonl")]
    stored = [event.action for _, event in vault.store.events()]
    mapping = dict(zip(stored, actions, strict=True))
    assert mapping == {
        "put": "write",
        "get": "read",
        "find": "find",
        "case_open": "case_open",
        "case_approve": "case_approve",
        "case_close": "case_close",
    }
    denied = [e for e in lines(tmp_path / "out" / "events.jsonl") if e["decision"] == "deny"]
    assert len(denied) == 4 and {e["action"] for e in denied} == {"read"}


def test_cases_and_subjects_use_the_ledgers_pseudonyms(vault: Vault, tmp_path: Path) -> None:
    case_id = fill(vault)
    summary = export_ledger(vault, tmp_path / "out")
    (case,) = lines(tmp_path / "out" / "cases.jsonl")
    named = sorted(vault.pseudonym(p.id_number) for p in PEOPLE[5:7])
    assert case["case"] == case_id and case["subjects"] == named
    assert case["org"] == "police-1" and case["assigned"] == ["inv-1", "inv-2"]
    assert case["approved_by"] == "sup-1" and case["closed"] is not None
    subjects = lines(tmp_path / "out" / "subjects.jsonl")
    assert {s["subject"] for s in subjects} == {vault.pseudonym(p.id_number) for p in PEOPLE}
    assert summary.subjects == len(subjects) == len(PEOPLE)
    assert subjects[0] == {
        "subject": subjects[0]["subject"],
        "surname_token": None,
        "address_token": None,
        "employer_org": None,
        "protected": False,
        "canary": False,
        "relations": [],
    }
    accessors = lines(tmp_path / "out" / "accessors.jsonl")
    assert [a["accessor"] for a in accessors] == sorted(a.accessor for a in STAFF)
    assert all(a["active_from"] is None and a["surname_token"] is None for a in accessors)


def test_no_export_file_holds_plaintext_or_id_numbers(vault: Vault, tmp_path: Path) -> None:
    fill(vault)
    export_ledger(vault, tmp_path / "out")
    blob = b"".join((tmp_path / "out" / name).read_bytes() for name in EXPORT_FILES)
    for person in PEOPLE:
        for value in person.identity_record().values():
            assert value.encode() not in blob, value
        assert person.id_number.lower().encode() not in blob
        assert person.id_number[:17].encode() not in blob  # the digits without the check char


def test_existing_files_are_not_overwritten_without_force(vault: Vault, tmp_path: Path) -> None:
    fill(vault)
    out = tmp_path / "out"
    out.mkdir()
    (out / "cases.jsonl").write_text("mine\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cases\.jsonl"):
        export_ledger(vault, out)
    assert sorted(p.name for p in out.iterdir()) == ["cases.jsonl"]
    assert (out / "cases.jsonl").read_text(encoding="utf-8") == "mine\n"
    export_ledger(vault, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPORT_FILES)


def test_a_failed_export_leaves_the_previous_one_whole(vault: Vault, tmp_path: Path) -> None:
    fill(vault)
    out = tmp_path / "out"
    export_ledger(vault, out)
    before = {name: (out / name).read_bytes() for name in EXPORT_FILES}
    delete_event(vault, 7)
    with pytest.raises(LedgerTamperError, match="entry 7") as caught:
        export_ledger(vault, out, force=True)
    assert caught.value.index == 7
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_empty_ledger_exports_empty_files(vault: Vault, tmp_path: Path) -> None:
    summary = export_ledger(vault, tmp_path / "a" / "b")
    assert summary.events == 0 and summary.cases == 0 and summary.subjects == 0
    assert (tmp_path / "a" / "b" / "events.jsonl").read_bytes() == b""
    assert len(lines(tmp_path / "a" / "b" / "accessors.jsonl")) == len(STAFF)


def test_a_file_in_place_of_the_directory_is_an_input_error(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="not a directory"):
        export_ledger(vault, tmp_path / "out", force=True)
