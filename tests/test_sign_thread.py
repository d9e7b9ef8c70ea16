"""Checkpoints of an event loop's reads are signed in a thread: the read never waits for the
signature's fsyncs, the checkpoint still covers it, and closing the vault signs what is due."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from custodes._signthread import SignThread
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.ledger import Ledger
from custodes.sim import generate_people
from tests.helpers import START, officers_vault


def test_due_sizes_are_signed_in_a_thread_and_close_signs_what_is_left() -> None:
    signed: list[tuple[int, str]] = []
    started, gate = threading.Event(), threading.Event()

    def sign(size: int) -> None:
        started.set()
        gate.wait(5)
        signed.append((size, threading.current_thread().name))

    thread = SignThread(sign)
    thread.due(10)
    assert started.wait(5)  # signing 10, held at the gate
    thread.due(20)
    thread.due(15)  # while one signs, the next call gets the largest size asked for
    gate.set()
    thread.close()
    assert signed == [(10, "custodes-checkpoints"), (20, "custodes-checkpoints")]
    thread.due(30)  # after close: ignored, no thread started again
    assert [size for size, _ in signed] == [10, 20]


def test_a_failed_signature_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def sign(size: int) -> None:
        calls.append(size)
        if size == 1:
            raise OSError("disk full")

    thread = SignThread(sign)
    with caplog.at_level(logging.ERROR, logger="custodes._signthread"):
        thread.due(1)
        for _ in range(500):  # until the first call has run
            if thread.signed:
                break
            threading.Event().wait(0.01)
        thread.due(2)
        thread.close()
    assert calls == [1, 2]
    assert "could not sign a checkpoint" in caplog.text


def test_closing_a_thread_that_never_started_is_a_no_op() -> None:
    thread = SignThread(lambda size: None)
    thread.close()
    assert thread.signed == 0


def test_a_read_on_a_loop_does_not_wait_for_its_checkpoint_signature(
    tmp_path: Path, store_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = generate_people(2, seed=11)
    clock = ManualClock(START)
    vault, (officer,) = officers_vault(tmp_path / "home", store_settings, people, clock=clock)
    log = vault._checkpoints
    assert log is not None
    real_sign = log.maybe_sign
    signing, release = threading.Event(), threading.Event()

    def slow_sign(ledger: Ledger, now: datetime, *, size: int | None = None) -> object:
        signing.set()
        assert release.wait(10), "the read waited for the signature"
        return real_sign(ledger, now, size=size)

    monkeypatch.setattr(log, "maybe_sign", slow_sign)
    clock.advance(timedelta(seconds=61))  # past checkpoint_seconds: the read's commit makes one due

    async def read() -> int:
        return len(await vault.get_on_loop(officer, "identity", people[0].id_number))

    try:
        assert asyncio.run(asyncio.wait_for(read(), 5)) == 1
        assert signing.wait(5)  # the signature was under way in the thread...
        assert not release.is_set()  # ...and the read returned without waiting for it
        size = vault.ledger.size()
        release.set()
    finally:
        release.set()
        vault.close()  # signs what is due, then stops the thread
    latest = log.latest()
    assert latest is not None and latest.checkpoint.size == size  # it covers the read
