"""Canary subjects, on both backends: planted through the vault like real people (valid,
spread-out ID numbers; identity plus the records such a person has, none in an exportable
collection), registered by pseudonym only; any read or find of one raises the highest-score
alert at once through streaming detection, including canaries planted while it runs; a leak
holding one names the scope it was planted for."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stdnum.cn import ric

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.errors import InputError
from custodes.forensics import (
    LeakTable,
    PlantResult,
    canaries_in,
    plant_canaries,
    planted_canaries,
)
from custodes.forensics._leak import detect_roles
from custodes.forensics._registry import CANARIES_FILE, folder
from custodes.model import Access, Accessor
from custodes.sim import generate_people, sample_records
from custodes.vault import Vault

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
STAFF = [
    Accessor("reg-1", "registry", "registrar"),
    Accessor("desk-1", "hotel-1", "clerk"),
    Accessor("duty-1", "police-1", "duty_officer"),
    Accessor("duty-2", "police-1", "duty_officer"),
]
EXPORTABLE = {"hotel_stays", "flights", "border_crossings", "rentals"}  # default policy


def _as(vault: Vault, accessor: str, purpose: str | None) -> Access:
    return Access(vault.principal(accessor), purpose)


@pytest.fixture
def settings(tmp_path: Path, store_settings: StoreSettings) -> Settings:
    """A vault home with staff and 50 real people."""
    built = init_home(tmp_path / "vault", backend=store_settings.backend, url=store_settings.url)
    with Vault.open(built, clock=ManualClock(START), monitor=False) as vault:
        for accessor in STAFF:
            vault.add_accessor(accessor)
        people = generate_people(50, seed=3)
        vault.put_many(
            _as(vault, "reg-1", "registration"),
            "identity",
            [(p.id_number, sample_records(p, random.Random(3))["identity"][0]) for p in people],
        )
    return built


@pytest.fixture
def vault(settings: Settings) -> Iterator[Vault]:
    with Vault.open(settings, clock=ManualClock(START), monitor=False) as opened:
        yield opened


def test_canaries_are_planted_like_real_people_and_registered_by_pseudonym(vault: Vault) -> None:
    result = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=20, accessor="duty-1")
    assert len(result.canaries) == len(result.identities) == 20
    ids = [identity["id_number"] for identity in result.identities]
    assert all(ric.is_valid(i) for i in ids) and len(set(ids)) == 20
    # Spread through the ID space: many regions and birth years, both sexes.
    assert len({i[:6] for i in ids}) >= 8 and len({i[6:10] for i in ids}) >= 10
    assert {int(i[16]) % 2 for i in ids} == {0, 1}
    index = vault._index
    for canary, identity in zip(result.canaries, result.identities, strict=True):
        assert canary.pseudonym == vault.pseudonym(identity["id_number"])
        assert (canary.org, canary.accessor, canary.planted_by) == ("police-1", "duty-1", "reg-1")
        assert canary.collections[0] == "identity"
        assert not set(canary.collections) & EXPORTABLE
        ref = index.subject_ref(identity["id_number"])
        for name in vault.schema.collections:
            held = vault.store.records(name, ref)
            assert bool(held) == (name in canary.collections)
    assert result.records >= 20 + 10  # identity plus other records for most of them
    assert planted_canaries(vault) == result.canaries


def test_the_registry_is_private_and_holds_pseudonyms_only(vault: Vault) -> None:
    result = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=5)
    path = folder(vault.settings.home) / CANARIES_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    for identity in result.identities:
        for value in identity.values():
            assert value not in text
    assert all(json.loads(line)["org"] is None for line in text.splitlines())


def test_bad_scopes_and_counts_are_refused(vault: Vault) -> None:
    registrar = _as(vault, "reg-1", "registration")
    with pytest.raises(InputError, match="count"):
        plant_canaries(vault, registrar, count=0)
    with pytest.raises(InputError, match="unknown accessor"):
        plant_canaries(vault, registrar, accessor="nobody")
    with pytest.raises(InputError, match="not of organization"):
        plant_canaries(vault, registrar, accessor="duty-1", org="hotel-1")
    assert planted_canaries(vault) == []


def test_a_clerk_plants_only_what_a_clerk_may_write(vault: Vault) -> None:
    """A hotel desk plants canaries in its own systems: identity only (its other writable
    collections, stays and flights, are exportable)."""
    result = plant_canaries(vault, _as(vault, "desk-1", "registration"), count=3)
    assert {c.collections for c in result.canaries} == {("identity",)}
    assert {c.org for c in result.canaries} == {None}


def _alerts(vault: Vault) -> list[dict[str, object]]:
    monitor = vault.monitor
    assert monitor is not None
    assert monitor.flush(10)
    return [a.as_dict() for a in monitor.alerts]


def test_a_read_of_a_canary_alerts_at_once(settings: Settings) -> None:
    with Vault.open(settings, clock=ManualClock(START), monitor=False) as vault:
        before = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=2)
    with Vault.open(settings, clock=ManualClock(START), monitor=True) as vault:
        assert _alerts(vault) == []
        # Planted before the monitor started: known from the registry at warm-up.
        vault.get(_as(vault, "duty-1", "identity_check"), "identity", _id(before, 0))
        alerts = _alerts(vault)
        assert [(a["accessor"], a["kind"], a["score"]) for a in alerts] == [
            ("duty-1", "canary_touch", 1.0)
        ]
        # Planted while the monitor runs: alerts from the first touch too (a find this time).
        during = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=2)
        assert len(_alerts(vault)) == 1  # planting (writes) alerts nobody
        vault.find(_as(vault, "duty-2", "identity_check"), "identity", "id_number", _id(during, 1))
        alerts = _alerts(vault)
        assert [(a["accessor"], a["kind"]) for a in alerts][1:] == [("duty-2", "canary_touch")]


def _id(result: PlantResult, number: int) -> str:
    return result.identities[number]["id_number"]


def test_a_leak_holding_a_canary_names_its_scope(vault: Vault) -> None:
    hotel = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=3, org="hotel-1")
    duty = plant_canaries(vault, _as(vault, "reg-1", "registration"), count=3, accessor="duty-1")
    strangers = generate_people(40, seed=77)
    rows = [
        hotel.identities[1],
        *(sample_records(p, random.Random(5))["identity"][0] for p in strangers),
    ]
    table = _table(rows)
    pseudonyms = [vault.pseudonym(row["id_number"]) for row in rows]
    hits = canaries_in(vault, pseudonyms)
    assert [(h.pseudonym, dict(h.scope), h.kind, h.confirmed) for h in hits] == [
        (hotel.canaries[1].pseudonym, {"org": "hotel-1", "accessor": None}, "planted", True)
    ]
    assert canaries_in(vault, table) == []  # a table whose rows are not resolved yet
    resolved = LeakTable(
        source="t",
        format="csv",
        columns=table.columns,
        rows=table.rows,
        roles=table.roles,
        id_numbers=[row["id_number"] for row in rows],
        subjects=[hits[0].pseudonym] + [None] * (len(rows) - 1),  # as trace-leak resolves them
    )
    assert [h.scope["org"] for h in canaries_in(vault, resolved)] == ["hotel-1"]
    assert duty.canaries[0].pseudonym not in {h.pseudonym for h in hits}


def _table(rows: list[dict[str, str]]) -> LeakTable:
    columns = tuple(rows[0])
    return LeakTable(
        source="t",
        format="csv",
        columns=columns,
        rows=rows,
        roles=detect_roles(columns, rows),
        id_numbers=[None] * len(rows),
        subjects=[None] * len(rows),
    )


def test_an_approved_export_reaching_a_canary_is_not_a_touch() -> None:
    """Where the identity collection is exportable, a case-approved bulk export covers the
    canaries too; that export is accounted for by its case and fingerprint, not alerted."""
    from custodes.detect import CaseInfo, Context, Directory, Event, SubjectInfo
    from custodes.detect._context import Baseline, Explanation
    from custodes.detect._whom import CanaryDetector

    canary = SubjectInfo("c" * 32, None, None, None, False, True, frozenset())
    case = CaseInfo("k1", "stats-1", frozenset(), frozenset({"ana-1"}), 0.0, "dir-1", None)
    directory = Directory({}, {canary.subject: canary}, {"k1": case})
    ctx = Context(directory, Baseline.learn([], directory))
    detector = CanaryDetector()

    def event(action: str, case_id: str | None) -> Event:
        return Event(
            0, 10.0, "ana-1", "stats-1", "analyst", action, "identity", (), canary.subject,
            "statistics", case_id, True, 1,
        )  # fmt: skip

    explained = event("export", "k1")
    assert ctx.explain(explained) == Explanation.CASE
    assert detector.observe(explained, Explanation.CASE, ctx) is None
    unexplained = event("export", None)
    assert detector.observe(unexplained, ctx.explain(unexplained), ctx) is not None
    read = event("read", "k1")
    assert detector.observe(read, Explanation.CASE, ctx) is not None


def test_the_cli_plants_lists_and_reveals_only_on_request(
    settings: Settings, tmp_path: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "custodes.cli", *args, "--home", str(settings.home)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "100"},
        )

    seeds = tmp_path / "seed.jsonl"
    done = cli("canary", "plant", "--count", "3", "--org", "hotel-1", "--out", str(seeds), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["planted"] == 3 and data["scope"] == {"org": "hotel-1", "accessor": None}
    assert stat.S_IMODE(seeds.stat().st_mode) == 0o600
    identities = [json.loads(line) for line in seeds.read_text(encoding="utf-8").splitlines()]
    assert len(identities) == 3
    for identity in identities:
        assert identity["id_number"] not in done.stdout  # pseudonyms on screen, never IDs
    listed = cli("canary", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["pseudonym"] for c in json.loads(listed.stdout)] == data["pseudonyms"]
    again = cli("canary", "plant", "--out", str(seeds))
    assert again.returncode == 1 and "exists" in again.stderr
    assert "Traceback" not in again.stderr
