"""Audited reads over HTTP vs the health endpoint, same server, same run (DESIGN.md §7).

Builds a vault home in a temporary directory (100,000 subjects with identity records by
default), registers duty officers with one API token each, starts the service in a separate
process (``custodes serve``), and drives it with ``wrk`` from another process on loopback:
first ``GET /v1/health`` (no auth, no data, no ledger entry), then
``POST /v1/records/identity/get`` with ``{"subject": ID, "purpose": "identity_check"}``.

The policy is the default one, unchanged: a duty officer may read identity (three fields) for
``identity_check``, at most 200 distinct subjects a day. So the load is spread over many
officers (one per 200 subjects; ``--officers N`` drives only the first N), each reading only
its own 200 subjects, and every read passes the full decision, daily limit included. Requests
rotate over (token, subject) pairs so that consecutive requests come from different officers,
and so do the connections' concurrent requests (each starts at another officer); each token
stays far below the default per-token rate limit. The measured reads start where
the warm-up started: they first repeat subjects the warm-up read, then go on to subjects this
server process has not seen yet (ID-number validation, data-key unwrap and pages uncached).

Every response is checked by the load generator: status 200 and a body holding the ID number
that was asked for (each connection has one request in flight, so the response belongs to the
last request sent on it); afterwards a sample of reads is repeated from Python and compared
field by field with the synthetic people. Each wrk thread has one connection and stops itself,
between requests, once the duration is over: nothing is in flight at the end, so the ledger
must grow by exactly the number of reads answered; the bench asserts it. All threads send their
first request at one moment, after wrk has set every one of them up (each parses only its own
share of the pairs), so every connection runs for the whole measured time; the output gives how
far apart they started and stopped (``start_spread_s``, ``stop_spread_s``).

The server is ``custodes serve`` as shipped (one process, access log on, to a file), or the
command ``--server`` gives (experiments: ``bench/experiments/http_servers.py``). Besides rates
and latencies the bench reports the CPU time per request of the server (from /proc: its process
and every process it started, so a server with worker processes is counted whole) and of the
load generator (wrk, from its rusage): on a machine shared with other work those figures move
much less than the rates do, and on two cores they say how much of the machine each side needs.
Prints one JSON object; the target is >= 2,000 reads/s with p99 < 25 ms.

    python bench/http.py [--subjects 100000] [--seconds 15] [--connections 16]
        [--officers N] [--backend sqlite|postgres] [--no-access-log] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.progress import Progress

from _machine import reference
from custodes._home import init_home
from custodes.config import Settings
from custodes.model import Access, Accessor, CredentialKind
from custodes.sim import Person, generate_people
from custodes.store import open_store
from custodes.vault import Vault

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
READ_PATH = "/v1/records/identity/get"
PER_OFFICER = 200  # the default policy's max_subjects_per_day for duty officers
DUTY_FIELDS = ("name", "id_number", "birth_date")  # what the duty officers' grant returns
SAMPLE = 50  # reads repeated from Python at the end and compared field by field
TARGET_RATE = 2_000
TARGET_P99_MS = 25.0
START_MARGIN_S = 1.0  # from launching wrk to the threads' common start (their set-up before)

# One wrk thread per connection; each thread checks every response and stops itself at the
# deadline with nothing in flight (wrk's own -d stop would abandon requests mid-way).
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
int usleep(unsigned int usec);
]]
local tspec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, tspec)  -- CLOCK_MONOTONIC: same clock in every thread
  return tonumber(tspec.tv_sec) + tonumber(tspec.tv_nsec) * 1e-9
end

local mode = os.getenv("BENCH_MODE")
local seconds = tonumber(os.getenv("BENCH_SECONDS"))
local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

local pairs_ = {}
local pos, deadline, current = 1, nil, nil
started, finished, answered, bad_status, bad_body = 0, 0, 0, 0, 0
first_bad = ""

function init(args)
  if mode == "read" then
    -- Each thread reads only its own share of the pairs (written for it by the bench, from
    -- where it starts in the rotation): wrk runs the threads' init one after another, and
    -- every thread parsing all the pairs made the last one start seconds after the first.
    for line in io.lines(os.getenv("BENCH_PAIRS") .. "." .. id) do
      local token, subject = line:match("^(%S+) (%S+)$")
      table.insert(pairs_, {token, subject})
    end
  end
end

function request()
  if deadline == nil then
    -- Every connection starts at the same moment (BENCH_GO, on the monotonic clock), so all
    -- of them run for the whole measured time.
    local wait = tonumber(os.getenv("BENCH_GO")) - now()
    if wait > 0 then ffi.C.usleep(math.floor(wait * 1e6)) end
    started = now()
    deadline = started + seconds
  end
  if mode == "health" then
    return wrk.format("GET", "/v1/health")
  end
  local pair = pairs_[pos]
  pos = pos % #pairs_ + 1
  current = pair[2]
  local body = '{"subject":"' .. current .. '","purpose":"identity_check"}'
  return wrk.format("POST", os.getenv("BENCH_PATH"), {
    ["Authorization"] = "Bearer " .. pair[1],
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    bad_status = bad_status + 1
    if first_bad == "" then first_bad = status .. " " .. body:sub(1, 300) end
  elseif mode == "read" and not body:find('"' .. current .. '"', 1, true) then
    bad_body = bad_body + 1
    if first_bad == "" then first_bad = body:sub(1, 300) end
  end
  local t = now()
  if t >= deadline then
    finished = t
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local first, last, total, status, wrong = nil, 0, 0, 0, 0
  local first_done, last_start = nil, 0
  local sample = ""
  for _, thread in ipairs(threads) do
    local s, f = thread:get("started"), thread:get("finished")
    if first == nil or s < first then first = s end
    if s > last_start then last_start = s end
    if first_done == nil or f < first_done then first_done = f end
    if f > last then last = f end
    total = total + thread:get("answered")
    status = status + thread:get("bad_status")
    wrong = wrong + thread:get("bad_body")
    if sample == "" then sample = thread:get("first_bad") end
  end
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"answered": %d, "seconds": %.6f, "start_spread_s": %.6f, "stop_spread_s": %.6f, '
    .. '"bad_status": %d, "bad_body": %d, '
    .. '"unfinished_threads": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f, "wrk_timeouts": %d, "wrk_socket_errors": %d}\n',
    total, last - first, last_start - first, last - first_done, status, wrong,
    (function() local n = 0; for _, t in ipairs(threads) do
      if t:get("finished") == 0 then n = n + 1 end end; return n end)(),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write))
  out:close()
  if sample ~= "" then io.stderr:write("first bad response: " .. sample .. "\n") end
end
"""


@contextmanager
def _fresh_database(admin_url: str, *, keep: bool) -> Iterator[str]:
    name = "custodes_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _unshadow_stdlib() -> None:
    """Run as a script, this file's directory is first on ``sys.path`` and its name hides the
    standard library's ``http`` package (which urllib and starlette import): drop that entry.
    Modules that import ``http`` are therefore imported inside functions, after this ran."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]


def _private_text(path: Path, text: str) -> None:
    # The files hold API tokens (of a throwaway vault, but tokens all the same).
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")


def _build(home: Path, backend: str, url: str | None, people: list[Person], officers: int) -> None:
    """Fill a new vault home; write the (token, subject) pairs the load rotates over and a
    sample of expected answers."""
    from custodes.api import Credentials

    settings = init_home(home, backend=backend, url=url)
    with Vault.open(settings) as vault:
        vault.add_accessor(Accessor("registrar-1", "registry", "registrar"))
        registrar = Access(vault.principal("registrar-1"), "registration")
        with Progress(transient=True) as progress:
            task = progress.add_task("loading the vault", total=len(people))
            for start in range(0, len(people), 5_000):
                chunk = people[start : start + 5_000]
                items = [(p.id_number, p.identity_record()) for p in chunk]
                vault.put_many(registrar, "identity", items)
                progress.advance(task, len(chunk))
        credentials = Credentials(store=vault.store)
        tokens = []
        for i in range(officers):
            officer = f"officer-{i:05d}"
            vault.add_accessor(Accessor(officer, "city-police", "duty_officer"))
            tokens.append(credentials.issue(CredentialKind.API_TOKEN, officer, timedelta(days=1)))
    # Officer i reads people i, i + officers, i + 2 * officers, ... (at most PER_OFFICER of
    # them); pair j goes to officer j % officers, so neighbouring requests differ in token.
    read = range(min(len(people), officers * PER_OFFICER))
    lines = [f"{tokens[j % officers]} {people[j].id_number}" for j in read]
    _private_text(home / "bench-pairs.txt", "\n".join(lines) + "\n")
    sample = [
        {
            "token": tokens[j % officers],
            "values": {k: v for k, v in people[j].identity_record().items() if k in DUTY_FIELDS},
        }
        for j in read[:: max(1, len(read) // SAMPLE)]
    ]
    _private_text(home / "bench-sample.json", json.dumps(sample, ensure_ascii=False))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(port: int, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@contextmanager
def _server(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    import urllib.error
    import urllib.request

    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux): a server may run worker processes."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its descendants (Linux), or None where
    /proc is missing."""
    total, seen = 0, False
    for member in _process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        seen = True
    return total / os.sysconf("SC_CLK_TCK") if seen else None


def _thread_shares(pairs: Path, threads: int, scratch: Path) -> Path:
    """Write each wrk thread's share of the (token, subject) pairs to ``<base>.<thread>``;
    return ``<base>``.

    Thread t starts at pair ``n * t / threads + t`` (far apart, and one pair further each, so
    that no two threads move through the officers in step: 16 threads at multiples of 6,250
    pairs would otherwise send 8 requests at a time as the same officer) and goes on in order,
    wrapping round the list; its share is the ``n / threads + 1`` pairs from there, more than
    it reads in a run, which it would repeat from its start if it got to the end.
    """
    lines = pairs.read_text(encoding="utf-8").splitlines(keepends=True)
    count, base = len(lines), scratch / "thread-pairs"
    size = count // threads + 1
    for t in range(threads):
        start = count * t // threads + t
        share = [lines[(start + k) % count] for k in range(min(size, count))]
        _private_text(Path(f"{base}.{t}"), "".join(share))
    return base


def _wrk(
    port: int, mode: str, seconds: float, connections: int, pairs: Path, scratch: Path
) -> dict[str, Any]:
    script, out = scratch / "bench.lua", scratch / f"wrk-{mode}.json"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    out.unlink(missing_ok=True)
    shares = _thread_shares(pairs, connections, scratch) if mode == "read" else pairs
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_SECONDS": str(seconds),
        "BENCH_PAIRS": str(shares),
        "BENCH_PATH": READ_PATH,
        "BENCH_OUT": str(out),
        # Python's monotonic clock is CLOCK_MONOTONIC, the one the script reads: every thread
        # sends its first request at this moment, once wrk has set them all up.
        "BENCH_GO": repr(time.monotonic() + START_MARGIN_S),
    }
    # wrk's own duration is only a backstop: each thread stops itself at the deadline.
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"-t{connections}",
        f"-c{connections}",
        f"-d{int(seconds) + 5}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def _measure(
    proc: subprocess.Popen[bytes],
    mode: str,
    args: argparse.Namespace,
    port: int,
    pairs: Path,
    scratch: Path,
) -> dict[str, Any]:
    cpu_before = _cpu_seconds(proc.pid)
    run = _wrk(port, mode, args.seconds, args.connections, pairs, scratch)
    cpu_after = _cpu_seconds(proc.pid)
    answered = run["answered"]
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "requests": answered,
        "per_s": round(answered / run["seconds"]),
        "p50_ms": run["p50_us"] / 1000,
        "p90_ms": run["p90_us"] / 1000,
        "p99_ms": run["p99_us"] / 1000,
        "max_ms": run["max_us"] / 1000,
        "server_cpu_us_per_request": None if cpu is None else round(cpu / answered * 1e6),
        "load_generator_cpu_us_per_request": round(run["cpu_s"] / answered * 1e6),
        "non_2xx": run["bad_status"],
        "wrong_body": run["bad_body"],
        "socket_errors": run["wrk_socket_errors"],
        "start_spread_s": round(run["start_spread_s"], 3),
        "stop_spread_s": round(run["stop_spread_s"], 3),
        "unfinished_threads": run["unfinished_threads"],
    }


def _check_sample(port: int, home: Path) -> int:
    """Repeat a sample of reads and compare every returned field with the synthetic person."""
    sample: Sequence[dict[str, Any]] = json.loads((home / "bench-sample.json").read_text())
    for item in sample:
        wanted = item["values"]
        body = {"subject": wanted["id_number"], "purpose": "identity_check"}
        status, answer = _post(port, READ_PATH, item["token"], body)
        assert status == 200, (status, answer)
        assert [r["values"] for r in answer["records"]] == [wanted], (answer, wanted)
    return len(sample)


def _events(settings: Settings) -> int:
    store = open_store(settings.store)
    try:
        return store.event_count()
    finally:
        store.close()


def positive(text: str) -> int:
    """A command-line whole number above zero (argparse's error otherwise)."""
    return _whole(text, minimum=1)


def _not_negative(text: str) -> int:
    return _whole(text, minimum=0)


def _whole(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        what = "a positive number" if minimum == 1 else f"at least {minimum}"
        raise argparse.ArgumentTypeError(f"must be {what}, not {value}")
    return value


def _duration(text: str) -> float:
    """Seconds of measuring: above zero."""
    value = _warmup(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _warmup(text: str) -> float:
    """Seconds of warm-up: zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=positive, default=100_000)
    parser.add_argument(
        "--officers",
        type=_not_negative,
        default=0,
        help="drive only the first N officers (200 subjects each; default: all, subjects / 200)",
    )
    parser.add_argument("--seconds", type=_duration, default=15.0)
    parser.add_argument("--warmup", type=_warmup, default=5.0, help="seconds of reads first")
    parser.add_argument("--connections", type=positive, default=16)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL (a database is made)")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server's access log (on by default, as in 'custodes serve'), to a file",
    )
    parser.add_argument("--keep", type=Path, help="build the home here (or reuse it) and keep it")
    parser.add_argument(
        "--server",
        default="",
        help="another server command, {home} and {port} filled in (default: custodes serve)",
    )
    return parser.parse_args()


def _server_command(args: argparse.Namespace, home: Path, port: int) -> list[str]:
    if args.server:
        return [part.format(home=home, port=port) for part in args.server.split()]
    command = [sys.executable, "-m", "custodes.cli", "serve", "--home", str(home)]
    command += ["--port", str(port)]
    if not args.access_log:
        command.append("--no-access-log")
    return command


def _pairs(home: Path, officers: int, scratch: Path) -> tuple[Path, int]:
    """The (token, subject) pairs of the first ``officers`` officers (all if 0)."""
    built = json.loads((home / "bench-manifest.json").read_text())["officers"]
    if not officers or officers >= built:
        return home / "bench-pairs.txt", built
    lines = (home / "bench-pairs.txt").read_text().splitlines(keepends=True)
    chosen = scratch / "bench-pairs.txt"
    _private_text(chosen, "".join(line for j, line in enumerate(lines) if j % built < officers))
    return chosen, officers


def ensure_home(home: Path, backend: str, url: str | None, subjects: int) -> float:
    """Build the bench's vault home (``subjects`` people, one duty officer per 200) at ``home``
    unless it holds one already; return the build's seconds (0 for a kept home)."""
    if (home / "bench-manifest.json").exists():
        return 0.0
    if home.exists() and (not home.is_dir() or (home / "custodes.toml").exists()):
        # Never build over a vault (or file) this bench did not make: nothing is written.
        raise SystemExit(
            f"{home} is not a home this bench built (no bench-manifest.json); "
            "give --keep a new or empty directory"
        )
    people = generate_people(subjects, seed=1)
    start = time.perf_counter()
    built = max(1, -(-subjects // PER_OFFICER))
    _build(home, backend, url, people, built)
    manifest = {"subjects": subjects, "officers": built}
    (home / "bench-manifest.json").write_text(json.dumps(manifest))
    return time.perf_counter() - start


def _run(args: argparse.Namespace, home: Path, url: str | None, scratch: Path) -> dict[str, Any]:
    build_s = ensure_home(home, args.backend, url, args.subjects)
    subjects = json.loads((home / "bench-manifest.json").read_text())["subjects"]
    pairs, officers = _pairs(home, args.officers, scratch)
    settings = Settings.load(home)
    port = _free_port()
    load_before = os.getloadavg()
    with _server(_server_command(args, home, port), port, scratch / "server.log") as proc:
        if args.warmup > 0:
            _wrk(port, "read", args.warmup, args.connections, pairs, scratch)
        health = _measure(proc, "health", args, port, pairs, scratch)
        before = _events(settings)
        reads = _measure(proc, "read", args, port, pairs, scratch)
        after = _events(settings)
        checked = _check_sample(port, home)
    load_after = os.getloadavg()
    ledger_growth = after - before
    assert reads["non_2xx"] == 0 and reads["wrong_body"] == 0, reads
    assert health["non_2xx"] == 0, health
    assert reads["unfinished_threads"] == 0 and health["unfinished_threads"] == 0
    assert ledger_growth == reads["requests"], (ledger_growth, reads["requests"])
    return {
        "benchmark": "http.audited_get",
        "backend": args.backend,
        "subjects": subjects,
        "officers": officers,
        "subjects_read": min(subjects, officers * PER_OFFICER),
        "connections": args.connections,
        "access_log": args.access_log,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "reads": reads,
        "health": health,
        "ratio_reads_to_health": round(reads["per_s"] / health["per_s"], 3),
        "ledger_growth": ledger_growth,
        "sample_reads_checked": checked,
        "targets": {"reads_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS},
        "met": reads["per_s"] >= TARGET_RATE and reads["p99_ms"] < TARGET_P99_MS,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "build_s": round(build_s, 1),
        "machine_reference": reference(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    _unshadow_stdlib()
    args = _parse()
    with tempfile.TemporaryDirectory(prefix="custodes-bench-http-") as tmp:
        scratch = Path(tmp)
        home = args.keep.resolve() if args.keep else scratch / "home"
        if args.backend == "postgres" and not (home / "bench-manifest.json").exists():
            with _fresh_database(args.pg_url, keep=args.keep is not None) as url:
                result = _run(args, home, url, scratch)
        else:
            result = _run(args, home, None, scratch)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
