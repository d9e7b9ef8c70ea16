"""``custodes demo`` ends by serving the portal and dashboard and saying how to sign in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from custodes.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until_serving(proc: subprocess.Popen[str], deadline: float) -> str:
    seen = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "custodes is serving" in line or "Auditor dashboard" in "".join(seen[-3:]):
            # the panel is printed in one go; read the rest of it
            for _ in range(40):
                more = proc.stdout.readline()
                seen.append(more)
                if "╰" in more:
                    break
            return "".join(seen)
    raise AssertionError("the demo never said it was serving:\n" + "".join(seen))


def test_demo_serves_and_prints_working_sign_in(tmp_path: Path) -> None:
    port = _free_port()
    home = tmp_path / "vault"
    args = ["demo", "--people", "150", "--days", "2", "--seed", "5", "--home", str(home)]
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "custodes.cli", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        text = _read_until_serving(proc, time.monotonic() + 120)
        token = re.search(r"(cst_[A-Za-z0-9_-]{20,})", text)
        codes = re.findall(r"one-time code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})", text)
        assert token is not None, text
        assert codes, text
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = httpx.get(f"{base}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        assert httpx.get(f"{base}/v1/alerts", headers=auth, timeout=5).status_code == 200
        assert httpx.get(f"{base}/v1/alerts", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_demo_refuses_a_busy_port_before_working(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        home = tmp_path / "vault"
        args = ["demo", "--people", "150", "--days", "2", "--home", str(home)]
        assert main([*args, "--port", str(port)]) == 1
    assert not home.exists()
