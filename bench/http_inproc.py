"""Audited reads through the HTTP app in process, against ``Vault.get`` on the same vault.

``bench/http.py`` measures the service over loopback with wrk, and on a shared 2-core machine
its rates move by a quarter from run to run for the same code. This bench leaves the network,
uvicorn and the load generator out: it calls the ASGI app (FastAPI, custodes' middleware, the
lean record routes, authentication, the vault) directly with one request at a time, on uvloop,
and reports the CPU time per read. Beside it, in the same run, the same reads through
``Vault.get`` (the baseline: the ratio is what the HTTP layers cost on top of the vault), and
``GET /v1/health`` through the app.

The home is the one ``bench/http.py`` builds (100,000 subjects, 500 duty officers with a token
each), built here if ``--keep DIR`` does not hold one yet. Before measuring, every officer reads
once, so the daily-limit query of an officer's first read in a process is not counted. Then, in
alternating rounds: ``--reads`` reads of subjects this process has not read yet through the app
("first reads": ID validation, data-key unwrap, cold pages), the same subjects again through the
app ("repeat reads") and once more through ``Vault.get``. Every response is checked (status 200,
the asked-for ID number in the body) and the ledger must grow by exactly the reads made.

    python bench/http_inproc.py [--keep DIR] [--subjects 100000] [--reads 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from rich.progress import Progress

from _machine import reference
from custodes.config import Settings
from custodes.model import Access

HERE = Path(__file__).resolve().parent
PURPOSE = "identity_check"

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _http_bench() -> Any:
    """``bench/http.py`` as a module (its name would hide the standard library's ``http``)."""
    spec = importlib.util.spec_from_file_location("custodes_bench_http", HERE / "http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HTTP_BENCH = _http_bench()  # its home builder, read path and import fix-up


async def _request(
    app: Asgi, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8470),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes: the app answers first
        raise AssertionError("unreachable")

    status, chunks = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _read(app: Asgi, token: str, subject: str) -> None:
    body = json.dumps({"subject": subject, "purpose": PURPOSE}).encode()
    headers = [
        (b"authorization", b"Bearer " + token.encode()),
        (b"content-type", b"application/json"),
    ]
    status, answer = await _request(app, "POST", HTTP_BENCH.READ_PATH, headers, body)
    if status != 200 or f'"{subject}"'.encode() not in answer:
        raise SystemExit(f"bad answer to a read of {subject}: {status} {answer[:300]!r}")


async def _health(app: Asgi) -> None:
    status, _ = await _request(app, "GET", "/v1/health", [], b"")
    if status != 200:
        raise SystemExit(f"health answered {status}")


def _cpu_us(start: float, count: int) -> float:
    return round((time.process_time() - start) / count * 1e6, 1)


async def _measure(app: Any, home: Path, args: argparse.Namespace, officers: int) -> dict[str, Any]:
    vault = app.state.service.vault
    lines = (home / "bench-pairs.txt").read_text().splitlines()
    pairs: list[tuple[int, str, str]] = []
    for j, line in enumerate(lines):
        token, subject = line.split()
        pairs.append((j % officers, token, subject))
    accesses = {i: Access(vault.principal(f"officer-{i:05d}"), PURPOSE) for i in range(officers)}
    needed = officers + args.rounds * args.reads
    if needed > len(pairs):
        raise SystemExit(f"--rounds x --reads needs {needed} pairs; the home has {len(pairs)}")
    before = vault.store.event_count()
    for _, token, subject in pairs[:officers]:  # every officer's first read: not measured
        await _read(app, token, subject)
    rounds: list[dict[str, float]] = []
    made = officers
    with Progress(transient=True) as progress:
        task = progress.add_task("reading", total=args.rounds)
        for r in range(args.rounds):
            chunk = pairs[officers + r * args.reads : officers + (r + 1) * args.reads]
            start = time.process_time()
            for _, token, subject in chunk:
                await _read(app, token, subject)
            first = _cpu_us(start, len(chunk))
            start = time.process_time()
            for _, token, subject in chunk:
                await _read(app, token, subject)
            repeat = _cpu_us(start, len(chunk))
            start = time.process_time()
            for officer, _, subject in chunk:
                if not vault.get(accesses[officer], "identity", subject):
                    raise SystemExit(f"Vault.get found nothing for {subject}")
            direct = _cpu_us(start, len(chunk))
            start = time.process_time()
            for _ in chunk:
                await _health(app)
            health = _cpu_us(start, len(chunk))
            made += 3 * len(chunk)
            rounds.append({"first": first, "repeat": repeat, "vault_get": direct, "health": health})
            progress.advance(task)
    growth = vault.store.event_count() - before
    if growth != made:
        raise SystemExit(f"the ledger grew by {growth}, not by the {made} reads made")
    best = {key: min(one[key] for one in rounds) for key in rounds[0]}
    return {"rounds": rounds, "best": best, "ledger_growth": growth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="the home to use (built there if missing)")
    positive = HTTP_BENCH.positive
    parser.add_argument("--subjects", type=positive, default=100_000)
    parser.add_argument("--reads", type=positive, default=2_000, help="reads per kind per round")
    parser.add_argument("--rounds", type=positive, default=3)
    args = parser.parse_args()
    HTTP_BENCH._unshadow_stdlib()  # before anything imports starlette (the home's build does)
    with tempfile.TemporaryDirectory(prefix="custodes-bench-inproc-") as tmp:
        home = args.keep.resolve() if args.keep else Path(tmp) / "home"
        HTTP_BENCH.ensure_home(home, "sqlite", None, args.subjects)
        built: dict[str, int] = json.loads((home / "bench-manifest.json").read_text())
        from custodes.api import create_app

        app = create_app(Settings.load(home))
        try:
            measured = uvloop.run(_measure(app, home, args, built["officers"]))
        finally:
            app.state.service.close()
    best = measured["best"]
    result = {
        "benchmark": "http.inproc_audited_get",
        "subjects": built["subjects"],
        "officers": built["officers"],
        "reads_per_kind_per_round": args.reads,
        "cpu_us_per_read": best,
        "ratio_app_to_vault_get": round(best["repeat"] / best["vault_get"], 3),
        "http_layers_us": round(best["repeat"] - best["vault_get"], 1),
        "rounds": measured["rounds"],
        "ledger_growth": measured["ledger_growth"],
        "machine_reference": reference(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
