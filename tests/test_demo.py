"""``custodes demo``: reproducible, complete, every event through the vault, verifiable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stdnum.cn import ric

from custodes.cli import main
from custodes.demo import run_demo

SMALL = {"people": 300, "days": 3}


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    base = tmp_path_factory.mktemp("demo-a")
    report = run_demo(base / "vault", seed=11, export=base / "export", **SMALL)
    return base / "vault", base / "export", report


def test_same_seed_gives_byte_identical_exports(
    first_run: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    _, export, _ = first_run
    run_demo(tmp_path / "vault", seed=11, export=tmp_path / "export", **SMALL)
    again = _files(tmp_path / "export")
    assert set(again) == {
        "events.jsonl",
        "accessors.jsonl",
        "subjects.jsonl",
        "cases.jsonl",
        "truth.json",
    }
    assert again == _files(export)


def test_another_seed_gives_another_population(
    first_run: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    _, export, _ = first_run
    run_demo(tmp_path / "vault", seed=12, export=tmp_path / "export", **SMALL)
    ours = {row["subject"] for row in _lines(export / "subjects.jsonl")}
    theirs = {row["subject"] for row in _lines(tmp_path / "export" / "subjects.jsonl")}
    assert ours != theirs


def test_every_exported_event_came_through_the_vault_and_the_ledger_verifies(
    first_run: tuple[Path, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    home, export, report = first_run
    events = _lines(export / "events.jsonl")
    assert len(events) == report.ledger_size == report.result.events
    assert main(["ledger", "verify", "--home", str(home), "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["ok"] is True and verified["size"] == len(events)
    assert report.cosigned and report.verified


def test_the_ground_truth_points_at_the_misusers_own_events(
    first_run: tuple[Path, Path, Any],
) -> None:
    _, export, report = first_run
    events = _lines(export / "events.jsonl")
    truth = json.loads((export / "truth.json").read_text(encoding="utf-8"))
    assert truth["ledger_size"] == len(events)
    kinds = {m["kind"] for m in truth["misuse"]}
    assert len(kinds) >= 14, kinds
    for misuse in truth["misuse"]:
        assert misuse["events"], misuse
        for index in misuse["events"]:
            assert events[index]["accessor"] == misuse["accessor"], (misuse, events[index])
    assert report.result.denied > 0
    assert any(e["decision"] == "deny" for e in events)


def test_the_export_holds_no_plaintext(first_run: tuple[Path, Path, Any]) -> None:
    _, export, _ = first_run
    blob = b"".join(_files(export).values()).decode("utf-8")
    from custodes.sim import build_world

    world = build_world(SMALL["people"], seed=11)
    for person in world.people[:300]:
        assert ric.is_valid(person.id_number)
        assert person.id_number not in blob
        assert person.name not in blob
        assert person.address not in blob


def test_the_command_prints_a_summary_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--people", "150", "--days", "2", "--seed", "3", "--no-serve"]
    assert main([*args, "--home", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "custodes demo" in text and "Injected misuse" in text and "detection: caught" in text
    assert main([*args, "--home", str(tmp_path / "b"), "--json", "--mix", "shifted"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["people"] == 150 and data["ledger"]["verified"] is True
    assert data["mix"] == "shifted" and len({m["kind"] for m in data["truth"]}) == 15
    assert data["events"] == data["ledger"]["size"] and data["truth"]
    detection = data["detection"]
    assert detection["misusers"] == len({m["accessor"] for m in data["truth"]})
    assert 0 < detection["caught"] <= detection["misusers"]
    assert len(data["alerts"]) == detection["caught"] + detection["false_alerts"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people", "99"], "--people must be between"),
        (["--days", "0"], "--days must be between"),
        (["--mix", "spicy"], "--mix must be one of standard, shifted, not 'spicy'"),
    ],
)
def test_bad_sizes_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["demo", *args, "--home", str(tmp_path / "v"), "--no-serve"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()


def test_a_home_that_already_holds_a_vault_is_refused(
    first_run: tuple[Path, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    home, _, _ = first_run
    assert main(["demo", "--home", str(home), "--no-serve", *_small_args()]) == 1
    assert "already holds a vault" in capsys.readouterr().err


def _small_args() -> list[str]:
    return ["--people", "100", "--days", "1"]


def test_the_simulated_leak_is_traced_to_its_export_and_recipient(
    first_run: tuple[Path, Path, Any],
) -> None:
    _, _, report = first_run
    leak = report.leak
    assert leak is not None and leak.path.exists()
    assert leak.trace.verdict == "ours"
    best = leak.trace.exports[0]
    assert best.export_id == leak.export_id and best.accessor == leak.recipient
    assert best.confidence >= 0.99
    # No other export is named with high confidence.
    assert all(m.confidence < 0.99 for m in leak.trace.exports[1:])
