"""``custodes token`` and ``custodes serve``: a token is shown once and works against a served
vault; revoking it ends it; serving beyond loopback needs TLS; the access log has no queries."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.cli import main
from custodes.sim import generate_people

PERSON = generate_people(1, seed=31)[0]


@contextlib.contextmanager
def mock_stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (a fresh interpreter per command would cost seconds)."""
    with (
        contextlib.redirect_stdout(io.StringIO()) as out,
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def ok(home: Path, *args: str) -> Any:
    status, out, err = run(*args, "--home", str(home), "--json")
    assert status == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("serve") / "vault"
    ok(home, "init")
    ok(home, "accessor", "add", "reg-1", "--org", "hotel-1", "--role", "registrar")
    ok(home, "accessor", "add", "duty-1", "--org", "police-1", "--role", "duty_officer")
    fields = [f"--field=name={PERSON.name}", f"--field=id_number={PERSON.id_number}"]
    put = ("put", "identity", "--subject", PERSON.id_number, "--as", "reg-1")
    ok(home, *put, "--purpose", "registration", *fields)
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[tuple[str, Path]]:
    """``custodes serve`` in a child process; yields its base URL and its log file."""
    port = _free_port()
    log = home.parent / "serve.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custodes.cli",
                "serve",
                "--home",
                str(home),
                "--port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "custodes serve did not start"
            time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_created_token_is_shown_once_and_works(home: Path, served: tuple[str, Path]) -> None:
    base, _ = served
    created = ok(home, "token", "create", "--as", "duty-1", "--days", "7")
    assert isinstance(created, dict)
    token = created["token"]
    assert token.startswith("cst_") and created["accessor"] == "duty-1" and created["days"] == 7
    body = {"subject": PERSON.id_number, "purpose": "identity_check"}
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(base + "/v1/records/identity/get", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["records"][0]["values"]["name"] == PERSON.name

    # Revoked by the CLI (not the server's process): the server stops accepting it once its
    # cache entry ages out.
    with mock_stdin(token + "\n"):
        assert ok(home, "token", "revoke") == {"revoked": True}
    deadline = time.monotonic() + 10
    while (
        httpx.post(base + "/v1/records/identity/get", json=body, headers=headers).status_code != 401
    ):
        assert time.monotonic() < deadline, "a revoked token was still accepted after 10 s"
        time.sleep(0.25)
    status, _, err = run("token", "revoke", token, "--home", str(home))
    assert status == 1 and "no such API token" in err


def test_the_access_log_has_no_query_strings(served: tuple[str, Path]) -> None:
    base, log = served
    assert httpx.get(base + "/v1/ledger/consistency?old=1&new=1").status_code == 200
    time.sleep(0.3)
    text = log.read_text()
    assert "/v1/ledger/consistency" in text
    assert "old=1" not in text


def test_forwarding_headers_are_not_believed_by_default(served: tuple[str, Path]) -> None:
    """A client on loopback (where every client is, by default) cannot pick the address the
    portal's sign-in throttle counts its failures under by sending X-Forwarded-For."""
    base, _ = served
    wrong = {"code": "AAAA-BBBB-CCCC"}
    for i in range(10):
        spoofed = {"origin": base, "x-forwarded-for": f"203.0.113.{i}"}
        response = httpx.post(base + "/portal/login", data=wrong, headers=spoofed)
        assert response.status_code == 401, response.text
    spoofed = {"origin": base, "x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    response = httpx.post(base + "/portal/login", data=wrong, headers=spoofed)
    assert response.status_code == 429 and "Too many attempts" in response.text


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.1,", "300.1.2.3"])
def test_a_trusted_proxy_must_be_an_address(home: Path, value: str) -> None:
    status, _, err = run("serve", "--home", str(home), "--trusted-proxy", value, "--port", "1")
    assert status == 1
    assert "--trusted-proxy" in err and "not an IP address or network" in err


def test_tokens_are_only_for_known_accessors(home: Path) -> None:
    status, _, err = run("token", "create", "--as", "nobody", "--home", str(home))
    assert status == 1
    assert "no accessor 'nobody'" in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])  # noqa: S104 - refused
def test_serving_beyond_loopback_needs_tls(home: Path, host: str) -> None:
    status, _, err = run("serve", "--home", str(home), "--host", host, "--port", "1")
    assert status == 1
    assert "without TLS" in err


def test_tls_options_go_together(home: Path) -> None:
    status, _, err = run("serve", "--home", str(home), "--tls-cert", str(home / "cert.pem"))
    assert status == 1
    assert "go together" in err


def test_token_json_is_machine_readable(home: Path) -> None:
    assert set(ok(home, "token", "create", "--as", "reg-1")) == {"token", "accessor", "days"}


def test_serving_freezes_what_was_built_before_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The app, the vault and the modules are kept out of the collector's full passes (they
    stall the loop); what the server allocates afterwards is collected as usual."""
    import gc

    import uvicorn

    from custodes._cli_serve import FULL_PASS_EVERY, run_server

    seen: dict[str, int] = {}

    def serve(app: Any, **options: Any) -> None:  # stands in for the blocking serve loop only
        seen["frozen"] = gc.get_freeze_count()
        seen["enabled"] = int(gc.isenabled())
        seen["full_every"] = gc.get_threshold()[2]

    monkeypatch.setattr(uvicorn, "run", serve)
    gc.unfreeze()
    before = gc.get_threshold()
    try:
        run_server(object(), host="127.0.0.1", port=0, access_log=False)
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 10_000 and seen["enabled"] == 1
    # full passes rarer while serving; the thresholds are back once it stops
    assert seen["full_every"] == FULL_PASS_EVERY > before[2]
    assert gc.get_threshold() == before
