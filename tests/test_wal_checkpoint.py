"""The background WAL checkpointer: with reads committing on an event loop, the WAL is started
over again and again (it stays a fraction of what it grows to without), every read is still
ledgered and the ledger verifies; commits held for its last pass wait and go out on release,
and a loop that cannot answer, or is gone, is never left held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from custodes._loopcommit import LoopCommit
from custodes._walcheckpoint import WalCheckpointer
from custodes.config import StoreSettings
from custodes.sim import generate_people
from custodes.vault import Vault
from tests.helpers import access, make_vault, officers_vault

PEOPLE = generate_people(40, seed=41)


def _filled(home: Path, store: StoreSettings) -> Vault:
    return officers_vault(home, store, PEOPLE, 8)[0]


def _read_a_lot(vault: Vault, rounds: int) -> int:
    """Eight officers read concurrently on one loop, ``rounds`` reads each; return the WAL
    file's largest size seen."""
    officers = [access(vault, f"duty-{i}", "identity_check") for i in range(1, 9)]
    wal = Path(str(vault.settings.store.path) + "-wal")
    with closing(sqlite3.connect(vault.settings.store.path)) as empty:  # both start at nothing
        empty.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    largest = 0

    async def officer(i: int) -> None:
        nonlocal largest
        for r in range(rounds):
            person = PEOPLE[(i * 5 + r) % len(PEOPLE)]
            found = await vault.get_on_loop(officers[i], "identity", person.id_number)
            assert found[0].values["name"] == person.name
            if wal.exists():
                largest = max(largest, wal.stat().st_size)
            await asyncio.sleep(0.002)  # let the checkpointer's thread run now and then

    async def main() -> None:
        await asyncio.gather(*(officer(i) for i in range(8)))

    asyncio.run(main())
    return largest


def test_the_wal_stays_bounded_and_every_read_is_ledgered(tmp_path: Path) -> None:
    sqlite = lambda home: StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")  # noqa: E731
    # Without the checkpointer, and with SQLite's own checkpoint out of the way, the WAL grows.
    plain = _filled(tmp_path / "plain", sqlite(tmp_path / "plain"))
    plain.store.set_wal_autocheckpoint(1_000_000)
    grown = _read_a_lot(plain, 60)
    plain.close()

    vault = _filled(tmp_path / "kept", sqlite(tmp_path / "kept"))
    before = vault.store.event_count()
    assert vault.keep_wal_bounded(pages=40, cap=1_000_000, interval=0.002)
    assert not vault.keep_wal_bounded()  # one is enough
    checkpointer = vault._wal
    assert checkpointer is not None
    largest = _read_a_lot(vault, 60)
    assert checkpointer.restarts >= 1, (checkpointer.passes, checkpointer.restarts)
    assert largest < grown / 3, (largest, grown, checkpointer.passes, checkpointer.restarts)
    assert vault.store.event_count() == before + 8 * 60
    vault.ledger.verify()
    vault.close()
    assert not checkpointer._thread.is_alive()


def test_only_an_sqlite_vault_runs_one(tmp_path: Path, store_settings: StoreSettings) -> None:
    vault = make_vault(tmp_path / "home", store_settings)
    started = vault.keep_wal_bounded()
    assert started == (store_settings.backend == "sqlite")
    vault.close()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    for bad in ({"pages": 0}, {"slack": -1}, {"interval": 0.0}):
        with pytest.raises(ValueError):
            WalCheckpointer(conn, LoopCommit(list).held, **bad)  # type: ignore[arg-type]
    conn.close()


# -- holding a loop's commits from another thread ----------------------------------------------


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join()
    running.close()


def _commit(written: list[list[int]]) -> LoopCommit[int, int]:
    def write(items: list[int]) -> list[int]:
        written.append(list(items))
        return items

    return LoopCommit(write)


def test_held_commits_wait_and_go_out_on_release(loop: asyncio.AbstractEventLoop) -> None:
    written: list[list[int]] = []
    commit = _commit(written)
    assert asyncio.run_coroutine_threadsafe(commit.submit(1), loop).result(2) == 1
    with commit.held() as held:
        assert held
        waiting = [asyncio.run_coroutine_threadsafe(commit.submit(i), loop) for i in (2, 3)]
        time.sleep(0.1)
        assert written == [[1]] and not any(f.done() for f in waiting)
    assert [f.result(2) for f in waiting] == [2, 3]
    assert written == [[1], [2, 3]]  # written together, right after the release


def test_a_hold_keeps_only_its_own_loops_writes_waiting(
    loop: asyncio.AbstractEventLoop,
) -> None:
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever)
    thread.start()
    try:
        written: list[list[int]] = []
        commit = _commit(written)
        asyncio.run_coroutine_threadsafe(commit.submit(1), other).result(2)
        asyncio.run_coroutine_threadsafe(commit.submit(2), loop).result(2)  # the last to submit
        with commit.held() as held:
            assert held
            waiting = asyncio.run_coroutine_threadsafe(commit.submit(3), loop)
            assert asyncio.run_coroutine_threadsafe(commit.submit(4), other).result(2) == 4
            time.sleep(0.1)
            assert not waiting.done()  # the held loop's write waits; the other's went out
        assert waiting.result(2) == 3
        assert written == [[1], [2], [4], [3]]
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join()
        other.close()


def test_no_loop_is_never_held() -> None:
    with _commit([]).held() as held:
        assert not held


def test_a_busy_loop_is_not_waited_for_and_not_left_held(loop: asyncio.AbstractEventLoop) -> None:
    written: list[list[int]] = []
    commit = _commit(written)
    asyncio.run_coroutine_threadsafe(commit.submit(1), loop).result(2)
    loop.call_soon_threadsafe(time.sleep, 0.3)  # the loop is busy for a while
    with commit.held(timeout=0.05) as held:
        assert not held
    # The late hold ran, and so did the release queued after it: commits go on.
    assert asyncio.run_coroutine_threadsafe(commit.submit(2), loop).result(2) == 2
    assert written == [[1], [2]]


def test_a_closed_loop_is_not_held() -> None:
    written: list[list[int]] = []
    commit = _commit(written)
    asyncio.run(commit.submit(1))  # the loop that submitted is closed now
    with commit.held() as held:
        assert not held


@pytest.mark.parametrize("bad", [{"pages": 0}, {"interval": 0.0}, {"pages": 2_000, "cap": 1_000}])
def test_bad_vault_settings_start_and_change_nothing(tmp_path: Path, bad: dict[str, float]) -> None:
    store = StoreSettings(backend="sqlite", path=tmp_path / "home" / "data" / "custodes.db")
    vault = _filled(tmp_path / "home", store)
    before = vault.store._pragma("wal_autocheckpoint")
    with pytest.raises(ValueError):
        vault.keep_wal_bounded(**bad)  # type: ignore[arg-type]
    assert vault._wal is None and vault.store._pragma("wal_autocheckpoint") == before
    assert not any(t.name == "custodes-wal" for t in threading.enumerate())
    assert vault.keep_wal_bounded()  # good settings still work afterwards
    vault.close()
