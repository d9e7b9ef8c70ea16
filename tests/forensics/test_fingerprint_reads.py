"""Fingerprinted bulk reads, on both backends: a ``find`` that returns at least
``forensics.fingerprint_min_rows`` records carries its reader's watermark and is recorded like
an export (an ``export_mark`` ledger entry naming the read, a registry line), so a leak of its
rows (shuffled, columns renamed) names the read and its reader; a smaller answer is returned
as stored and nothing is written. The watermark never changes a value, only its spelling.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes._home import init_home
from custodes.cli import main
from custodes.clock import ManualClock
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.forensics import (
    HIGH_CONFIDENCE,
    LeakTable,
    fingerprint_read,
    match_fingerprints,
    read_exports,
)
from custodes.forensics._leak import detect_roles
from custodes.forensics._registry import EXPORTS_FILE, folder
from custodes.model import Access, Accessor, Action
from custodes.sim import generate_people
from custodes.vault import Record, Vault
from tests.api.conftest import Api, build_api, identity, store_settings_for
from tests.conftest import fresh_pg_database

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BIG, SMALL = 40, 5  # visitors of the two venues; the default threshold (20) lies between
SCHEMA = """
[collections.visits]
description = "Venue sign-ins, one record per visit."

[collections.visits.fields.venue]
class = "other"
type = "string"
indexed = true

[collections.visits.fields.at]
class = "other"
type = "datetime"

[collections.visits.fields.left]
class = "other"
type = "datetime"

[collections.visits.fields.phone]
class = "contact"
type = "phone"
"""
GRANTS = """
[[grants]]
role = "registrar"
purpose = "registration"
actions = ["put"]
collections = ["visits"]
fields = ["*"]

[[grants]]
role = "analyst"
purpose = "statistics"
actions = ["find"]
collections = ["visits"]
fields = ["*"]
"""
STAFF = [
    Accessor("reg-1", "registry", "registrar"),
    Accessor("ana-1", "stats-1", "analyst"),
    Accessor("ana-2", "stats-1", "analyst"),
]


@dataclass
class Reads:
    vault: Vault
    home: Path
    stored: dict[str, Record]  # every visit as stored, by record id


def _as(vault: Vault, accessor: str, purpose: str = "statistics") -> Access:
    return Access(vault.principal(accessor), purpose)


def _visit(venue: str, number: int, phone: str) -> dict[str, str]:
    at = START + timedelta(hours=number, minutes=7 * number, seconds=number)
    return {
        "venue": venue,
        "at": at.isoformat(),
        "left": (at + timedelta(minutes=41 + number)).isoformat(),
        "phone": phone,
    }


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def reads(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reads]:
    """A vault whose venue A had 40 visitors and venue B 5."""
    home = tmp_path_factory.mktemp("reads") / "vault"
    url = fresh_pg_database(request) if request.param == "postgres" else None
    settings = init_home(home, backend=request.param, url=url)
    with settings.schema_path.open("a", encoding="utf-8") as handle:
        handle.write(SCHEMA)
    with settings.policy_path.open("a", encoding="utf-8") as handle:
        handle.write(GRANTS)
    vault = Vault.open(settings, clock=ManualClock(START), monitor=False)
    for accessor in STAFF:
        vault.add_accessor(accessor)
    people = generate_people(BIG + SMALL, seed=5)
    items = [
        (p.id_number, _visit("Venue A" if n < BIG else "Venue B", n, p.phone))
        for n, p in enumerate(people)
    ]
    vault.put_many(_as(vault, "reg-1", "registration"), "visits", items)
    stored = {}
    for venue in ("Venue A", "Venue B"):
        found = vault.find(_as(vault, "ana-2"), "visits", "venue", venue)
        stored.update({r.record_id: r for r in found})
    yield Reads(vault, home, stored)
    vault.close()


def _marks(vault: Vault) -> list[tuple[int, dict[str, object]]]:
    return [
        (seq, json.loads(event.reason))
        for seq, event in vault.store.events()
        if event.action == Action.EXPORT_MARK
    ]


def _find(reads: Reads, accessor: str, venue: str) -> list[Record]:
    access = _as(reads.vault, accessor)
    found = reads.vault.find(access, "visits", "venue", venue)
    return fingerprint_read(reads.vault, access, "visits", found)


def _leak(records: list[Record], seed: int) -> LeakTable:
    """The rows as a leaker would pass them on: shuffled, columns renamed and reordered."""
    names = {"phone": "手机", "at": "time_in", "left": "time_out", "venue": "place"}
    rows = [{names[k]: r.values[k] for k in ("left", "phone", "at", "venue")} for r in records]
    random.Random(seed).shuffle(rows)
    columns = tuple(rows[0])
    return LeakTable(
        source="test",
        format="csv",
        columns=columns,
        rows=rows,
        roles=detect_roles(columns, rows),
        id_numbers=[None] * len(rows),
        subjects=[None] * len(rows),
    )


def test_a_large_find_is_marked_on_the_ledger_and_in_the_registry(reads: Reads) -> None:
    before = len(_marks(reads.vault))
    found = _find(reads, "ana-1", "Venue A")
    assert len(found) == BIG
    marks = _marks(reads.vault)
    assert len(marks) == before + 1
    seq, mark = marks[-1]
    assert mark["read"] == "find"
    assert mark["canary_rows"] == 0
    entry = next(reads.vault.store.events(seq, seq + 1))[1]
    assert entry.accessor == "ana-1"
    assert entry.count == BIG
    registered = {e.export_id: e for e in read_exports(reads.vault)}[str(mark["export"])]
    assert registered.accessor == "ana-1"
    assert registered.ledger_index == seq
    assert registered.rows == BIG
    assert registered.canaries == ()  # a lookup answer never holds invented people
    assert registered.carriers >= BIG


def test_a_large_find_holds_the_stored_records_only_respelled(reads: Reads) -> None:
    found = _find(reads, "ana-1", "Venue A")
    coll = reads.vault.schema.collection("visits")
    assert {r.record_id for r in found} <= set(reads.stored)
    respelled = 0
    for record in found:
        stored = reads.stored[record.record_id]
        for name, value in record.values.items():
            assert coll.field(name).normalize(value) == stored.values[name]
            respelled += value != stored.values[name]
    assert respelled > 0  # the watermark is there


def test_a_leak_of_a_large_find_names_the_read_and_its_reader(reads: Reads) -> None:
    mine = _find(reads, "ana-1", "Venue A")
    _find(reads, "ana-2", "Venue A")  # the same records, read by another analyst
    mark = _marks(reads.vault)[-2][1]
    matches = match_fingerprints(reads.vault, _leak(mine, seed=3))
    assert matches, "no read matched"
    top = matches[0]
    assert top.export_id == mark["export"]
    assert top.accessor == "ana-1"
    assert top.confidence >= HIGH_CONFIDENCE
    assert top.method == "watermark"
    assert [m for m in matches[1:] if m.confidence >= HIGH_CONFIDENCE] == []


def test_a_half_leak_still_names_the_read(reads: Reads) -> None:
    mine = _find(reads, "ana-1", "Venue A")
    mark = _marks(reads.vault)[-1][1]
    half = random.Random(8).sample(mine, BIG // 2)
    matches = match_fingerprints(reads.vault, _leak(half, seed=4))
    assert matches[0].export_id == mark["export"]
    assert matches[0].confidence >= HIGH_CONFIDENCE


def test_a_small_find_is_returned_as_stored_and_writes_nothing(reads: Reads) -> None:
    marks = _marks(reads.vault)
    registry = folder(reads.home) / EXPORTS_FILE
    lines = registry.read_text(encoding="utf-8") if registry.exists() else ""
    found = _find(reads, "ana-1", "Venue B")
    assert len(found) == SMALL
    assert [r.values for r in found] == [reads.stored[r.record_id].values for r in found]
    assert _marks(reads.vault) == marks
    assert (registry.read_text(encoding="utf-8") if registry.exists() else "") == lines


def test_the_cli_find_fingerprints_a_large_answer(
    reads: Reads, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["find", "visits", "--field", "venue=Venue A", "--as", "ana-1", "--purpose"]
    before = len(_marks(reads.vault))
    assert main([*args, "statistics", "--home", str(reads.home), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == BIG
    seq, mark = _marks(reads.vault)[-1]
    assert len(_marks(reads.vault)) == before + 1
    leaked = [Record(r["record_id"], "visits", START, r["values"]) for r in rows]
    matches = match_fingerprints(reads.vault, _leak(leaked, seed=5))
    assert matches[0].export_id == mark["export"]
    assert matches[0].ledger_index == seq


def test_the_threshold_is_a_positive_setting(tmp_path: Path) -> None:
    raw = {"forensics": {"fingerprint_min_rows": 3}}
    assert Settings.from_mapping(tmp_path, raw, env={}).fingerprint_min_rows == 3
    assert Settings.from_mapping(tmp_path, {}, env={}).fingerprint_min_rows == 20
    with pytest.raises(ConfigError):
        Settings.from_mapping(tmp_path, {"forensics": {"fingerprint_min_rows": 0}}, env={})


# -- through the HTTP API ------------------------------------------------------------------------

SHARED_PHONE = "+8613800138000"


def _household(vault: Vault) -> None:
    """25 people registered with one phone number: a find by it is a bulk read."""
    people = generate_people(25, seed=99)
    items = [(p.id_number, {**identity(p), "phone": SHARED_PHONE}) for p in people]
    vault.put_many(_as(vault, "reg-1", "registration"), "identity", items)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def household_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("reads-api") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(home, store, prepare=_household)


def test_the_api_find_fingerprints_a_large_answer(household_api: Api) -> None:
    api = household_api
    body = {"field": "phone", "value": SHARED_PHONE, "purpose": "identity_check"}
    response = api.post("/v1/records/identity/find", "duty-1", body)
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert len(records) == 25
    seq, mark = _marks(api.vault)[-1]
    assert mark["read"] == "find"
    assert next(api.vault.store.events(seq, seq + 1))[1].accessor == "duty-1"
    assert str(mark["export"]) in {e.export_id for e in read_exports(api.vault)}
    id_field = api.vault.schema.collection("identity").field("id_number")
    for record in records:
        number = record["values"]["id_number"]
        assert number.upper() == id_field.normalize(number)  # at most respelled ('x' for 'X')
