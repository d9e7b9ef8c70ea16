"""The command line: a scripted session works; a user error is one line, exit 1, no traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from custodes.cli import main
from custodes.sim import generate_people

PERSON = generate_people(1, seed=21)[0]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "custodes.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )


def ok(home: Path, *args: str) -> object:
    result = cli(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "vault"
    ok(home, "init")
    for accessor, org, role in [
        ("desk", "hotel-1", "registrar"),
        ("li", "police-1", "investigator"),
        ("wu", "police-1", "supervisor"),
    ]:
        ok(home, "accessor", "add", accessor, "--org", org, "--role", role)
    ok(
        home,
        "put",
        "identity",
        "--subject",
        PERSON.id_number,
        "--as",
        "desk",
        "--purpose",
        "registration",
        "--field",
        f"name={PERSON.name}",
        "--field",
        f"id_number={PERSON.id_number}",
        "--field",
        f"phone={PERSON.phone}",
    )
    return home


def test_init_keeps_keys_private_and_apart_from_the_database(home: Path) -> None:
    key = home / "keys" / "root.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (home / "data" / "custodes.db").exists()
    assert key.parent != (home / "data")
    again = cli(home, "init")
    assert again.returncode == 1 and "already holds a vault" in again.stderr


def test_case_flow_reads_with_a_reason(home: Path) -> None:
    denied = cli(
        home,
        "get",
        "identity",
        "--subject",
        PERSON.id_number,
        "--as",
        "li",
        "--purpose",
        "criminal_investigation",
    )
    assert denied.returncode == 1 and "requires a case" in denied.stderr
    case = ok(
        home,
        "case",
        "open",
        "--as",
        "li",
        "--purpose",
        "criminal_investigation",
        "--subject",
        PERSON.id_number,
        "--days",
        "7",
    )
    assert isinstance(case, dict)
    ok(home, "case", "approve", case["case"], "--as", "wu")
    records = ok(
        home,
        "get",
        "identity",
        "--subject",
        PERSON.id_number,
        "--as",
        "li",
        "--purpose",
        "criminal_investigation",
        "--case",
        case["case"],
    )
    assert isinstance(records, list) and records[0]["values"]["name"] == PERSON.name
    explained = ok(
        home,
        "policy",
        "explain",
        "get",
        "identity",
        "--as",
        "li",
        "--purpose",
        "criminal_investigation",
        "--case",
        case["case"],
        "--subject",
        PERSON.id_number,
    )
    assert isinstance(explained, dict) and explained["allowed"] is True
    closed = ok(home, "case", "close", case["case"], "--as", "li")
    assert isinstance(closed, dict) and closed["closed_at"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("get", "identity", "--subject", "123", "--as", "li", "--purpose", "x"), "18"),
        (
            ("get", "nosuch", "--subject", PERSON.id_number, "--as", "li", "--purpose", "x"),
            "unknown collection",
        ),
        (
            ("get", "identity", "--subject", PERSON.id_number, "--as", "ghost", "--purpose", "x"),
            "no accessor",
        ),
        (
            (
                "put",
                "identity",
                "--subject",
                PERSON.id_number,
                "--as",
                "desk",
                "--purpose",
                "registration",
                "--field",
                "oops",
            ),
            "NAME=VALUE",
        ),
        (
            ("find", "identity", "--field", "phone=138*", "--as", "li", "--purpose", "x"),
            "exact values only",
        ),
        (("case", "show", "C-NOPE"), "no case"),
        (("policy", "explain", "fly", "identity", "--as", "li"), "unknown action"),
        (("accessor", "add", "z", "--org", "o", "--role", "emperor"), "not in the policy"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    home: Path, args: tuple[str, ...], needle: str
) -> None:
    result = cli(home, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert PERSON.id_number not in result.stderr


def test_invalid_policy_file_is_a_clear_error(home: Path) -> None:
    (home / "policy.toml").write_text("[[grants]\n", encoding="utf-8")
    result = cli(home, "accessor", "list")
    assert result.returncode == 1 and "policy.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_vault_says_how_to_create_one(tmp_path: Path) -> None:
    result = cli(tmp_path / "none", "accessor", "list")
    assert result.returncode == 1 and "custodes init" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["get"]) == 2


def test_export_writes_a_new_file_and_never_overwrites(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("keep me", encoding="utf-8")
    result = cli(
        home, "export", "identity", "--as", "li", "--purpose", "statistics", "--out", str(target)
    )
    assert result.returncode == 1 and "never overwrite" in result.stderr
    assert target.read_text(encoding="utf-8") == "keep me"
