"""A simulated stretch of work through a real vault: ground truth, determinism, exports."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.errors import InputError
from custodes.model import AccessEvent
from custodes.policy import new_case_id
from custodes.sim import (
    MISUSE_KINDS,
    SimResult,
    World,
    accessor_rows,
    build_world,
    simulate,
    subject_rows,
)
from custodes.sim.world import MIN_PEOPLE
from custodes.vault import Vault

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, 08:00 in Shanghai
ZONE = ZoneInfo("Asia/Shanghai")  # the default policy's time zone
PEOPLE, DAYS = 400, 4


@dataclass
class Run:
    vault: Vault
    world: World
    result: SimResult
    events: list[AccessEvent]


def _run(
    home: Path,
    *,
    seed: int,
    people: int = PEOPLE,
    days: int = DAYS,
    store: StoreSettings | None = None,
) -> Run:
    settings = init_home(
        home,
        demo_seed=1,
        backend=store.backend if store else "sqlite",
        url=store.url if store else None,
    )
    if store is not None and store.backend == "sqlite":
        settings = replace(settings, store=store)
    # A checkpoint a day, not a minute: signing is not what these tests are about.
    settings = replace(settings, checkpoint_seconds=86_400)
    ids = random.Random(f"case ids {seed}")
    clock = ManualClock(START)
    vault = Vault.open(settings, clock=clock, case_ids=lambda: new_case_id(ids.randbytes(8)))
    world = build_world(people, seed=seed)
    result = simulate(vault, world, days=days, seed=seed, clock=clock)
    events = [event for _, event in vault.store.events()]
    return Run(vault, world, result, events)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    done = _run(tmp_path_factory.mktemp("sim") / "home", seed=11)
    yield done
    done.vault.close()


def test_every_misuse_kind_is_in_the_truth_with_events_of_its_accessor(run: Run) -> None:
    truth = run.result.truth
    assert {m.kind for m in truth} == set(MISUSE_KINDS)
    seen: set[int] = set()
    for misuse in truth:
        assert misuse.events, misuse.kind
        assert list(misuse.events) == sorted(set(misuse.events))
        assert misuse.note
        for seq in misuse.events:
            assert run.events[seq].accessor == misuse.accessor, (misuse.kind, seq)
        assert seen.isdisjoint(misuse.events)
        seen.update(misuse.events)
    assert dict(run.world.misusers) == {m.kind: m.accessor for m in truth}


def _of(run: Run, kind: str) -> list[AccessEvent]:
    misuse = next(m for m in run.result.truth if m.kind == kind)
    return [run.events[seq] for seq in misuse.events]


def test_misuse_events_look_like_what_they_are(run: Run) -> None:
    # Refused by policy, every time: stalking, probing, a senior official's lookups.
    for kind in ("stalking", "denied_probing", "official_targeting"):
        assert {e.decision for e in _of(run, kind)} == {"deny"}, kind
    # Refused mostly, but the minimal identity gets through.
    purpose = _of(run, "purpose_misuse")
    assert sum(e.decision == "deny" for e in purpose) > len(purpose) / 2
    assert any(e.decision == "allow" and e.collection == "identity" for e in purpose)
    # Sellers get full histories: break-glass (flagged) or their own re-approved case.
    seller = _of(run, "seller")
    assert any(e.break_glass and e.decision == "allow" for e in seller)
    assert {e.collection for e in seller if e.decision == "allow"} >= {"hotel_stays", "flights"}
    covered = _of(run, "covered_seller")
    assert covered[0].action == "case_open" and covered[0].case is not None
    assert any(e.decision == "allow" and e.case == covered[0].case for e in covered[1:])
    # Enumeration finds nobody; bulk exfiltration reads hundreds of subjects at night.
    assert all(e.action == "find" and e.count == 0 for e in _of(run, "enumeration"))
    bulk = _of(run, "bulk_exfiltration")
    assert len({e.subject for e in bulk}) >= 50
    assert all(e.ts.astimezone(ZONE).hour < 6 for e in bulk)  # deep in the night


def test_canaries_are_touched_only_by_the_canary_misuse(run: Run) -> None:
    canaries = {run.vault.pseudonym(p.id_number) for p in run.world.canaries}
    touched = {e.accessor for e in run.events if e.subject in canaries and e.action != "put"}
    assert touched == {dict(run.world.misusers)["canary_touch"]}
    writers = {e.accessor for e in run.events if e.subject in canaries and e.action == "put"}
    assert writers == {"ministry.registrar-1"}  # loaded once, never written again


def test_the_departing_employee_leaves(run: Run) -> None:
    accessor = dict(run.world.misusers)["departing_employee"]
    staff = run.world.member(accessor)
    assert staff.active_to is not None
    found = run.vault.store.accessor(accessor)
    assert found is not None and not found.active
    last = max(e.ts for e in run.events if e.accessor == accessor)
    assert last.astimezone(ZONE).date() < staff.active_to


def test_counts_agree_with_the_ledger_and_it_verifies(run: Run) -> None:
    result = run.result
    assert result.events == len(run.events) == run.vault.store.event_count()
    assert result.denied == sum(e.decision == "deny" for e in run.events)
    writes = sum(1 for e in run.events if e.action == "put" and e.decision == "allow")
    assert result.records == writes
    opened = [
        e for e in run.events if e.action == "case_open" and e.reason.startswith("case opened")
    ]
    assert result.cases == len(opened)
    assert result.start == START < result.end
    assert all(a.ts <= b.ts for a, b in zip(run.events, run.events[1:], strict=False))
    for kind in (
        "identity_check",
        "case_read",
        "hotel_check_in",
        "border_crossing",
        "bank_service",
    ):
        assert result.operations[kind] > 0, kind
    run.vault.ledger.verify()


def test_work_follows_shifts_and_policy(run: Run) -> None:
    zone = ZONE
    tellers = [e for e in run.events if e.role == "teller"]
    assert all(9 <= e.ts.astimezone(zone).hour < 18 for e in tellers)
    night = [e for e in run.events if e.role == "duty_officer" and e.ts.astimezone(zone).hour < 6]
    assert night, "night and on-call duty officers work at night"
    location = [
        e
        for e in run.events
        if e.collection == "phone_location" and e.decision == "allow" and e.action == "get"
    ]
    assert location and all(e.case is not None for e in location)


_ID = re.compile(r"\d{17}[\dX]")
_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


def test_subject_and_accessor_rows_hold_tokens_only(run: Run) -> None:
    subjects = subject_rows(run.vault, run.world)
    accessors = accessor_rows(run.vault, run.world)
    assert len(subjects) == len(run.world.people) + len(run.world.canaries)
    assert [r["subject"] for r in subjects] == sorted(str(r["subject"]) for r in subjects)
    assert [r["accessor"] for r in accessors] == sorted(s.accessor for s in run.world.staff)
    text = json.dumps([subjects, accessors], ensure_ascii=False)
    assert not _ID.search(text) and not _CJK.search(text)
    for person in run.world.people[:100]:
        assert person.phone not in text and person.id_number not in text
    departing = dict(run.world.misusers)["departing_employee"]
    row = next(r for r in accessors if r["accessor"] == departing)
    assert row["active_to"] is not None
    assert sum(1 for r in accessors if r["active_to"] is not None) == 1


def test_rows_tie_people_together_by_keyed_tokens(run: Run) -> None:
    subjects = {r["subject"]: r for r in subject_rows(run.vault, run.world)}
    plan = dict(run.world.misusers)
    family = run.world.member(plan["family_lookup"])
    me = subjects[run.vault.pseudonym(family.person.id_number)]
    assert me["employer_org"] == family.org and me["protected"] is False
    kin = [
        r
        for r in subjects.values()
        if r["surname_token"] == me["surname_token"] and r["address_token"] == me["address_token"]
    ]
    assert len(kin) >= 2
    canaries = [r for r in subjects.values() if r["canary"]]
    assert len(canaries) == len(run.world.canaries)
    assert all(r["relations"] == [] and r["employer_org"] is None for r in canaries)
    celebrity = subjects[run.vault.pseudonym(run.world.celebrities[0].id_number)]
    assert celebrity["protected"] is True


def _entries(run: Run) -> list[bytes]:
    # A break-glass justification is sealed with a fresh random nonce (AEAD), so it is the one
    # field that differs between runs; everything else must be byte-identical.
    return [replace(e, justification=None).canonical(i) for i, e in enumerate(run.events)]


def test_same_seed_same_month_other_seed_other_month(run: Run, tmp_path: Path) -> None:
    again = _run(tmp_path / "again", seed=11)
    try:
        assert again.result == run.result
        assert _entries(again) == _entries(run)
    finally:
        again.vault.close()
    other = _run(tmp_path / "other", seed=12, days=1)
    try:
        assert other.result.truth != run.result.truth
        assert {m.kind for m in other.result.truth} == set(MISUSE_KINDS)
    finally:
        other.vault.close()


def test_the_smallest_world_in_a_single_day_still_carries_every_misuse(tmp_path: Path) -> None:
    one = _run(tmp_path / "one", seed=3, people=MIN_PEOPLE, days=1)
    try:
        assert {m.kind for m in one.result.truth} == set(MISUSE_KINDS)
        assert all(m.events for m in one.result.truth)
        one.vault.ledger.verify()
    finally:
        one.vault.close()


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        build_world(MIN_PEOPLE - 1, seed=1)
    world = build_world(250, seed=1)
    settings = init_home(tmp_path / "h", demo_seed=1)
    clock = ManualClock(START)
    with Vault.open(settings, clock=clock) as vault:
        with pytest.raises(InputError):
            simulate(vault, world, days=0, seed=1, clock=clock)
        assert vault.store.event_count() == 0


def test_simulation_runs_on_both_backends(store_settings: StoreSettings, tmp_path: Path) -> None:
    done = _run(tmp_path / "home", seed=5, people=250, days=2, store=store_settings)
    try:
        assert {m.kind for m in done.result.truth} == set(MISUSE_KINDS)
        for misuse in done.result.truth:
            assert all(done.events[seq].accessor == misuse.accessor for seq in misuse.events)
        done.vault.ledger.verify()
    finally:
        done.vault.close()


_DIGEST = """
import dataclasses, hashlib, random, sys, tempfile
from datetime import UTC, datetime
from pathlib import Path
from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.policy import new_case_id
from custodes.sim import accessor_rows, build_world, simulate, subject_rows
from custodes.vault import Vault

home = Path(tempfile.mkdtemp()) / "home"
settings = dataclasses.replace(init_home(home, demo_seed=1), checkpoint_seconds=86_400)
clock = ManualClock(datetime(2026, 3, 2, tzinfo=UTC))
ids = random.Random("ids")
world = build_world(150, seed=9)
with Vault.open(settings, clock=clock, case_ids=lambda: new_case_id(ids.randbytes(8))) as vault:
    result = simulate(vault, world, days=2, seed=9, clock=clock)
    plan = (world.people, world.staff, world.misusers, sorted(world.protected), world.relations)
    digest = hashlib.sha256(repr((result, plan)).encode())
    for seq, event in vault.store.events():
        digest.update(dataclasses.replace(event, justification=None).canonical(seq))
    digest.update(repr((subject_rows(vault, world), accessor_rows(vault, world))).encode())
sys.stdout.write(digest.hexdigest())
"""


def test_runs_do_not_depend_on_string_hashing() -> None:
    # Set and dict orders of strings vary with PYTHONHASHSEED; the simulation must not.
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout)
    assert len(digests) == 1
