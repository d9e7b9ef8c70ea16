"""The subject key store: its own owner-only file, first writer wins, deletes leave no trace."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.clock import ManualClock
from custodes.crypto import SubjectKeyStore
from custodes.errors import InputError, StoreError


def test_file_is_owner_only_and_uses_a_rollback_journal(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "subject-keys.db"
    with SubjectKeyStore(path) as store:
        store.put_if_absent(b"a", b"wrapped-a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name(path.name + "-wal").exists()
    assert not path.with_name(path.name + "-journal").exists()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        columns = [row[1] for row in conn.execute("PRAGMA table_info(subject_keys)")]
    finally:
        conn.close()
    assert columns == ["subject_ref", "wrapped", "created_at"]


def test_get_put_delete(keystore: SubjectKeyStore) -> None:
    assert keystore.get(b"a") is None
    assert keystore.put_if_absent(b"a", b"one") == b"one"
    assert keystore.put_if_absent(b"a", b"two") == b"one"
    assert keystore.get(b"a") == b"one"
    assert keystore.delete(b"a") is True
    assert keystore.delete(b"a") is False
    assert keystore.get(b"a") is None


def test_put_many_keeps_existing_keys(keystore: SubjectKeyStore) -> None:
    keystore.put_if_absent(b"a", b"old")
    keystore.put_many_if_absent([(b"a", b"new"), (b"b", b"bee"), (b"c", b"sea")])
    assert keystore.get_many([b"a", b"b", b"c", b"d"]) == {b"a": b"old", b"b": b"bee", b"c": b"sea"}


def test_get_many_handles_more_refs_than_one_query(keystore: SubjectKeyStore) -> None:
    items = [(i.to_bytes(4, "big"), b"w%d" % i) for i in range(1200)]
    keystore.put_many_if_absent(items)
    assert keystore.get_many([ref for ref, _ in items]) == dict(items)


def test_keys_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with SubjectKeyStore(path) as store:
        store.put_if_absent(b"a", b"wrapped")
    with SubjectKeyStore(path) as store:
        assert store.get(b"a") == b"wrapped"


def test_created_at_comes_from_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    path = tmp_path / "k.db"
    with SubjectKeyStore(path, clock=clock) as store:
        store.put_if_absent(b"a", b"w")
    conn = sqlite3.connect(path)
    try:
        (created,) = conn.execute("SELECT created_at FROM subject_keys").fetchone()
    finally:
        conn.close()
    assert created == "2030-01-02T03:04:05+00:00"


def test_concurrent_put_if_absent_has_one_winner(keystore: SubjectKeyStore) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def put(i: int) -> None:
        barrier.wait()
        results.append(keystore.put_if_absent(b"race", b"w%d" % i))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert keystore.get(b"race") == results[0]


def test_two_stores_on_one_file_agree_on_the_winner(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with SubjectKeyStore(path) as one, SubjectKeyStore(path) as two:
        assert one.put_if_absent(b"a", b"first") == b"first"
        assert two.put_if_absent(b"a", b"second") == b"first"


def test_deleted_key_bytes_are_gone_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    wrapped = {i.to_bytes(32, "big"): os.urandom(60) for i in range(300)}
    with SubjectKeyStore(path) as store:
        store.put_many_if_absent(list(wrapped.items()))
        victims = list(wrapped)[::7]
        for ref in victims:
            assert store.delete(ref)
    data = path.read_bytes()
    for ref, value in wrapped.items():
        assert (value in data) is (ref not in victims)


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SubjectKeyStore(tmp_path / "k.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(b"a")


def test_sqlite_failure_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="subject key store") as caught:
        SubjectKeyStore(path)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        SubjectKeyStore(blocker / "k.db")


def test_subject_ref_must_be_nonempty_bytes(keystore: SubjectKeyStore) -> None:
    with pytest.raises(InputError):
        keystore.get(b"")
    with pytest.raises(InputError):
        keystore.put_if_absent("a", b"w")  # type: ignore[arg-type]


def test_put_many_returns_the_key_stored_for_each_subject(keystore: SubjectKeyStore) -> None:
    keystore.put_if_absent(b"a", b"old")
    stored = keystore.put_many_if_absent([(b"a", b"new"), (b"b", b"bee"), (b"b", b"again")])
    assert stored == {b"a": b"old", b"b": b"bee"}
    many = [(i.to_bytes(4, "big"), b"w%d" % i) for i in range(1200)]  # more than one query
    assert keystore.put_many_if_absent(many) == dict(many)
