"""Everything written through a transaction reads back identical, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import custodes.store
from custodes.config import StoreSettings
from custodes.errors import ConfigError, StoreError
from custodes.model import AccessEvent, Accessor, Case, IndexEntry, StoredRecord
from custodes.store import PostgresStore, SQLiteStore, Store, open_store

T0 = datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _record(
    record_id: str, ref: bytes, at: datetime = T0, collection: str = "people"
) -> StoredRecord:
    fields = {"name": b"\x00\x01ciphertext\xff", "id_number": bytes(range(256)), "empty": b""}
    return StoredRecord(record_id, collection, ref, at, fields)


def _event(**changes: object) -> AccessEvent:
    base: dict[str, object] = {
        "ts": T0,
        "accessor": "clerk-1",
        "org": "city",
        "role": "clerk",
        "action": "get",
        "collection": "people",
        "fields": ("name", "id_number"),
        "subject": "psn-1",
        "purpose": "benefit-claim",
        "case": None,
        "decision": "allow",
        "reason": "granted by benefit-claim",
        "count": 1,
    }
    base.update(changes)
    return AccessEvent(**base)  # type: ignore[arg-type]


def test_public_names_are_pinned() -> None:
    assert sorted(custodes.store.__all__) == [
        "EncodedEvents",
        "EncodedRecords",
        "EventCount",
        "PostgresStore",
        "SQLiteStore",
        "Store",
        "StoreGuards",
        "StoreTx",
        "encode_events",
        "encode_like",
        "encode_records",
        "open_store",
    ]


def test_open_store_picks_the_configured_backend(store: Store, backend: str) -> None:
    expected = SQLiteStore if backend == "sqlite" else PostgresStore
    assert isinstance(store, expected)


def test_postgres_without_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"store\.url"):
        open_store(StoreSettings(backend="postgres", url=None))


def test_migrate_twice_keeps_data(store: Store) -> None:
    with store.transaction() as tx:
        tx.append_event(_event())
    store.migrate()
    store.migrate()
    assert store.event_count() == 1


def test_newer_schema_version_is_refused(store: Store, raw_sql: Callable[[str], list[Any]]) -> None:
    raw_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        store.migrate()


def test_records_round_trip_oldest_first(store: Store) -> None:
    ref, other = b"\x00ref-a\xff", b"\x00ref-b"
    late = _record("r-late", ref, T0 + timedelta(seconds=1))
    early = _record("r-early", ref, T0)
    no_micro = _record("r-first", ref, T0.replace(microsecond=0))
    with store.transaction() as tx:
        tx.insert_record(late, [])
        tx.insert_records([(early, []), (no_micro, []), (_record("r-other", other), [])])
        tx.insert_record(_record("r-cars", ref, collection="cars"), [])
    assert store.records("people", ref) == [no_micro, early, late]
    assert store.record("r-early") == early
    assert store.record("missing") is None
    assert store.records("people", b"\x00ref-c") == []


def test_record_with_no_fields_round_trips(store: Store) -> None:
    empty = StoredRecord("r0", "people", b"ref", T0, {})
    with store.transaction() as tx:
        tx.insert_record(empty, [])
    assert store.record("r0") == empty


def test_duplicate_record_id_is_a_store_error(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_record(_record("r1", b"a"), [])
    with pytest.raises(StoreError, match="insert records"), store.transaction() as tx:
        tx.insert_record(_record("r1", b"b"), [])
    assert store.record("r1") == _record("r1", b"a")


def test_lookup_is_exact_match_and_respects_limit(store: Store) -> None:
    token = b"\x10" * 32
    entries = [IndexEntry(token, f"r{i}", bytes([i])) for i in range(5)]
    with store.transaction() as tx:
        for entry in entries:
            tx.insert_record(_record(entry.record_id, entry.subject_ref), [entry])
        tx.insert_record(_record("near", b"n"), [IndexEntry(token[:-1] + b"\x11", "near", b"n")])
    assert store.lookup(token, limit=10) == [(bytes([i]), f"r{i}") for i in range(5)]
    assert store.lookup(token, limit=2) == [(b"\x00", "r0"), (b"\x01", "r1")]
    assert store.lookup(token, limit=0) == []
    assert store.lookup(token[:-1], limit=10) == []  # a prefix is not a match
    assert store.lookup(token + b"\x00", limit=10) == []  # nor is a longer token
    assert store.lookup(b"%", limit=10) == []  # nor a LIKE wildcard


def test_subject_refs_are_distinct_and_limited(store: Store) -> None:
    with store.transaction() as tx:
        for i, ref in enumerate([b"b", b"a", b"b", b"c"]):
            tx.insert_record(_record(f"r{i}", ref), [])
        tx.insert_record(_record("x", b"z", collection="cars"), [])
    assert store.subject_refs("people") == [b"a", b"b", b"c"]
    assert store.subject_refs("people", limit=2) == [b"a", b"b"]
    assert store.subject_refs("nothing") == []


EVENTS = [
    _event(),
    _event(ts=T0.replace(microsecond=0)),  # isoformat() drops zero microseconds
    _event(ts=T0.astimezone(timezone(timedelta(hours=8)))),
    _event(ts=T0.astimezone(timezone(timedelta(hours=-3, minutes=-30)))),
    _event(ts=datetime(2024, 1, 1, 0, 0)),  # naive
    _event(collection=None, fields=(), subject=None, purpose=None, decision="deny", count=0),
    _event(case="case-7", break_glass=True, justification="ab" * 40, reason='émergence ✓ "q"'),
    _event(action="case_open", fields=("z", "a", "m")),  # field order is kept
]


def test_events_read_back_with_identical_canonical_bytes(store: Store) -> None:
    with store.transaction() as tx:
        seqs = [tx.append_event(event) for event in EVENTS]
    assert seqs == list(range(len(EVENTS)))
    back = list(store.events())
    assert [seq for seq, _ in back] == seqs
    for (_, got), sent in zip(back, EVENTS, strict=True):
        assert got == sent
        assert got.canonical() == sent.canonical()


def test_events_range_and_chunking(store: Store) -> None:
    many = [_event(count=i) for i in range(2500)]
    with store.transaction() as tx:
        assert tx.append_events(many) == list(range(2500))
    assert [e.count for _, e in store.events()] == list(range(2500))
    assert [seq for seq, _ in store.events(998, 1003)] == [998, 999, 1000, 1001, 1002]
    assert [seq for seq, _ in store.events(2498)] == [2498, 2499]
    assert list(store.events(10, 10)) == []
    assert store.event_count() == 2500


def test_cases_round_trip_and_are_replaced(store: Store) -> None:
    bare = Case("c1", "police", "investigation", frozenset(), frozenset(), "sgt", T0)
    full = Case(
        "c1",
        "police",
        "investigation",
        frozenset({b"\x00ref", b"ref-2", b""}),
        frozenset({"officer-b", "officer-a"}),
        "sgt",
        T0,
        expires_at=T0 + timedelta(days=30),
        approved_by="judge",
        approver_role="magistrate",
        approved_at=T0.replace(microsecond=0),
        closed_at=T0.astimezone(timezone(timedelta(hours=2))),
    )
    with store.transaction() as tx:
        tx.put_case(bare)
    assert store.case("c1") == bare
    with store.transaction() as tx:
        tx.put_case(full)
    assert store.case("c1") == full
    assert store.case("c2") is None


def test_accessors_round_trip_ordered(store: Store) -> None:
    people = [Accessor("zed", "city", "clerk"), Accessor("amy", "police", "officer", active=False)]
    with store.transaction() as tx:
        for person in people:
            tx.put_accessor(person)
        tx.put_accessor(Accessor("zed", "city", "supervisor", active=False))
    assert store.accessor("amy") == people[1]
    assert store.accessor("zed") == Accessor("zed", "city", "supervisor", active=False)
    assert store.accessor("nobody") is None
    assert [a.accessor for a in store.accessors()] == ["amy", "zed"]


def test_delete_subject_records_removes_only_that_subject(store: Store) -> None:
    mine, theirs = b"mine", b"theirs"
    with store.transaction() as tx:
        tx.insert_record(_record("m1", mine), [IndexEntry(b"t-name", "m1", mine)])
        tx.insert_record(_record("m2", mine, collection="cars"), [IndexEntry(b"t-car", "m2", mine)])
        tx.insert_record(_record("o1", theirs), [IndexEntry(b"t-name", "o1", theirs)])
    with store.transaction() as tx:
        assert tx.delete_subject_records(mine) == 2
    assert store.records("people", mine) == [] and store.records("cars", mine) == []
    assert store.record("m2") is None
    assert store.lookup(b"t-name", 10) == [(theirs, "o1")]
    assert store.lookup(b"t-car", 10) == []
    assert store.record("o1") == _record("o1", theirs)
    with store.transaction() as tx:
        assert tx.delete_subject_records(mine) == 0


def test_subjects_accessed_since_counts_only_allowed_events_of_that_accessor(store: Store) -> None:
    since = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    plus8 = timezone(timedelta(hours=8))
    events = [
        _event(ts=since, subject="at-since"),
        _event(ts=since + timedelta(hours=5), subject="after"),
        _event(ts=since.astimezone(plus8), subject="same-instant-other-offset"),
        _event(ts=since - timedelta(microseconds=1), subject="just-before"),
        _event(ts=(since - timedelta(seconds=1)).astimezone(plus8), subject="before-other-offset"),
        _event(ts=since + timedelta(hours=1), subject="denied", decision="deny"),
        _event(ts=since + timedelta(hours=1), subject="other-accessor", accessor="clerk-2"),
        _event(ts=since + timedelta(hours=1), subject=None),
        _event(ts=since + timedelta(hours=2), subject="after"),
    ]
    with store.transaction() as tx:
        tx.append_events(events)
    assert store.subjects_accessed_since("clerk-1", since) == {
        "at-since",
        "after",
        "same-instant-other-offset",
    }
    assert store.subjects_accessed_since("clerk-2", since) == {"other-accessor"}
    assert store.subjects_accessed_since("nobody", since) == set()


def test_reads_after_close_raise_store_error(store_settings: StoreSettings) -> None:
    closed = open_store(store_settings)
    closed.migrate()
    closed.close()
    with pytest.raises(StoreError):
        closed.event_count()
