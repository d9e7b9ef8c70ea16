"""Tracing a leaked file against a vault: which rows are ours, which collections, and whose
ledgered reads cover the leak when no fingerprint survives (fingerprints: test_trace_cli.py)."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.errors import CustodesError
from custodes.forensics import LeakReport, trace_leak
from custodes.model import Access, Accessor
from custodes.sim import Person, generate_people
from custodes.vault import Vault

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
EXPORT_GRANT = """
[[grants]]
role = "analyst"
purpose = "statistics"
actions = ["export"]
collections = ["identity"]
fields = ["*"]
"""
STAFF = [
    Accessor("reg-1", "registry", "registrar"),
    Accessor("duty-1", "police-1", "duty_officer"),
    Accessor("sup-1", "police-1", "supervisor"),
    Accessor("tel-1", "bank-1", "teller"),
    Accessor("ana-1", "stats-1", "analyst"),
]


@dataclass
class World:
    vault: Vault
    clock: ManualClock
    people: list[Person]
    leaked: list[Person]
    outsiders: list[Person]
    first_read: datetime
    last_read: datetime


def _identity(p: Person) -> dict[str, str]:
    return {
        "name": p.name,
        "id_number": p.id_number,
        "birth_date": p.birth_date.isoformat(),
        "address": p.address,
        "phone": p.phone,
    }


def _open(home: Path, store: StoreSettings) -> tuple[Vault, ManualClock]:
    settings = init_home(home, backend=store.backend, url=store.url)
    with settings.policy_path.open("a", encoding="utf-8") as handle:
        handle.write(EXPORT_GRANT)
    clock = ManualClock(START)
    vault = Vault.open(settings, clock=clock, monitor=False)
    for accessor in STAFF:
        vault.add_accessor(accessor)
    return vault, clock


def _as(vault: Vault, accessor: str, purpose: str) -> Access:
    return Access(vault.principal(accessor), purpose)


def _build(home: Path, store: StoreSettings, people: int = 300) -> World:
    """A vault of ``people``; duty-1 reads the 60 people who later leak (over two days), a
    supervisor reads 100 people (20 of them leaked), a teller reads the leaked people's name
    and phone only, an analyst exports the whole identity collection."""
    vault, clock = _open(home, store)
    population = generate_people(people + 200, seed=11)
    ours, outsiders = population[:people], population[people:]
    vault.put_many(
        _as(vault, "reg-1", "registration"), "identity", [(p.id_number, _identity(p)) for p in ours]
    )
    leaked = ours[:60]
    clock.advance(timedelta(days=1))
    first = clock()
    duty = _as(vault, "duty-1", "identity_check")
    for number, person in enumerate(leaked):
        vault.get(duty, "identity", person.id_number)
        last = clock()
        clock.advance(timedelta(hours=20) if number == 29 else timedelta(minutes=3))
    supervisor = _as(vault, "sup-1", "identity_check")
    for person in ours[40:140]:
        vault.get(supervisor, "identity", person.id_number)
    teller = _as(vault, "tel-1", "customer_service")
    for person in leaked:
        vault.get(teller, "identity", person.id_number)
    vault.export(_as(vault, "ana-1", "statistics"), "identity")
    return World(vault, clock, ours, leaked, outsiders, first, last)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("trace") / "vault"
    built = _build(home, StoreSettings(backend="sqlite", path=home / "data" / "custodes.db"))
    yield built
    built.vault.close()


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _stripped_leak(people: list[Person], seed: int = 3) -> list[dict[str, str]]:
    """Only real rows, reformatted: renamed and reordered columns, shuffled rows."""
    rows = [
        {"出生": p.birth_date.strftime("%Y/%m/%d"), "sfz": p.id_number, "xm": p.name}
        for p in people
    ]
    random.Random(seed).shuffle(rows)
    return rows


def test_a_stripped_leak_is_attributed_to_the_reader_who_covers_it(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Acceptance: only real rows, no fingerprint; the ledger names the officer whose reads
    cover the leak first, with overlap figures and the time window of those reads."""
    if backend == "sqlite":
        store = StoreSettings(backend="sqlite", path=tmp_path / "vault" / "data" / "c.db")
    else:
        store = StoreSettings(backend="postgres", url=request.getfixturevalue("pg_database"))
    built = _build(tmp_path / "vault", store, people=150)
    with built.vault as vault:
        path = _write_csv(tmp_path / "leak.csv", _stripped_leak(built.leaked))
        report = trace_leak(vault, path)
    assert report.verdict == "ours"
    assert (report.rows, report.matched_rows, report.matched_subjects) == (60, 60, 60)
    assert report.exports == [] and report.canaries == []
    top = report.suspects[0]
    assert (top.accessor, top.org, top.role) == ("duty-1", "police-1", "duty_officer")
    assert (top.covered, top.full, top.sampled, top.coverage) == (60, 60, 60, 1.0)
    assert (top.read_subjects, top.precision) == (60, 1.0)
    assert (top.first_read, top.last_read) == (built.first_read, built.last_read)
    assert top.actions == {"get": 60}
    assert "duty-1" in report.summary and "no export fingerprint found" in report.summary


def test_the_ranking_weighs_fields_and_precision_not_only_coverage(
    world: World, tmp_path: Path
) -> None:
    """The analyst's bulk export covers every leaked person too, but mostly people who did not
    leak (precision 0.2); the teller read every leaked person but never their ID number or
    birth date; the supervisor read a third of them."""
    path = _write_csv(tmp_path / "leak.csv", _stripped_leak(world.leaked))
    report = trace_leak(world.vault, path)
    ranked = [(s.accessor, s.covered, s.full, s.precision) for s in report.suspects]
    assert ranked == [
        ("duty-1", 60, 60, 1.0),
        ("ana-1", 60, 60, 0.2),
        ("sup-1", 20, 20, 0.2),
        ("tel-1", 60, 0, 1.0),
    ]
    assert [s.collection for s in report.collections if s.likely] == ["identity"]


def test_a_file_that_never_came_from_the_vault_is_not_ours(world: World, tmp_path: Path) -> None:
    rows = [_identity(p) for p in world.outsiders]
    report = trace_leak(world.vault, _write_csv(tmp_path / "other.csv", rows))
    assert report.verdict == "not ours" and not report.ours
    assert (report.matched_rows, report.identifiable_rows) == (0, len(rows))
    assert report.suspects == [] and report.exports == [] and report.canaries == []
    assert report.summary.startswith("not ours")


def test_a_file_without_identifiers_is_not_ours(world: World, tmp_path: Path) -> None:
    path = tmp_path / "menu.tsv"
    path.write_text("dish\tprice\n宫保鸡丁\t38.00\n麻婆豆腐\t26.00\n", encoding="utf-8")
    report = trace_leak(world.vault, path)
    assert report.verdict == "not ours"
    assert (report.rows, report.identifiable_rows, report.matched_rows) == (2, 0, 0)


def test_a_stray_match_does_not_make_a_file_ours(world: World, tmp_path: Path) -> None:
    """People are in many databases: one of ours among 200 strangers proves nothing."""
    rows = [_identity(p) for p in [*world.outsiders, world.people[200]]]
    report = trace_leak(world.vault, _write_csv(tmp_path / "stray.csv", rows))
    assert report.verdict == "not ours"
    assert report.matched_rows == 1
    assert "stray" in report.summary


def test_a_partial_overlap_is_inconclusive(world: World, tmp_path: Path) -> None:
    rows = [_identity(p) for p in [*world.outsiders[:100], *world.people[200:215]]]
    report = trace_leak(world.vault, _write_csv(tmp_path / "mixed.csv", rows))
    assert report.verdict == "inconclusive"
    assert report.matched_rows == 15


def test_rows_without_an_id_number_resolve_by_phone(world: World, tmp_path: Path) -> None:
    rows = [{"联系人": p.name, "tel": p.phone.removeprefix("+86")} for p in world.people[:40]]
    report = trace_leak(world.vault, _write_csv(tmp_path / "phones.csv", rows))
    assert report.keys == {"tel": "identity.phone"}
    assert report.matched_by == {"identity.phone": 40}
    assert report.verdict == "ours"


def test_a_phone_shared_by_two_subjects_names_neither(tmp_path: Path) -> None:
    vault, _clock = _open(
        tmp_path / "vault", StoreSettings(backend="sqlite", path=tmp_path / "v.db")
    )
    with vault:
        a, b, c, d = generate_people(4, seed=44)
        items = [(p.id_number, {**_identity(p), "phone": a.phone}) for p in (a, b)]
        items += [(p.id_number, _identity(p)) for p in (c, d)]
        vault.put_many(_as(vault, "reg-1", "registration"), "identity", items)
        rows = [{"tel": p.phone, "n": p.name} for p in (a, c, d)]
        report = trace_leak(vault, _write_csv(tmp_path / "shared.csv", rows))
    assert report.matched_by == {"identity.phone": 2}
    assert report.matched_rows == 2


def test_other_indexed_fields_identify_rows_and_their_collection(tmp_path: Path) -> None:
    """A flights dump without ID numbers still resolves by booking reference (an indexed
    field), and its shape and the subjects' records say it is flights."""
    vault, _clock = _open(
        tmp_path / "vault", StoreSettings(backend="sqlite", path=tmp_path / "v.db")
    )
    people = generate_people(30, seed=45)
    rng = random.Random(1)
    flights = [
        {
            "flight_number": f"CA{1000 + i}",
            "departs_at": f"2026-02-{1 + i % 28:02d}T0{i % 10}:15:00+08:00",
            "seat": f"{10 + i}A",
            "booking_ref": "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=6)),
        }
        for i in range(30)
    ]
    with vault:
        registrar = _as(vault, "reg-1", "registration")
        vault.put_many(registrar, "identity", [(p.id_number, _identity(p)) for p in people])
        vault.put_many(
            registrar, "flights", list(zip([p.id_number for p in people], flights, strict=True))
        )
        rows = [
            {"PNR": f["booking_ref"], "dep": f["departs_at"], "seat": f["seat"]} for f in flights
        ]
        report = trace_leak(vault, _write_csv(tmp_path / "flights.csv", rows))
    assert report.keys == {"PNR": "flights.booking_ref"}
    assert report.matched_by == {"flights.booking_ref": 30}
    assert [s.collection for s in report.collections if s.likely] == ["flights"]


def test_tracing_needs_no_data_key_and_leaves_no_trace_in_the_ledger(tmp_path: Path) -> None:
    """Matching is by keyed tokens only: with every subject's data key gone (nothing can be
    decrypted any more) the trace is the same; and it neither reads nor writes records."""
    home = tmp_path / "vault"
    store = StoreSettings(backend="sqlite", path=home / "data" / "c.db")
    built = _build(home, store, people=80)
    path = _write_csv(tmp_path / "leak.csv", _stripped_leak(built.leaked))
    before = trace_leak(built.vault, path)
    keystore = built.vault.settings.keystore_path
    built.vault.close()
    keystore.unlink()
    with Vault.open(built.vault.settings, monitor=False) as vault:
        with pytest.raises(CustodesError):
            vault.get(_as(vault, "duty-1", "identity_check"), "identity", built.leaked[0].id_number)
        size = vault.store.event_count()
        after = trace_leak(vault, path)
        assert vault.store.event_count() == size
    assert after.matched_rows == before.matched_rows == 60
    assert [s.accessor for s in after.suspects] == [s.accessor for s in before.suspects]


def test_the_report_is_json_and_quotes_no_personal_data(world: World, tmp_path: Path) -> None:
    leaked = world.leaked[:30]
    path = _write_csv(tmp_path / "leak.csv", [_identity(p) for p in leaked])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{leaked[1].name},{leaked[1].id_number}\n")  # an unreadable row
    report = trace_leak(world.vault, path)
    text = json.dumps(report.as_dict(), ensure_ascii=False)
    assert json.loads(text)["matched_rows"] == 30
    assert report.bad_rows == 1
    for person in leaked:
        for value in (person.id_number, person.name, person.phone, person.address):
            assert value not in text


def test_the_report_says_what_it_measured(world: World, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "leak.csv", _stripped_leak(world.leaked))
    report: LeakReport = trace_leak(world.vault, path)
    body = report.as_dict()
    assert set(body["timings"]) == {"read", "match", "collections", "fingerprints", "ledger"}
    assert body["columns"] == {"出生": "date", "sfz": "id_number", "xm": "name"}
    assert body["suspects"][0]["first_read"] == world.first_read.isoformat()
