"""The vault's promises, on both backends: purpose-bound access, every decision recorded,
fail closed, tamper evidence, erasure."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.crypto import Envelope, LocalKeyFile, SubjectKeyStore
from custodes.errors import (
    AccessDenied,
    AuditFailure,
    ConfigError,
    InputError,
    IntegrityError,
    NotFound,
)
from custodes.model import Access
from custodes.sim import Person, generate_people
from custodes.store import open_store
from custodes.store._codec import encode_fields
from custodes.vault import Vault
from tests.helpers import START, access, break_event_table, make_vault, raw_sql

PEOPLE = generate_people(6, seed=7)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings, clock: ManualClock) -> Iterator[Vault]:
    with make_vault(tmp_path / "home", store_settings, clock) as v:
        reg = access(v, "reg-1", "registration")
        for person in PEOPLE:
            v.put(reg, "identity", person.id_number, identity(person))
            v.put(reg, "hotel_stays", person.id_number, stay(person))
        yield v


def identity(person: Person) -> dict[str, str]:
    return {
        "name": person.name,
        "id_number": person.id_number,
        "birth_date": person.birth_date.isoformat(),
        "address": person.address,
        "phone": person.phone,
    }


def stay(person: Person) -> dict[str, str]:
    return {
        "hotel": "锦江之星 Jinjiang Inn",
        "city": "上海",
        "room": "1207",
        "check_in": "2026-02-11T21:30:00+08:00",
        "check_out": "2026-02-13T11:00:00+08:00",
    }


def approved_case(vault: Vault, subjects: list[str], opener: str = "inv-1") -> str:
    case = vault.open_case(access(vault, opener, "criminal_investigation"), subjects)
    vault.approve_case(access(vault, "sup-1", None), case.case_id)
    return case.case_id


# -- the happy path -------------------------------------------------------------------------


def test_investigator_reads_case_subject_and_the_read_is_recorded_first(vault: Vault) -> None:
    target = PEOPLE[0]
    case_id = approved_case(vault, [target.id_number])
    before = vault.store.event_count()
    records = vault.get(
        access(vault, "inv-1", "criminal_investigation", case_id), "identity", target.id_number
    )
    assert [r.values["name"] for r in records] == [target.name]
    assert records[0].values["id_number"] == target.id_number
    _, event = list(vault.store.events(before))[-1]
    assert (event.action, event.decision, event.count, event.case) == ("get", "allow", 1, case_id)
    assert event.subject == vault.pseudonym(target.id_number)
    assert target.id_number not in event.canonical().decode()


def test_fields_are_minimized_to_the_purpose(vault: Vault) -> None:
    person = PEOPLE[1]
    records = vault.get(access(vault, "duty-1", "identity_check"), "identity", person.id_number)
    assert set(records[0].values) <= {"name", "id_number", "birth_date"}
    assert "phone" not in records[0].values and "address" not in records[0].values
    with pytest.raises(AccessDenied) as info:
        vault.get(
            access(vault, "duty-1", "identity_check"), "identity", person.id_number, ["phone"]
        )
    assert info.value.missing == ("fields",)


def test_registrar_writes_but_cannot_read(vault: Vault) -> None:
    with pytest.raises(AccessDenied) as info:
        vault.get(access(vault, "reg-1", "registration"), "identity", PEOPLE[0].id_number)
    assert info.value.missing == ("grant",)


# -- denials: each names what was missing and is itself an event ----------------------------


def _denied(vault: Vault, acc: Access, subject: str) -> AccessDenied:
    before = vault.store.event_count()
    with pytest.raises(AccessDenied) as info:
        vault.get(acc, "hotel_stays", subject)
    events = list(vault.store.events(before))
    assert len(events) == 1, "every refusal is recorded as exactly one event"
    event = events[0][1]
    assert event.decision == "deny" and event.count == 0
    assert event.reason == info.value.reason
    assert event.subject == vault.pseudonym(subject)
    return info.value


def test_read_without_purpose_is_refused(vault: Vault) -> None:
    denial = _denied(vault, access(vault, "inv-1", None), PEOPLE[0].id_number)
    assert denial.missing == ("purpose",)
    assert "purpose" in denial.reason


def test_purpose_no_grant_allows_is_refused(vault: Vault) -> None:
    denial = _denied(vault, access(vault, "inv-1", "customer_service"), PEOPLE[0].id_number)
    assert denial.missing == ("grant",)


def test_investigative_read_without_case_is_refused(vault: Vault) -> None:
    denial = _denied(vault, access(vault, "inv-1", "criminal_investigation"), PEOPLE[0].id_number)
    assert denial.missing == ("case",)


def test_closed_case_is_refused(vault: Vault, clock: ManualClock) -> None:
    subject = PEOPLE[0].id_number
    case_id = approved_case(vault, [subject])
    vault.close_case(access(vault, "inv-1", None), case_id)
    clock.advance(timedelta(seconds=1))
    denial = _denied(vault, access(vault, "inv-1", "criminal_investigation", case_id), subject)
    assert denial.missing == ("case.open",)


def test_case_that_does_not_name_the_subject_is_refused(vault: Vault) -> None:
    case_id = approved_case(vault, [PEOPLE[0].id_number])
    denial = _denied(
        vault, access(vault, "inv-1", "criminal_investigation", case_id), PEOPLE[1].id_number
    )
    assert denial.missing == ("case.subject",)


def test_unapproved_case_is_refused_where_approval_is_required(vault: Vault) -> None:
    subject = PEOPLE[0].id_number
    case = vault.open_case(access(vault, "inv-1", "criminal_investigation"), [subject])
    denial = _denied(vault, access(vault, "inv-1", "criminal_investigation", case.case_id), subject)
    assert denial.missing == ("case.approval",)


def test_case_not_assigned_to_the_reader_is_refused(vault: Vault) -> None:
    subject = PEOPLE[0].id_number
    case_id = approved_case(vault, [subject])
    denial = _denied(vault, access(vault, "inv-2", "criminal_investigation", case_id), subject)
    assert denial.missing == ("case.assignment",)


def test_nobody_approves_their_own_case(vault: Vault) -> None:
    case = vault.open_case(access(vault, "inv-1", "criminal_investigation"), [PEOPLE[0].id_number])
    before = vault.store.event_count()
    with pytest.raises(AccessDenied):
        vault.approve_case(access(vault, "inv-1", None), case.case_id)
    with pytest.raises(AccessDenied):
        vault.approve_case(access(vault, "sup-9", None), case.case_id)  # another organization
    decisions = [e.decision for _, e in vault.store.events(before)]
    assert decisions == ["deny", "deny"]
    assert vault.case(case.case_id).approved_by is None


def test_break_glass_is_allowed_only_with_justification_and_always_flagged(vault: Vault) -> None:
    subject = PEOPLE[2].id_number
    principal = vault.principal("inv-1")
    with pytest.raises(AccessDenied) as info:
        vault.get(
            Access(principal, "criminal_investigation", break_glass=True), "identity", subject
        )
    assert info.value.missing == ("justification",)
    why = "Missing child, suspect vehicle seen at this address ten minutes ago"
    glass = Access(principal, "criminal_investigation", justification=why, break_glass=True)
    assert vault.get(glass, "identity", subject)
    _, event = next(iter(vault.store.events(vault.store.event_count() - 1)))
    assert event.break_glass and event.decision == "allow"
    assert event.justification is not None and why not in event.canonical().decode()


# -- tampering: ciphertexts are bound to tenant, collection, record, field, subject ----------


def _stored(vault: Vault, collection: str, person: Person) -> dict[str, bytes]:
    ref = vault._subject(person.id_number).ref
    (record,) = vault.store.records(collection, ref)
    return dict(record.fields)


def _rewrite(vault: Vault, collection: str, person: Person, fields: dict[str, bytes]) -> None:
    ref = vault._subject(person.id_number).ref
    (record,) = vault.store.records(collection, ref)
    raw_sql(
        vault,
        "UPDATE records SET body = ? WHERE record_id = ?",
        (encode_fields(fields), record.record_id),
    )


def _reader(vault: Vault, person: Person) -> Access:
    case_id = approved_case(vault, [person.id_number])
    return access(vault, "inv-1", "criminal_investigation", case_id)


def test_flipping_one_byte_fails_the_read(vault: Vault) -> None:
    victim = PEOPLE[0]
    fields = _stored(vault, "identity", victim)
    blob = bytearray(fields["name"])
    blob[len(blob) // 2] ^= 0x01
    _rewrite(vault, "identity", victim, {**fields, "name": bytes(blob)})
    reader = _reader(vault, victim)
    before = vault.store.event_count()
    with pytest.raises(IntegrityError):
        vault.get(reader, "identity", victim.id_number)
    ((_, event),) = vault.store.events(before)
    assert event.count == 0 and "integrity" in event.reason


def test_swapping_two_fields_fails_the_read(vault: Vault) -> None:
    victim = PEOPLE[0]
    fields = _stored(vault, "identity", victim)
    swapped = {**fields, "name": fields["address"], "address": fields["name"]}
    _rewrite(vault, "identity", victim, swapped)
    with pytest.raises(IntegrityError):
        vault.get(_reader(vault, victim), "identity", victim.id_number)


def test_moving_a_ciphertext_from_another_subject_fails_the_read(vault: Vault) -> None:
    victim, other = PEOPLE[0], PEOPLE[1]
    mine, theirs = _stored(vault, "identity", victim), _stored(vault, "identity", other)
    _rewrite(vault, "identity", victim, {**mine, "name": theirs["name"]})
    with pytest.raises(IntegrityError):
        vault.get(_reader(vault, victim), "identity", victim.id_number)


def test_moving_a_ciphertext_between_records_of_one_subject_fails(vault: Vault) -> None:
    victim = PEOPLE[0]
    reg = access(vault, "reg-1", "registration")
    vault.put(reg, "hotel_stays", victim.id_number, {**stay(victim), "room": "0808"})
    ref = vault._subject(victim.id_number).ref
    first, second = vault.store.records("hotel_stays", ref)
    moved = {**first.fields, "room": second.fields["room"]}
    raw_sql(
        vault,
        "UPDATE records SET body = ? WHERE record_id = ?",
        (encode_fields(moved), first.record_id),
    )
    with pytest.raises(IntegrityError):
        vault.get(_reader(vault, victim), "hotel_stays", victim.id_number)


def test_moving_a_whole_record_to_another_subject_fails(vault: Vault) -> None:
    victim, other = PEOPLE[0], PEOPLE[1]
    ref_victim = vault._subject(victim.id_number).ref
    ref_other = vault._subject(other.id_number).ref
    (record,) = vault.store.records("hotel_stays", ref_other)
    raw_sql(
        vault,
        "UPDATE records SET subject_ref = ? WHERE record_id = ?",
        (ref_victim, record.record_id),
    )
    with pytest.raises(IntegrityError):
        vault.get(_reader(vault, victim), "hotel_stays", victim.id_number)


# -- fail closed -----------------------------------------------------------------------------


def test_read_returns_no_data_when_its_event_cannot_be_committed(vault: Vault) -> None:
    victim = PEOPLE[0]
    reader = _reader(vault, victim)
    events_before = vault.store.event_count()
    break_event_table(vault)
    with pytest.raises(AuditFailure) as info:
        vault.get(reader, "identity", victim.id_number)
    assert victim.name not in info.value.diagnostics()
    assert vault.store.event_count() == events_before


def test_write_leaves_nothing_when_its_event_cannot_be_committed(vault: Vault) -> None:
    newcomer = generate_people(20, seed=99)[-1]
    break_event_table(vault)
    with pytest.raises(AuditFailure):
        vault.put(
            access(vault, "reg-1", "registration"),
            "identity",
            newcomer.id_number,
            identity(newcomer),
        )
    ref = vault._subject(newcomer.id_number).ref
    assert vault.store.records("identity", ref) == []


def test_denial_is_not_silent_when_its_event_cannot_be_committed(vault: Vault) -> None:
    break_event_table(vault)
    with pytest.raises(AuditFailure):
        vault.get(access(vault, "inv-1", None), "identity", PEOPLE[0].id_number)


# -- erasure ---------------------------------------------------------------------------------


def test_shred_makes_records_unrecoverable_even_from_a_backup_with_the_kek(
    vault: Vault, tmp_path: Path
) -> None:
    victim = PEOPLE[3]
    ref = vault._subject(victim.id_number).ref
    backup = {c: vault.store.records(c, ref) for c in ("identity", "hotel_stays")}
    if vault.settings.store.backend == "sqlite":
        copy = tmp_path / "backup.db"
        with sqlite3.connect(vault.settings.store.path) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
    assert backup["identity"], "the backup holds the victim's ciphertexts"
    case_id = vault.open_case(access(vault, "dpo-1", "erasure"), [victim.id_number]).case_id
    vault.approve_case(access(vault, "dir-1", None), case_id)
    events_before = vault.store.event_count()
    assert vault.shred(access(vault, "dpo-1", "erasure", case_id), victim.id_number) == 2

    settings = vault.settings
    kek = LocalKeyFile.open(settings.root_key_path).root_keys(settings.tenant)
    fresh = Envelope(
        tenant=settings.tenant, root_keys=kek, keystore=SubjectKeyStore(settings.keystore_path)
    )
    with pytest.raises(NotFound):
        fresh.subject_key(ref)
    if vault.settings.store.backend == "sqlite":
        old = open_store(StoreSettings(backend="sqlite", path=tmp_path / "backup.db"))
        assert old.records("identity", ref), "the old backup still holds ciphertexts"
        old.close()
    # Every key the vault can still reach fails on the old ciphertexts.
    other_key = fresh.subject_key(vault._subject(PEOPLE[0].id_number).ref)
    record = backup["identity"][0]
    with pytest.raises(IntegrityError):
        fresh.open(
            other_key,
            record.fields["name"],
            collection="identity",
            record_id=record.record_id,
            field="name",
        )
    assert vault.store.records("identity", ref) == []
    shred_event = list(vault.store.events(events_before))[-1][1]
    assert shred_event.action == "shred" and shred_event.subject == vault.pseudonym(
        victim.id_number
    )
    pseudonym = vault.pseudonym(victim.id_number)
    assert sum(1 for _, e in vault.store.events() if e.subject == pseudonym) >= 3
    fresh.keystore.close()


# -- find ------------------------------------------------------------------------------------


def test_find_by_exact_phone_returns_the_subject(vault: Vault) -> None:
    person = PEOPLE[4]
    found = vault.find(access(vault, "duty-1", "identity_check"), "identity", "phone", person.phone)
    assert [r.values["name"] for r in found] == [person.name]


@pytest.mark.parametrize("pattern", ["1381234*", "%", "138?", "*"])
def test_find_refuses_wildcards_and_prefixes(vault: Vault, pattern: str) -> None:
    before = vault.store.event_count()
    with pytest.raises(InputError, match="exact values only"):
        vault.find(access(vault, "duty-1", "identity_check"), "identity", "phone", pattern)
    assert vault.store.event_count() == before


def test_find_refuses_non_indexed_fields(vault: Vault) -> None:
    with pytest.raises(InputError, match="not indexed"):
        vault.find(access(vault, "duty-1", "identity_check"), "identity", "name", PEOPLE[0].name)


def test_find_that_matches_nothing_is_recorded(vault: Vault) -> None:
    before = vault.store.event_count()
    assert (
        vault.find(access(vault, "duty-1", "identity_check"), "identity", "phone", "+8613900000000")
        == []
    )
    ((_, event),) = vault.store.events(before)
    assert (event.action, event.count, event.subject) == ("find", 0, None)


def test_find_caps_its_results(vault: Vault) -> None:
    object.__setattr__(vault.settings, "find_cap", 1)
    reg = access(vault, "reg-1", "registration")
    twin = generate_people(30, seed=5)[-1]
    vault.put(reg, "identity", twin.id_number, {**identity(twin), "phone": PEOPLE[4].phone})
    with pytest.raises(AccessDenied) as info:
        vault.find(access(vault, "duty-1", "identity_check"), "identity", "phone", PEOPLE[4].phone)
    assert info.value.missing == ("result_cap",)


# -- bad input changes nothing ---------------------------------------------------------------


BAD_PUTS = [
    ("identity", "11010119900307123X", {"name": "张三"}, "checksum"),
    ("identity", "1101011990", {"name": "张三"}, "18"),
    ("nosuch", None, {"name": "张三"}, "unknown collection"),
    ("identity", None, {"name": "张三", "shoe_size": "42"}, "shoe_size"),
    ("identity", None, {"name": "张三", "birth_date": "03/07/1990"}, "birth_date"),
    ("identity", None, {"name": "张三", "phone": "12345"}, "phone"),
    ("identity", None, {"name": "张" * 5000}, "limit"),
    ("identity", None, {"name": 42}, "name"),
]


@pytest.mark.parametrize(("collection", "subject", "values", "needle"), BAD_PUTS)
def test_bad_input_gets_a_specific_error_and_changes_nothing(
    vault: Vault, collection: str, subject: str | None, values: dict[str, object], needle: str
) -> None:
    person = generate_people(40, seed=3)[-1]
    subject = subject or person.id_number
    payload = {"id_number": subject, **values} if collection == "identity" else values
    events_before = vault.store.event_count()
    with pytest.raises(InputError) as info:
        vault.put(access(vault, "reg-1", "registration"), collection, subject, payload)
    assert needle in info.value.diagnostics()
    assert vault.store.event_count() == events_before
    if collection == "identity" and subject == person.id_number:
        assert vault.store.records("identity", vault._subject(subject).ref) == []


def test_identity_record_must_carry_the_subjects_own_id(vault: Vault) -> None:
    a, b = generate_people(50, seed=4)[-2:]
    with pytest.raises(InputError, match="own ID number"):
        vault.put(access(vault, "reg-1", "registration"), "identity", a.id_number, identity(b))


def test_batch_with_one_bad_item_writes_nothing(vault: Vault) -> None:
    people = generate_people(60, seed=8)[-3:]
    items: list[tuple[str, dict[str, object]]] = [(p.id_number, dict(identity(p))) for p in people]
    items[1][1]["birth_date"] = "yesterday"
    before = vault.store.event_count()
    with pytest.raises(InputError):
        vault.put_many(access(vault, "reg-1", "registration"), "identity", items)
    assert vault.store.event_count() == before
    assert vault.store.records("identity", vault._subject(people[0].id_number).ref) == []


def test_concurrent_reads_cannot_overrun_the_daily_limit(vault: Vault) -> None:
    # The limit is checked before a read's event commits and counted after: without
    # serializing one accessor's reads, concurrent reads at the limit would all pass.
    people = generate_people(230, seed=12)[-225:]
    reg = access(vault, "reg-1", "registration")
    vault.put_many(reg, "identity", [(p.id_number, identity(p)) for p in people])
    duty = access(vault, "duty-1", "identity_check")
    for person in people[:195]:
        vault.get(duty, "identity", person.id_number)
    start = threading.Barrier(30)
    outcomes: list[str] = []

    def read(person: Person) -> None:
        start.wait()
        try:
            vault.get(duty, "identity", person.id_number)
            outcomes.append("allowed")
        except AccessDenied:
            outcomes.append("denied")

    threads = [threading.Thread(target=read, args=(p,)) for p in people[195:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("allowed") == 5 and outcomes.count("denied") == 25
    allowed_today = {
        e.subject
        for _, e in vault.store.events()
        if e.accessor == "duty-1" and e.decision == "allow"
    }
    assert len(allowed_today) == 200


def test_invalid_policy_toml_refuses_to_open(vault: Vault) -> None:
    settings = vault.settings
    settings.policy_path.write_text("[[grants]\nrole = 'x'", encoding="utf-8")
    with pytest.raises(ConfigError, match="policy"):
        Vault.open(settings)


def test_quota_limits_distinct_subjects_per_day(vault: Vault, clock: ManualClock) -> None:
    people = generate_people(260, seed=11)[-205:]
    reg = access(vault, "reg-1", "registration")
    vault.put_many(reg, "identity", [(p.id_number, identity(p)) for p in people])
    duty = access(vault, "duty-1", "identity_check")
    rng = random.Random(1)
    for person in people[:200]:
        vault.get(duty, "identity", person.id_number)
    vault.get(duty, "identity", rng.choice(people[:200]).id_number)  # a repeat is not new
    with pytest.raises(AccessDenied) as info:
        vault.get(duty, "identity", people[200].id_number)
    assert info.value.missing == ("quota",)
    # START is 10:00 in Shanghai (the policy's zone); 14h30 later it is 00:30 there, a new
    # local day (though still the same UTC day), and the quota starts afresh.
    clock.advance(timedelta(hours=14, minutes=30))
    assert vault.get(duty, "identity", people[200].id_number)
