"""``custodes detect`` over a small demo export: alerts in the §6 format, one-line errors for
malformed files (naming file and line), nothing changed and no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from custodes.cli import main
from custodes.demo import run_demo
from custodes.detect import detect_files


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("detect-demo")
    run_demo(base / "vault", people=300, days=5, seed=5, export=base / "export")
    return base / "export"


def _args(directory: Path) -> list[str]:
    return [
        "detect",
        *("--events", str(directory / "events.jsonl")),
        *("--accessors", str(directory / "accessors.jsonl")),
        *("--subjects", str(directory / "subjects.jsonl")),
        *("--cases", str(directory / "cases.jsonl")),
    ]


def _truth(directory: Path) -> list[dict[str, Any]]:
    return list(json.loads((directory / "truth.json").read_text(encoding="utf-8"))["misuse"])


def test_json_output_is_one_alert_object_per_line(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_args(export), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    alerts = [json.loads(line) for line in lines]
    assert alerts
    events = (export / "events.jsonl").read_text(encoding="utf-8").splitlines()
    for alert in alerts:
        assert {
            "accessor",
            "kind",
            "first_ts",
            "last_ts",
            "score",
            "evidence",
            "explanation",
        } <= set(alert)
        assert 0 < alert["score"] <= 1
        assert alert["first_ts"] <= alert["last_ts"]
        assert alert["explanation"].endswith(".") and "\n" not in alert["explanation"]
        # Evidence is 0-based line numbers of events.jsonl, and those lines are the accessor's.
        for index in alert["evidence"]:
            assert json.loads(events[index])["accessor"] == alert["accessor"]


def test_a_short_month_still_finds_most_injected_misuse_without_false_alerts(
    export: Path,
) -> None:
    report = detect_files(
        events=export / "events.jsonl",
        accessors=export / "accessors.jsonl",
        subjects=export / "subjects.jsonl",
        cases=export / "cases.jsonl",
    )
    truth = _truth(export)
    misusers = {m["accessor"] for m in truth}
    alerted = {a.accessor for a in report.alerts}
    assert not alerted - misusers, "an alert on someone who did nothing wrong"
    assert len(alerted & misusers) >= 0.8 * len(misusers)
    canary = next(m for m in truth if m["kind"] == "canary_touch")
    first = min(canary["events"])
    alert = next(a for a in report.alerts if a.accessor == canary["accessor"])
    assert alert.score == 1.0 and first in alert.evidence


def test_plain_output_names_each_alert(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(export)) == 0
    text = capsys.readouterr().out
    assert "alert(s) over" in text
    assert "canary_touch" in text


def _broken(export: Path, tmp_path: Path, name: str, line: int, text: str) -> Path:
    target = tmp_path / "broken"
    shutil.copytree(export, target)
    rows = (target / name).read_text(encoding="utf-8").splitlines()
    rows[line - 1] = text
    (target / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


def _event_line(export: Path, **changes: object) -> str:
    first = json.loads((export / "events.jsonl").read_text(encoding="utf-8").splitlines()[0])
    first.update(changes)
    return json.dumps({k: v for k, v in first.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("events.jsonl", lambda e: '{"ts": "2026-03-02T00:00:00+00:00", "acc', "not valid JSON"),
        ("events.jsonl", lambda e: _event_line(e, accessor=_DROP), "missing key 'accessor'"),
        ("events.jsonl", lambda e: _event_line(e, count="3"), "'count'"),
        ("events.jsonl", lambda e: _event_line(e, action="peek"), "unknown action 'peek'"),
        ("events.jsonl", lambda e: _event_line(e, ts="yesterday"), "'ts'"),
        ("events.jsonl", lambda e: _event_line(e, fields=["name", 3]), "'fields'"),
        ("events.jsonl", lambda e: "[1, 2]", "not a JSON object"),
        ("subjects.jsonl", lambda e: '{"subject": "x"}', "missing key"),
        ("cases.jsonl", lambda e: '{"case": 5}', "'case'"),
        ("accessors.jsonl", lambda e: "not json", "not valid JSON"),
    ],
)
def test_malformed_files_give_one_line_naming_file_and_line(
    export: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    make: Any,
    message: str,
) -> None:
    broken = _broken(export, tmp_path, name, 3, make(export))
    before = {p.name: p.read_bytes() for p in broken.iterdir()}
    assert main(_args(broken)) == 1
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert "\n" not in error and "Traceback" not in error
    assert f"{name} line 3" in error and message in error
    assert captured.out == ""
    assert {p.name: p.read_bytes() for p in broken.iterdir()} == before


def test_a_missing_file_is_named(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(export)
    args[args.index("--cases") + 1] = str(tmp_path / "nope.jsonl")
    assert main(args) == 1
    assert "nope.jsonl" in capsys.readouterr().err
