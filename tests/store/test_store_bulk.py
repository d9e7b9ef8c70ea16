"""Bulk writes (the ingest path) read back exactly as single writes do, and stay all or nothing.

PostgreSQL sends batches of at least ``_COPY_MIN`` rows with binary COPY instead of
``executemany``; every test here writes batches at least that large, on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.store.test_store_roundtrip import EVENTS, _record

from custodes.errors import StoreError
from custodes.ledger import Ledger
from custodes.ledger.merkle import leaf_hash
from custodes.model import IndexEntry, StoredRecord
from custodes.store import EncodedEvents, SQLiteStore, Store, encode_events, encode_records
from custodes.store._codec import encode_fields, record_params
from custodes.store._postgres import _COPY_MIN

T0 = datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
N = max(_COPY_MIN, 100)


def _ref(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


def _batch(prefix: str, count: int = N) -> list[tuple[StoredRecord, list[IndexEntry]]]:
    return [
        (
            _record(f"{prefix}-{i}", _ref(i % 7), T0 + timedelta(seconds=i)),
            [IndexEntry(b"tok-%d" % (i % 5), f"{prefix}-{i}", _ref(i % 7))],
        )
        for i in range(count)
    ]


def test_bulk_records_read_back_as_written(store: Store) -> None:
    batch = _batch("r")
    with store.transaction() as tx:
        tx.insert_records(batch)
    for record, _ in batch:
        assert store.record(record.record_id) == record
    for ref_i in range(7):
        got = store.records("people", _ref(ref_i))
        assert [r.record_id for r in got] == [f"r-{i}" for i in range(N) if i % 7 == ref_i]
    hits = store.lookup(b"tok-3", N)
    assert sorted(r for _, r in hits) == sorted(f"r-{i}" for i in range(N) if i % 5 == 3)


def test_one_bad_row_fails_the_whole_bulk_transaction(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_records(_batch("old", 1))
    batch = _batch("new")
    batch[N // 2] = (_record("old-0", _ref(0)), [])  # an id that exists already
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.append_events(EVENTS * (N // len(EVENTS) + 1))
        tx.insert_records(batch)
    assert store.record("new-0") is None
    assert store.lookup(b"tok-1", N) == []
    assert store.event_count() == 0
    with store.transaction() as tx:  # the store is still usable
        tx.insert_records(_batch("again"))
    assert store.record(f"again-{N - 1}") is not None


def test_bulk_events_keep_their_canonical_bytes_and_the_ledger_verifies(store: Store) -> None:
    events = EVENTS * (N // len(EVENTS) + 1)
    with store.transaction() as tx:
        assert tx.append_events(events) == list(range(len(events)))
    back = list(store.events())
    assert len(back) == len(events)
    for (seq, got), sent in zip(back, events, strict=True):
        assert got == sent
        assert got.canonical(seq) == sent.canonical(seq)
    Ledger(store=store).verify()


def test_writes_encoded_before_the_transaction_store_what_plain_writes_store(
    store: Store,
) -> None:
    # Vault.put_many encodes a batch before it takes the write lock; the store must end up
    # exactly as if it had been handed the records and events themselves.
    batch = _batch("enc")
    events = EVENTS * (N // len(EVENTS) + 1)
    with store.transaction() as tx:
        tx.append_events(events[:3])  # a position other than 0 for the encoded ones
        tx.insert_records(encode_records(batch))
        assert tx.append_events(encode_events(events)) == list(range(3, 3 + len(events)))
    for record, _ in batch:
        assert store.record(record.record_id) == record
    assert sorted(r for _, r in store.lookup(b"tok-2", N)) == sorted(
        f"enc-{i}" for i in range(N) if i % 5 == 2
    )
    back = list(store.events())
    assert [event for _, event in back] == events[:3] + events
    for seq, event in back:  # each leaf commits to the entry that names its own position
        assert store.node(0, seq) == leaf_hash(event.canonical(seq))
    Ledger(store=store).verify()


def test_encoded_events_must_pair_every_entry_with_a_row() -> None:
    encoded = encode_events(EVENTS[:2])
    with pytest.raises(ValueError, match="as many ledger halves as event rows"):
        EncodedEvents(encoded.halves, encoded.columns[:1])


def test_equal_instants_in_other_offsets_keep_their_own_text(store: Store) -> None:
    shanghai = T0.astimezone(timezone(timedelta(hours=8)))
    assert shanghai == T0
    batch = [(_record(f"t-{i}", _ref(1), T0 if i % 2 else shanghai), []) for i in range(N)]
    with store.transaction() as tx:
        tx.insert_records(batch)
    for record, _ in batch:
        got = store.record(record.record_id)
        assert got is not None
        assert got.created_at.utcoffset() == record.created_at.utcoffset()


def _reference_body(fields: dict[str, bytes]) -> bytes:
    out = b""
    for name in sorted(fields):
        raw = name.encode()
        out += len(raw).to_bytes(2, "big") + raw + len(fields[name]).to_bytes(4, "big")
        out += fields[name]
    return out


@given(st.dictionaries(st.text(max_size=12), st.binary(max_size=40), max_size=8))
def test_encode_fields_matches_the_documented_layout(fields: dict[str, bytes]) -> None:
    assert encode_fields(fields) == _reference_body(fields)


def test_encode_fields_stays_exact_past_its_name_cache() -> None:
    for i in range(1000):
        fields = {f"f{i}": b"v", f"g{i % 3}": bytearray(b"w"), "": memoryview(b"")}
        assert encode_fields(fields) == _reference_body({k: bytes(v) for k, v in fields.items()})
    with pytest.raises(StoreError, match="name is too long"):
        encode_fields({"n" * 70_000: b""})


def test_record_params_uses_the_given_time_text_or_formats_its_own() -> None:
    record = _record("r", _ref(1))
    assert record_params(record)[3] == "2024-03-01T09:30:15.123456+00:00"
    assert record_params(record, "given")[3] == "given"


def test_bulk_writes_commit_the_same_and_end_cleanly(store: Store) -> None:
    """On either backend a bulk session changes how the connection commits, not what: the
    batch reads back, and a failure inside it still rolls back and ends the session."""
    batch = _batch("b")
    with store.bulk_writes():
        with store.transaction() as tx:
            tx.insert_records(batch)
        with pytest.raises(StoreError), store.bulk_writes(), store.transaction() as tx:
            tx.insert_records(_batch("b", 1))  # an id that exists already
    assert [store.record(r.record_id) for r, _ in batch] == [r for r, _ in batch]
    with store.transaction() as tx:  # the connection is usable after the session
        tx.insert_records(_batch("after", 1))
    assert store.record("after-0") is not None


def test_sqlite_bulk_writes_checkpoint_less_often_until_they_end(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.migrate()

    def every() -> int:
        return int(store._fetch("read", "PRAGMA wal_autocheckpoint", ())[0][0])

    try:
        assert every() == 1000  # SQLite's default: a checkpoint per 4 MiB of 4 KiB pages
        with store.bulk_writes():
            assert every() == 64 * 1024 * 1024 // 4096
        assert every() == 1000
        with pytest.raises(RuntimeError), store.bulk_writes():
            raise RuntimeError("a load that fails half way")
        assert every() == 1000  # restored on the way out of a failure too
    finally:
        store.close()
