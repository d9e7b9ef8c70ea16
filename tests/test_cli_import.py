"""``custodes import``: a bulk load from JSON lines; bad input anywhere writes nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from custodes._cli_import import _failure
from custodes.bulk import BulkLoadError
from custodes.config import Settings
from custodes.sim import generate_people, sample_records
from custodes.vault import Vault
from tests.test_cli import cli, ok

PEOPLE = generate_people(40, seed=12)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "vault"
    ok(home, "init")
    ok(home, "accessor", "add", "desk", "--org", "registry", "--role", "registrar")
    ok(home, "accessor", "add", "duty", "--org", "police-1", "--role", "duty_officer")
    return home


def _lines(collection: str) -> list[tuple[str, dict[str, str]]]:
    rng = random.Random(3)
    return [
        (person.id_number, record)
        for person in PEOPLE
        for record in sample_records(person, rng).get(collection, [])
    ]


def _write(path: Path, items: list[tuple[str, dict[str, str]]], extra: str = "") -> Path:
    rows = [json.dumps({"subject": s, "fields": f}, ensure_ascii=False) for s, f in items]
    path.write_text("\n".join(rows) + "\n" + extra, encoding="utf-8")
    return path


def _events(home: Path) -> int:
    with Vault.open(Settings.load(home)) as vault:
        return vault.store.event_count()


def test_import_writes_every_record_with_its_event(home: Path, tmp_path: Path) -> None:
    items = _lines("identity")
    source = _write(tmp_path / "people.jsonl", items, extra="\n")  # a blank line is skipped
    done = ok(home, "import", "identity", str(source), "--as", "desk", "--purpose",
              "registration", "--batch", "7", "--workers", "2")  # fmt: skip
    assert isinstance(done, dict)
    assert (done["records"], done["batches"], done["workers"]) == (len(items), 6, 2)
    with Vault.open(Settings.load(home)) as vault:
        assert vault.store.event_count() == len(items)
        vault.ledger.verify()
        coll = vault.schema.collection("identity")
        for subject, values in items:
            ref = vault._subject(subject).ref
            (stored,) = vault.store.records("identity", ref)
            (opened,) = vault._open_records([stored], ref, list(coll.fields))
            assert opened.values == coll.validate(values)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "line 6: not JSON"),
        ('{"subject": "x"}', 'line 6: expected an object with "subject" and "fields" only'),
        ('{"subject": 1, "fields": {}}', 'line 6: "subject" must be text'),
        ('{"subject": "110105194912310021", "fields": {}}', "line 6:"),  # bad checksum
        ("UNKNOWN_FIELD", "line 6: collection 'identity' has no field 'shoe_size'"),
        ("BAD_PHONE", "line 6: field 'phone'"),
    ],
)
def test_a_bad_line_anywhere_writes_nothing(
    home: Path, tmp_path: Path, line: str, expected: str
) -> None:
    items = _lines("identity")[:10]
    subject, fields = items[5]
    if line == "UNKNOWN_FIELD":
        line = json.dumps({"subject": subject, "fields": {**fields, "shoe_size": "42"}})
    elif line == "BAD_PHONE":
        line = json.dumps({"subject": subject, "fields": {**fields, "phone": "+86 123"}})
    rows = [json.dumps({"subject": s, "fields": f}) for s, f in items]
    rows[5] = line
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = cli(home, "import", "identity", str(source), "--as", "desk", "--purpose",
                 "registration", "--batch", "2")  # fmt: skip
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert subject not in result.stderr and fields["name"] not in result.stderr
    assert _events(home) == 0  # nothing written, not even the first batches


def test_a_denied_import_is_recorded_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "p.jsonl", _lines("identity")[:5])
    result = cli(home, "import", "identity", str(source), "--as", "duty", "--purpose",
                 "identity_check", "--workers", "1")  # fmt: skip
    assert result.returncode == 1
    assert "access denied" in result.stderr and "nothing was imported" in result.stderr
    with Vault.open(Settings.load(home)) as vault:
        ((_, event),) = list(vault.store.events())
        assert event.decision == "deny" and event.accessor == "duty"


@pytest.mark.parametrize(
    ("content", "expected"), [(None, "cannot read"), ("\n\n", "holds no records")]
)
def test_missing_or_empty_files_are_refused(
    home: Path, tmp_path: Path, content: str | None, expected: str
) -> None:
    source = tmp_path / "in.jsonl"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    result = cli(home, "import", "identity", str(source), "--as", "desk", "--purpose",
                 "registration")  # fmt: skip
    assert result.returncode == 1 and expected in result.stderr
    assert _events(home) == 0


def test_unknown_collection_and_bad_options_are_refused(home: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "p.jsonl", _lines("identity")[:3])
    result = cli(home, "import", "dossiers", str(source), "--as", "desk", "--purpose",
                 "registration")  # fmt: skip
    assert result.returncode == 1 and "dossiers" in result.stderr
    for option in (["--workers", "0"], ["--batch", "0"]):
        result = cli(home, "import", "identity", str(source), "--as", "desk", *option)
        assert result.returncode != 0 and "Traceback" not in result.stderr
    assert _events(home) == 0


def test_a_failed_load_names_the_lines_whose_records_were_imported() -> None:
    # Records on lines 1-3, 5-7 (line 4 blank), 8-9; batches of 3; batch 1 failed, 2 committed.
    numbers = [1, 2, 3, 5, 6, 7, 8, 9]
    exc = BulkLoadError(1, "identity", "AuditFailure", "the disk is full", committed=(0, 2))
    message = _failure(exc, 3, numbers)
    assert message == (
        "import stopped: the records of lines 5-7 were refused and not written: the disk is "
        "full; the records of lines 1-3, 8-9 were imported"
    )
    none = BulkLoadError(0, "identity", "AccessDenied", "access denied: no grant", committed=())
    assert _failure(none, 3, numbers).endswith("no grant; nothing was imported")
