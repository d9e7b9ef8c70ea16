"""Where the API runs vault calls: on the event loop with SQLite, in the thread pool with
PostgreSQL, and never on the loop while the caller has a read running elsewhere (the loop would
wait for it, and every other request with it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodes.vault import Vault
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for

WORKER = "AnyIO worker thread"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    home = tmp_path / "home"
    yield from build_api(home, store_settings_for(str(request.param), home, request))


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads each read was decided and opened in (the real call, only
    observed; Vault.get and Vault.get_on_loop both go through it)."""
    seen: list[str] = []
    real = Vault._prepare_get

    def observed(self: Vault, *args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Vault, "_prepare_get", observed)
    return seen


def _read(api: Api, number: int = 0) -> Any:
    body = {"subject": PEOPLE[number].id_number, "purpose": "identity_check"}
    return api.post("/v1/records/identity/get", "duty-1", body)


def test_reads_run_on_the_loop_with_sqlite_and_in_the_pool_with_postgres(
    served: Api, threads: list[str]
) -> None:
    response = _read(served)
    assert response.status_code == 200, response.text
    assert response.json()["records"][0]["values"]["id_number"] == PEOPLE[0].id_number
    backend = served.vault.settings.store.backend
    assert len(threads) == 1
    assert threads[0].startswith(WORKER) == (backend == "postgres"), threads


def test_a_read_waiting_for_the_callers_export_does_not_stall_the_loop(
    served: Api, threads: list[str]
) -> None:
    vault = served.vault
    held, release = threading.Event(), threading.Event()

    def long_export() -> None:  # stands for an export of duty-1's running in the pool
        with vault._reader_lock("duty-1"):
            held.set()
            release.wait(5)

    exporter = threading.Thread(target=long_export)
    exporter.start()
    held.wait(5)
    results: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: results.setdefault("read", _read(served, 1)))
    reader.start()
    time.sleep(0.2)
    started = time.perf_counter()
    health = served.client.get("/v1/health")  # the loop answers while the read waits
    answered = time.perf_counter() - started
    release.set()
    reader.join(5)
    exporter.join(5)
    assert health.status_code == 200 and answered < 1.0
    assert results["read"].status_code == 200
    # Waited for in a worker thread: the API's pool (PostgreSQL) or asyncio's (the vault's
    # loop path, SQLite), never the loop's own thread.
    assert threads and threads[-1].startswith((WORKER, "asyncio_")), threads
