"""Fixtures for the web pages: a demo vault served by uvicorn, and headless Chromium.

The browser is Debian's ``chromium`` driven by Playwright (never ``playwright install``). Under
``CI=true`` a missing browser fails the run; elsewhere the browser tests are skipped with the
reason. One small demo (200 people, 3 days) is built per session and copied before anything
serves it, so a test can tamper with its own copy while the other copy stays intact.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from custodes.api import create_app
from custodes.config import Settings
from custodes.demo import DemoReport, Victim, run_demo
from custodes.web import issue_portal_code
from tests.helpers import explode_ledger, one_entry, stored_entry

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
DEMO_PEOPLE = 200
DEMO_DAYS = 3
DEMO_SEED = 7


@dataclass(frozen=True)
class Demo:
    """A demo vault home and what its run reported (the victims and the ground truth)."""

    home: Path
    report: DemoReport

    def victim(self, kind: str) -> Victim:
        """The subject the abuser of ``kind`` read most."""
        return next(v for v in self.report.victims if v.kind == kind)


class LiveServer:
    """``create_app`` for a vault home, served by uvicorn in a thread on a free loopback port."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings.load(home)
        self.app = create_app(self.settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, ws="none", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()

    def portal_code(self, subject: str) -> str:
        """A fresh one-time sign-in code for the subject with this ID number."""
        service = self.app.state.service
        minutes = self.settings.api.portal_code_minutes
        code, _ = issue_portal_code(service.vault, subject, minutes=minutes, clock=service.clock)
        return code


def tamper_entry(home: Path, seq: int, old: bytes, new: bytes) -> None:
    """Rewrite one stored ledger entry as an intruder with database access would: drop the
    append-only trigger, then edit the row in place."""
    settings = Settings.load(home)
    explode_ledger(settings.store)  # one row per entry, so that the edit touches one
    entry = stored_entry(settings.store, seq)
    assert old in entry, "the entry to tamper does not hold the expected bytes"
    with closing(sqlite3.connect(settings.store.path)) as conn, conn:
        conn.execute("DROP TRIGGER IF EXISTS ledger_bundles_no_update")
        conn.execute(
            "UPDATE ledger_bundles SET entries = ? WHERE seq = ?",
            (one_entry(entry.replace(old, new)), seq),
        )


@pytest.fixture(scope="session")
def demo_homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Demo, Demo]:
    """One demo run and an untouched copy of it (for tests that tamper with their vault)."""
    base = tmp_path_factory.mktemp("portal-demo")
    report = run_demo(base / "home", people=DEMO_PEOPLE, days=DEMO_DAYS, seed=DEMO_SEED)
    kinds = {m.kind for m in report.result.truth}
    assert "seller" in kinds, "the demo's ground truth has no seller to sign in as the victim of"
    shutil.copytree(base / "home", base / "copy", symlinks=True)
    return Demo(base / "home", report), Demo(base / "copy", report)


@pytest.fixture(scope="session")
def demo(demo_homes: tuple[Demo, Demo]) -> Demo:
    """The demo vault the live server serves (never tampered with)."""
    return demo_homes[0]


@pytest.fixture(scope="session")
def live_server(demo: Demo) -> Iterator[LiveServer]:
    """The demo vault's app, served on a loopback port."""
    server = LiveServer(demo.home).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's chromium, or fail (CI) / skip (elsewhere) with the reason."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    """A headless Chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page for one test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
