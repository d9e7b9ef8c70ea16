"""``custodes trace-leak`` end to end: three fingerprinted exports of the same collection to
three analysts; one of them leaks in each of the forms of issue 7, and the command names that
export, never another with high confidence. A file from elsewhere is not ours."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custodes.cli import main
from custodes.config import StoreSettings
from custodes.forensics import HIGH_CONFIDENCE, export_fingerprinted
from custodes.model import Accessor
from custodes.schema import Schema
from custodes.sim import generate_people
from tests.forensics.test_trace import _as, _identity, _open

ANALYSTS = ("ana-1", "ana-2", "ana-3")
LEAKER = "ana-2"
Rows = list[dict[str, str]]


@dataclass
class Exports:
    home: Path
    ids: dict[str, str]  # analyst -> export id
    rows: dict[str, Rows]  # analyst -> exported rows, in file order
    people: set[str]  # ID numbers of the vault's subjects
    outsiders: Rows


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exports]:
    home = tmp_path_factory.mktemp("fingerprints") / "vault"
    vault, _clock = _open(home, StoreSettings(backend="sqlite", path=home / "data" / "c.db"))
    population = generate_people(1_100, seed=12)
    people, outsiders = population[:1_000], population[1_000:]
    with vault:
        registrar = _as(vault, "reg-1", "registration")
        vault.put_many(registrar, "identity", [(p.id_number, _identity(p)) for p in people])
        for analyst in ANALYSTS[1:]:
            vault.add_accessor(Accessor(analyst, "stats-1", "analyst"))
        made = {
            analyst: export_fingerprinted(vault, _as(vault, analyst, "statistics"), "identity")
            for analyst in ANALYSTS
        }
    yield Exports(
        home=home,
        ids={analyst: e.export_id for analyst, e in made.items()},
        rows={analyst: e.rows for analyst, e in made.items()},
        people={p.id_number for p in people},
        outsiders=[_identity(p) for p in outsiders],
    )


def _csv(path: Path, rows: Rows, delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _jsonl(path: Path, rows: Rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _subset(rows: Rows, share: float, seed: int = 1) -> Rows:
    return random.Random(seed).sample(rows, max(1, round(len(rows) * share)))


def _renamed(rows: Rows) -> Rows:
    names = {"name": "姓名", "id_number": "身份证号", "phone": "手机", "birth_date": "生日"}
    return [{names.get(k, k.upper()): v for k, v in reversed(row.items())} for row in rows]


def _csv_to_jsonl(path: Path, rows: Rows) -> Path:
    """Export as CSV, then convert the CSV to JSON lines as a leaker's script would."""
    source = _csv(path.with_suffix(".csv"), rows)
    with source.open(newline="", encoding="utf-8") as handle:
        converted = list(csv.DictReader(handle))
    return _jsonl(path.with_suffix(".jsonl"), converted)


FORMS: dict[str, Callable[[Path, Rows], Path]] = {
    "2% subset": lambda p, rows: _jsonl(p.with_suffix(".jsonl"), _subset(rows, 0.02)),
    "shuffled rows": lambda p, rows: _csv(p, _subset(rows, 1.0, seed=9)),
    "renamed and reordered columns": lambda p, rows: _csv(p, _renamed(rows)),
    "dropped non-identifier columns": lambda p, rows: _csv(
        p, [{"id": r["id_number"], "tel": r["phone"]} for r in rows]
    ),
    "csv to json lines": _csv_to_jsonl,
    "2% subset, renamed, tsv": lambda p, rows: _csv(
        p.with_suffix(".tsv"), _renamed(_subset(rows, 0.02, seed=4)), "\t"
    ),
}


def _trace(capsys: pytest.CaptureFixture[str], home: Path, path: Path) -> dict[str, Any]:
    capsys.readouterr()
    status = main(["trace-leak", str(path), "--json", "--home", str(home)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report: dict[str, Any] = json.loads(captured.out)
    return report


@pytest.mark.parametrize("form", list(FORMS))
def test_each_leak_form_names_the_leaking_export(
    form: str, exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FORMS[form](tmp_path / "leak.csv", exports.rows[LEAKER])
    report = _trace(capsys, exports.home, path)
    confident = [m for m in report["exports"] if m["confidence"] >= HIGH_CONFIDENCE]
    assert [m["export_id"] for m in confident] == [exports.ids[LEAKER]], report["exports"]
    assert confident[0]["accessor"] == LEAKER
    assert report["verdict"] == "ours"
    assert f"to {LEAKER}" in report["summary"]


def _canonical(rows: Rows, people: set[str]) -> Rows:
    """Strip every fingerprint: drop the canary rows, respell every value canonically."""
    identity = Schema.default().collection("identity")
    return [
        {name: identity.field(name).normalize(value) for name, value in row.items()}
        for row in rows
        if row["id_number"].upper() in people
    ]


def test_a_stripped_export_names_no_export_and_the_ledger_shows_its_recipients(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With canary rows removed and every spelling made canonical, no fingerprint is left:
    no export may be named with high confidence; the ledger still shows that exactly the
    three analysts' exports cover the leak."""
    rows = _canonical(_subset(exports.rows[LEAKER], 0.3), exports.people)
    report = _trace(capsys, exports.home, _csv(tmp_path / "clean.csv", rows))
    assert [m for m in report["exports"] if m["confidence"] >= HIGH_CONFIDENCE] == []
    assert report["canaries"] == []
    assert report["verdict"] == "ours"  # every row names a subject of this vault
    covering = {s["accessor"] for s in report["suspects"] if s["coverage"] == 1.0}
    assert covering == set(ANALYSTS)
    assert "cannot tell them apart" in report["summary"]


def test_canary_rows_alone_name_the_export(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the export's canary rows, respelt canonically (no watermark left)."""
    identity = Schema.default().collection("identity")
    canaries = [
        {k: identity.field(k).normalize(v) for k, v in row.items()}
        for row in exports.rows[LEAKER]
        if row["id_number"].upper() not in exports.people
    ]
    assert len(canaries) >= 3
    report = _trace(capsys, exports.home, _jsonl(tmp_path / "canaries.jsonl", canaries))
    assert report["exports"][0]["export_id"] == exports.ids[LEAKER]
    assert report["exports"][0]["method"] == "canary_rows"
    assert {c["scope"]["export"] for c in report["canaries"]} == {exports.ids[LEAKER]}
    assert report["matched_rows"] == 0 and report["verdict"] == "ours"


def test_a_file_from_elsewhere_is_not_ours(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _trace(capsys, exports.home, _csv(tmp_path / "other.csv", exports.outsiders))
    assert report["verdict"] == "not ours"
    assert report["exports"] == [] and report["canaries"] == [] and report["suspects"] == []


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custodes.cli", "trace-leak", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.mark.slow
def test_the_installed_command_prints_a_readable_report(exports: Exports, tmp_path: Path) -> None:
    path = FORMS["2% subset, renamed, tsv"](tmp_path / "leak.csv", exports.rows[LEAKER])
    result = _run(exports.home, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ours")
    assert exports.ids[LEAKER] in result.stdout and "export fingerprints" in result.stdout


def test_an_unreadable_file_is_one_line_and_exit_status_1(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02" * 100)
    capsys.readouterr()
    assert main(["trace-leak", str(garbage), "--home", str(exports.home)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"error: {garbage}: binary data, not a text dump (NUL bytes)"
    ]
