"""``bench/http_inproc.py`` refuses bad input with a clear message and touches nothing (its bad
numbers are in tests/test_bench_http.py, beside bench/http.py's, whose check it uses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from custodes._home import init_home

BENCH = Path(__file__).resolve().parents[1] / "bench" / "http_inproc.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_vault_the_bench_did_not_build_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    init_home(home)
    before = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    done = _run("--keep", str(home), "--subjects", "200")
    assert done.returncode != 0
    assert "is not a home this bench built" in done.stderr
    assert "Traceback" not in done.stderr
    after = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    assert after == before


def test_more_reads_than_the_home_holds_is_a_clear_error(tmp_path: Path) -> None:
    # 200 subjects make one officer and 200 (token, subject) pairs.
    done = _run("--keep", str(tmp_path / "small"), "--subjects", "200", "--reads", "500")
    assert done.returncode != 0
    assert "--rounds x --reads needs 1501 pairs; the home has 200" in done.stderr
    assert "Traceback" not in done.stderr
