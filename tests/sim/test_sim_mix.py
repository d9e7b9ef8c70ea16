"""Scenario mixes: the held-out ``shifted`` mix is deterministic and carries every misuse kind,
and both mixes carry warrant reads by operators the warrant is not assigned to (allowed)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.errors import InputError
from custodes.model import AccessEvent
from custodes.policy import new_case_id
from custodes.sim import MISUSE_KINDS, MIXES, SimResult, build_world, simulate
from custodes.vault import Vault

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
PEOPLE, DAYS = 300, 10


@dataclass
class Month:
    vault: Vault
    result: SimResult
    events: list[AccessEvent]


def _month(home: Path, *, seed: int, mix: str, days: int = DAYS) -> Month:
    settings = replace(init_home(home, demo_seed=1), checkpoint_seconds=86_400)
    ids = random.Random(f"case ids {seed}")
    clock = ManualClock(START)
    vault = Vault.open(settings, clock=clock, case_ids=lambda: new_case_id(ids.randbytes(8)))
    world = build_world(PEOPLE, seed=seed)
    result = simulate(vault, world, days=days, seed=seed, clock=clock, mix=mix)
    return Month(vault, result, [event for _, event in vault.store.events()])


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    month = _month(tmp_path_factory.mktemp("shifted") / "home", seed=21, mix="shifted")
    yield month
    month.vault.close()


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    month = _month(tmp_path_factory.mktemp("standard") / "home", seed=21, mix="standard")
    yield month
    month.vault.close()


def _cover_reads(month: Month) -> list[AccessEvent]:
    """Location reads under a warrant by an operator the warrant is not assigned to."""
    assigned = {
        case.case_id: case.assigned
        for case_id in {e.case for e in month.events if e.case is not None}
        if (case := month.vault.store.case(case_id)) is not None
    }
    return [
        e
        for e in month.events
        if e.collection == "phone_location"
        and e.action == "get"
        and e.case in assigned
        and e.accessor not in assigned[e.case]
    ]


def test_the_shifted_mix_carries_every_misuse_kind(shifted: Month) -> None:
    assert {m.kind for m in shifted.result.truth} == set(MISUSE_KINDS)
    assert all(m.events for m in shifted.result.truth)
    for misuse in shifted.result.truth:
        assert {shifted.events[seq].accessor for seq in misuse.events} == {misuse.accessor}
    shifted.vault.ledger.verify()


def test_the_shifted_mix_is_deterministic(shifted: Month, tmp_path: Path) -> None:
    again = _month(tmp_path / "again", seed=21, mix="shifted")
    try:
        assert again.result == shifted.result
        blank = [replace(e, justification=None) for e in again.events]
        assert blank == [replace(e, justification=None) for e in shifted.events]
    finally:
        again.vault.close()


def test_the_shifted_mix_differs_from_the_standard_one(standard: Month, shifted: Month) -> None:
    assert shifted.result.truth != standard.result.truth
    ops, base = shifted.result.operations, standard.result.operations
    # More identity checks (nights and on-call) and quieter misuse, on the same world and seed.
    assert ops["identity_check"] > base["identity_check"]

    def events(month: Month, kind: str) -> int:
        return sum(len(m.events) for m in month.result.truth if m.kind == kind)

    assert events(shifted, "enumeration") < events(standard, "enumeration")
    assert events(shifted, "stalking") < events(standard, "stalking")


@pytest.mark.parametrize("which", ["standard", "shifted"])
def test_operators_not_assigned_to_a_warrant_execute_it(
    which: str, standard: Month, shifted: Month
) -> None:
    month = standard if which == "standard" else shifted
    covers = _cover_reads(month)
    assert covers, "benign noise includes unassigned operators covering a shift"
    assert all(e.decision == "allow" and e.role == "intercept_operator" for e in covers)
    misusers = {m.accessor for m in month.result.truth}
    truth = {seq for m in month.result.truth for seq in m.events}
    benign = [e for e in covers if e.accessor not in misusers or month.events.index(e) not in truth]
    assert benign, "cover reads are ordinary work, not injected misuse"
    assert month.result.operations["location_cover_read"] >= len(covers)


def test_an_unknown_mix_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    settings = init_home(tmp_path / "h", demo_seed=1)
    clock = ManualClock(START)
    with Vault.open(settings, clock=clock) as vault:
        with pytest.raises(InputError, match="unknown scenario mix 'spicy'"):
            simulate(vault, build_world(150, seed=1), days=1, seed=1, clock=clock, mix="spicy")
        assert vault.store.event_count() == 0
    assert set(MIXES) == {"standard", "shifted"}
