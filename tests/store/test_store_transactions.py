"""Transactions: all or nothing, gap-free event numbering, safe under concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from custodes.config import StoreSettings
from custodes.errors import StoreError
from custodes.model import AccessEvent, IndexEntry, StoredRecord
from custodes.store import Store, StoreTx, open_store

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def _event(count: int = 1, accessor: str = "clerk-1") -> AccessEvent:
    return AccessEvent(
        T0, accessor, "city", "clerk", "get", "people", ("name",), "psn", "p", None, "allow", "ok",
        count,
    )  # fmt: skip


def _record(record_id: str) -> StoredRecord:
    return StoredRecord(record_id, "people", b"ref", T0, {"name": b"\x01\x02"})


class BoomError(Exception):
    """A non-backend error raised by the caller inside a transaction."""


def test_seq_is_zero_based_and_gap_free_after_a_rollback(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.append_event(_event()) == 0
        assert tx.append_event(_event()) == 1
    with pytest.raises(BoomError), store.transaction() as tx:
        assert tx.append_events([_event(), _event()]) == [2, 3]
        raise BoomError
    with store.transaction() as tx:
        assert tx.append_event(_event()) == 2
        assert tx.append_events([_event(), _event()]) == [3, 4]
        assert tx.append_events([]) == []
    assert [seq for seq, _ in store.events()] == [0, 1, 2, 3, 4]
    assert store.event_count() == 5


def test_caller_exception_rolls_back_record_and_event_and_is_reraised(store: Store) -> None:
    with pytest.raises(BoomError), store.transaction() as tx:
        tx.insert_record(_record("r1"), [IndexEntry(b"tok", "r1", b"ref")])
        tx.append_event(_event())
        raise BoomError
    assert store.record("r1") is None
    assert store.lookup(b"tok", 10) == []
    assert store.event_count() == 0
    assert list(store.events()) == []


def test_backend_error_rolls_back_everything_as_store_error(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_record(_record("r1"), [])
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.append_event(_event())
        tx.insert_record(_record("r2"), [])
        tx.insert_record(_record("r1"), [])  # duplicate id
    assert caught.value.__cause__ is not None
    assert store.event_count() == 0
    assert store.record("r2") is None
    with store.transaction() as tx:  # the store is still usable
        assert tx.append_event(_event()) == 0


def test_commit_failure_is_a_store_error_and_nothing_is_visible(
    store: Store, raw_sql: Callable[[str], list[Any]]
) -> None:
    with store.transaction() as tx:
        tx.insert_record(_record("r1"), [])
    # A deferred foreign key is checked only at COMMIT, so deleting the record makes it fail.
    raw_sql(
        "CREATE TABLE pin (record_id TEXT REFERENCES records (record_id) "
        "DEFERRABLE INITIALLY DEFERRED)"
    )
    raw_sql("INSERT INTO pin VALUES ('r1')")
    with pytest.raises(StoreError, match="commit"), store.transaction() as tx:
        tx.append_event(_event())
        assert tx.delete_subject_records(b"ref") == 1
    assert store.record("r1") == _record("r1")
    assert store.event_count() == 0
    with store.transaction() as tx:
        assert tx.append_event(_event()) == 0


def test_a_finished_transaction_cannot_write(store: Store) -> None:
    kept: list[StoreTx] = []
    with store.transaction() as tx:
        kept.append(tx)
    with pytest.raises(StoreError, match="already ended"):
        kept[0].append_event(_event())
    with pytest.raises(StoreError, match="already ended"):
        kept[0].insert_record(_record("late"), [])
    assert store.event_count() == 0 and store.record("late") is None


def _append_from_threads(stores: list[Store], threads: int, per_thread: int) -> list[int]:
    seqs: list[int] = []
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work(store: Store, who: int) -> None:
        try:
            for i in range(per_thread):
                with store.transaction() as tx:
                    seq = tx.append_event(_event(count=i, accessor=f"t{who}"))
                with guard:
                    seqs.append(seq)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(stores[n % len(stores)], n)) for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return seqs


def test_four_threads_append_800_events_without_gaps(store: Store) -> None:
    seqs = _append_from_threads([store], threads=4, per_thread=200)
    assert sorted(seqs) == list(range(800))
    assert [seq for seq, _ in store.events()] == list(range(800))
    for who in range(4):
        counts = [e.count for _, e in store.events() if e.accessor == f"t{who}"]
        assert counts == list(range(200))  # each thread's events in its own order


def test_two_connections_append_without_gaps(store: Store, store_settings: StoreSettings) -> None:
    # Two store objects stand in for two processes: the database itself must serialize them.
    second = open_store(store_settings)
    try:
        seqs = _append_from_threads([store, second], threads=4, per_thread=50)
    finally:
        second.close()
    assert sorted(seqs) == list(range(200))
    assert store.event_count() == 200
