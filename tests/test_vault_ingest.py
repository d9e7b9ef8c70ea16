"""Bulk ingest (``Vault.put_many``) on both backends: the fast path keeps every promise.

Batches here are larger than the size at which the PostgreSQL store switches from
``executemany`` to binary COPY, so both backends run their bulk path.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.errors import AccessDenied, AuditFailure, InputError
from custodes.model import record_id_head
from custodes.schema import Schema
from custodes.sim import Person, generate_people, sample_records
from custodes.store._postgres import _COPY_MIN
from custodes.vault import Vault
from tests.helpers import START, access, assert_records_open, make_vault

PEOPLE = generate_people(90, seed=21)
SCHEMA = Schema.default()


def _records(people: list[Person]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    rng = random.Random(5)
    out: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for person in people:
        for collection, records in sample_records(person, rng).items():
            out.setdefault(collection, []).extend((person.id_number, r) for r in records)
    return out


RECORDS = _records(PEOPLE)


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    with make_vault(tmp_path / "home", store_settings, ManualClock(START)) as v:
        yield v


def _sql(vault: Vault, sql: str) -> list[tuple[object, ...]]:
    """Run SQL on the vault's database behind its back (to count rows, or to inject a fault)."""
    st = vault.settings.store
    if st.backend == "sqlite":
        with sqlite3.connect(st.path) as conn:
            return conn.execute(sql).fetchall()
    assert st.url is not None
    with psycopg.connect(st.url, autocommit=True) as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _count(vault: Vault, table: str) -> int:
    return int(_sql(vault, f"SELECT COUNT(*) FROM {table}")[0][0])  # type: ignore[call-overload]


def _key_count(vault: Vault) -> int:
    with sqlite3.connect(vault.settings.keystore_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM subject_keys").fetchone()[0])


def _break_event_table(vault: Vault) -> None:
    if vault.settings.store.backend == "sqlite":
        _sql(
            vault,
            "CREATE TRIGGER fault BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END",
        )
    else:
        _sql(
            vault,
            "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk quota exceeded'; END $$",
        )
        _sql(
            vault,
            "CREATE TRIGGER fault BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fault()",
        )


def _repair_event_table(vault: Vault) -> None:
    suffix = "" if vault.settings.store.backend == "sqlite" else " ON events"
    _sql(vault, f"DROP TRIGGER fault{suffix}")


def _load_all(vault: Vault) -> dict[str, list[str]]:
    reg = access(vault, "reg-1", "registration")
    return {name: vault.put_many(reg, name, items) for name, items in RECORDS.items()}


def test_bulk_batches_are_large_enough_for_the_bulk_path() -> None:
    assert len(RECORDS["identity"]) >= _COPY_MIN
    assert len(RECORDS["hotel_stays"]) >= _COPY_MIN


def test_bulk_ingest_round_trips_every_record(vault: Vault) -> None:
    ids = _load_all(vault)
    total = sum(len(items) for items in RECORDS.values())
    assert sum(len(v) for v in ids.values()) == total
    all_ids = [i for v in ids.values() for i in v]
    assert len(set(all_ids)) == total
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in all_ids)
    assert _count(vault, "records") == total
    assert vault.store.event_count() == total  # one event per record, all in the ledger
    vault.ledger.verify()
    for name, items in RECORDS.items():
        assert_records_open(vault, name, items, ids[name])


def test_record_ids_sort_by_creation_time_and_are_otherwise_random(tmp_path: Path) -> None:
    """An id is 12 hex digits of its creation time in milliseconds, then 80 random bits: a
    later batch's ids sort after an earlier one's (new records go to the end of the id index),
    and the ids of one batch share only that head."""
    clock = ManualClock(START)
    with make_vault(tmp_path / "home", StoreSettings(backend="sqlite"), clock) as vault:
        reg = access(vault, "reg-1", "registration")
        items = RECORDS["identity"][:40]
        first = vault.put_many(reg, "identity", items[:20])
        clock.advance(timedelta(milliseconds=1))
        second = vault.put_many(reg, "identity", items[20:])
        clock.advance(timedelta(days=400))
        third = vault.put_many(reg, "identity", items[:20])
    head = record_id_head(START)
    assert head == f"{int(START.timestamp() * 1000):012x}"
    assert {i[:12] for i in first} == {head} and len({i[12:] for i in first}) == 20
    assert max(first) < min(second) and max(second) < min(third)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first + second + third)
    # Twelve digits from 1970 to the last datetime; a time before 1970 gives zeros.
    assert record_id_head(datetime(1969, 1, 1, tzinfo=UTC)) == "0" * 12
    assert len(record_id_head(datetime.max.replace(tzinfo=UTC))) == 12


def test_bulk_ingest_is_readable_and_findable_through_the_vault(vault: Vault) -> None:
    _load_all(vault)
    target = PEOPLE[3]
    case = vault.open_case(access(vault, "inv-1", "criminal_investigation"), [target.id_number])
    vault.approve_case(access(vault, "sup-1", None), case.case_id)
    reader = access(vault, "inv-1", "criminal_investigation", case.case_id)
    mine = [v for s, v in RECORDS["hotel_stays"] if s == target.id_number]
    got = vault.get(reader, "hotel_stays", target.id_number)
    coll = SCHEMA.collection("hotel_stays")
    assert sorted(r.values.items() for r in got) == sorted(coll.validate(v).items() for v in mine)
    duty = access(vault, "duty-1", "identity_check")
    (found,) = vault.find(duty, "identity", "id_number", target.id_number)
    assert found.values["name"] == target.name


def test_ciphertexts_use_fresh_nonces_and_hold_no_plaintext(vault: Vault) -> None:
    ids = _load_all(vault)
    nonces = set()
    for record_id in ids["identity"]:
        stored = vault.store.record(record_id)
        assert stored is not None
        for value in stored.fields.values():
            assert value[:1] == b"\x01"
            nonces.add(value[1:13])
    fields = sum(len(v) for _, v in RECORDS["identity"])
    assert len(nonces) == fields  # every field of every record: its own nonce
    bodies = b"".join(bytes(row[0]) for row in _sql(vault, "SELECT body FROM records"))  # type: ignore[call-overload]
    for person in PEOPLE[:20]:
        assert person.id_number.encode() not in bodies
        assert person.name.encode() not in bodies


def test_repeated_subject_in_one_batch_shares_one_key(vault: Vault) -> None:
    person = PEOPLE[0]
    stays = [v for s, v in RECORDS["hotel_stays"] if s != person.id_number][:3]
    reg = access(vault, "reg-1", "registration")
    before = _key_count(vault)
    ids = vault.put_many(reg, "hotel_stays", [(person.id_number, v) for v in stays])
    assert _key_count(vault) == before + 1
    ref = vault._subject(person.id_number).ref
    assert sorted(r.record_id for r in vault.store.records("hotel_stays", ref)) == sorted(ids)


def test_identity_of_another_subject_anywhere_in_a_batch_writes_nothing(vault: Vault) -> None:
    items = list(RECORDS["identity"])
    subject, values = items[50]
    items[50] = (subject, {**values, "id_number": PEOPLE[0].id_number})
    keys, events = _key_count(vault), vault.store.event_count()
    with pytest.raises(InputError, match="own ID number"):
        vault.put_many(access(vault, "reg-1", "registration"), "identity", items)
    assert _count(vault, "records") == 0
    assert vault.store.event_count() == events
    assert _key_count(vault) == keys  # validation comes before any key is made


def test_denied_batch_writes_nothing_and_makes_no_keys(vault: Vault) -> None:
    keys = _key_count(vault)
    # Duty officers may read identities, not write them.
    with pytest.raises(AccessDenied):
        vault.put_many(access(vault, "duty-1", "identity_check"), "identity", RECORDS["identity"])
    assert _count(vault, "records") == 0
    assert _key_count(vault) == keys
    ((_, event),) = list(vault.store.events())
    assert event.decision == "deny"


def test_failed_commit_leaves_no_record_index_or_event_and_retry_works(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    vault.put_many(reg, "identity", RECORDS["identity"][:10])
    records, entries, events = (
        _count(vault, "records"),
        _count(vault, "record_index"),
        vault.store.event_count(),
    )
    batch = RECORDS["identity"][10:]
    _break_event_table(vault)
    with pytest.raises(AuditFailure) as info:
        vault.put_many(reg, "identity", batch)
    assert "nothing was written" in info.value.diagnostics()
    assert PEOPLE[20].name not in info.value.diagnostics()
    assert _count(vault, "records") == records
    assert _count(vault, "record_index") == entries
    assert vault.store.event_count() == events
    # Documented: the new subjects' data keys were stored before the records' transaction and
    # stay (they seal nothing). The retry uses them, and the records read back.
    assert _key_count(vault) == len(RECORDS["identity"])
    _repair_event_table(vault)
    duty = access(vault, "duty-1", "identity_check")
    assert vault.find(duty, "identity", "id_number", batch[0][0]) == []
    vault.put_many(reg, "identity", batch)
    assert _key_count(vault) == len(RECORDS["identity"])
    (found,) = vault.find(duty, "identity", "id_number", batch[0][0])
    assert found.values["id_number"] == batch[0][0]


def test_a_key_left_by_a_failed_batch_is_shredded_with_its_subject(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    person = PEOPLE[7]
    _break_event_table(vault)
    with pytest.raises(AuditFailure):
        vault.put_many(reg, "identity", RECORDS["identity"])
    ref = vault._subject(person.id_number).ref
    assert vault._envelope.keystore.get(ref) is not None
    _repair_event_table(vault)
    case_id = vault.open_case(access(vault, "dpo-1", "erasure"), [person.id_number]).case_id
    vault.approve_case(access(vault, "dir-1", None), case_id)
    assert vault.shred(access(vault, "dpo-1", "erasure", case_id), person.id_number) == 0
    assert vault._envelope.keystore.get(ref) is None
