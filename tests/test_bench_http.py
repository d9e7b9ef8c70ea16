"""``bench/http.py``: each wrk thread gets its own share of the pairs to parse; bad options (of
it and of ``bench/http_inproc.py``) are refused before anything is built."""

from __future__ import annotations

import http.client  # noqa: F401 - the standard library's, before bench/ (whose http.py) is on the path
import importlib.util
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # for its _machine module
    spec = importlib.util.spec_from_file_location("custodes_bench_http_t", BENCH / "http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_thread_starts_apart_and_one_further_wrapping_round(
    bench: ModuleType, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"token-{j % 4} subject-{j}\n" for j in range(10)))
    base = bench._thread_shares(pairs, 3, tmp_path)
    shares = [Path(f"{base}.{t}").read_text().split("\n")[:-1] for t in range(3)]
    # thread t starts at 10 t / 3 + t and takes 10 // 3 + 1 pairs, wrapping round
    assert [[line.split()[1] for line in share] for share in shares] == [
        ["subject-0", "subject-1", "subject-2", "subject-3"],
        ["subject-4", "subject-5", "subject-6", "subject-7"],
        ["subject-8", "subject-9", "subject-0", "subject-1"],
    ]
    assert shares[0][0] == "token-0 subject-0"  # lines are copied whole
    for t in range(3):  # they hold API tokens: owner-only
        assert stat.S_IMODE(Path(f"{base}.{t}").stat().st_mode) == 0o600


def test_more_threads_than_pairs_still_gives_every_thread_pairs(
    bench: ModuleType, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a s-0\nb s-1\n")
    base = bench._thread_shares(pairs, 4, tmp_path)
    for t in range(4):
        assert len(Path(f"{base}.{t}").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("script", "option", "value", "says"),
    [
        ("http.py", "--connections", "0", "must be a positive number, not 0"),
        ("http.py", "--subjects", "-3", "must be a positive number, not -3"),
        ("http.py", "--officers", "-1", "must be at least 0, not -1"),
        ("http.py", "--officers", "some", "'some' is not a whole number"),
        ("http.py", "--seconds", "0", "must be more than 0 seconds"),
        ("http.py", "--seconds", "nan", "must be 0 or more seconds, not nan"),
        ("http.py", "--warmup", "-1", "must be 0 or more seconds, not -1"),
        ("http.py", "--warmup", "soon", "'soon' is not a number of seconds"),
        ("http_inproc.py", "--reads", "0", "must be a positive number, not 0"),
        ("http_inproc.py", "--rounds", "-2", "must be a positive number, not -2"),
        ("http_inproc.py", "--subjects", "many", "'many' is not a whole number"),
    ],
)
def test_bad_options_are_refused_before_anything_is_built(
    tmp_path: Path, script: str, option: str, value: str, says: str
) -> None:
    # bench/http_inproc.py takes its whole-number check from bench/http.py: both are covered.
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--keep", str(home), f"{option}={value}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
    assert not home.exists()
