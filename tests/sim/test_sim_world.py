"""The simulated world: deterministic, staffed by people of the population, ready for misuse."""

from __future__ import annotations

import time
from collections import Counter

import phonenumbers
from stdnum.cn import ric

import custodes.sim
from custodes.policy import Policy
from custodes.schema import Schema
from custodes.sim import MISUSE_KINDS, build_world
from custodes.sim.world import surname

WORLD = build_world(1_500, seed=7)


def test_public_names_are_pinned() -> None:
    assert set(custodes.sim.__all__) == {
        "MISUSE_KINDS",
        "MIXES",
        "Misuse",
        "Mix",
        "Org",
        "Person",
        "SimResult",
        "Staff",
        "World",
        "accessor_rows",
        "build_world",
        "generate_people",
        "sample_records",
        "simulate",
        "subject_rows",
    }


def test_same_seed_same_world_other_seed_other_people() -> None:
    again = build_world(1_500, seed=7)
    assert again == WORLD
    assert again.staff == WORLD.staff and again.misusers == WORLD.misusers
    other = build_world(1_500, seed=8)
    assert {p.id_number for p in other.people}.isdisjoint({p.id_number for p in WORLD.people})


def test_every_id_number_and_phone_is_valid() -> None:
    for person in (*WORLD.people, *WORLD.canaries):
        assert ric.validate(person.id_number) == person.id_number
        assert phonenumbers.is_valid_number(phonenumbers.parse(person.phone))


def test_staff_are_people_of_the_population_with_policy_roles() -> None:
    population = set(WORLD.people)
    roles = Policy.default(Schema.default()).roles
    assert all(s.person in population for s in WORLD.staff)
    assert len({s.person.id_number for s in WORLD.staff}) == len(WORLD.staff)
    assert len({s.accessor for s in WORLD.staff}) == len(WORLD.staff)
    assert {s.role for s in WORLD.staff} <= roles
    assert all(s.active_from < WORLD.start and s.active_to is None for s in WORLD.staff)
    assert all(s.shift in ("day", "night", "on_call") for s in WORLD.staff)


def test_every_kind_of_organization_is_staffed_for_its_work() -> None:
    by_kind: dict[str, set[str]] = {}
    for staff in WORLD.staff:
        by_kind.setdefault(WORLD.org(staff.org).kind, set()).add(staff.role)
    assert by_kind["police"] >= {
        "investigator",
        "supervisor",
        "duty_officer",
        "director",
        "custodian",
    }
    assert by_kind["hotel"] == {"clerk"}
    assert by_kind["bank"] == {"teller"}
    assert by_kind["airline"] <= {"clerk", "registrar"}
    assert by_kind["border"] == {"border_officer"}
    assert "intercept_operator" in by_kind["telecom"]
    assert {"analyst", "director"} <= by_kind["ministry"]
    # Dual control is possible everywhere a case is opened: a second person can approve.
    for org in WORLD.orgs_of("police"):
        assert WORLD.staff_of(org.org, "supervisor") and WORLD.staff_of(org.org, "director")
    assert WORLD.staff_of("telecom-1", "director")


def test_protected_canaries_and_relations() -> None:
    ids = {p.id_number for p in WORLD.people}
    canaries = {p.id_number for p in WORLD.canaries}
    assert canaries and canaries.isdisjoint(ids)
    assert {p.id_number for p in WORLD.celebrities} <= WORLD.protected <= ids
    officials = [s for s in WORLD.staff if WORLD.org(s.org).kind in ("police", "ministry")]
    assert all(s.person.id_number in WORLD.protected for s in officials)
    banks = [o.org for o in WORLD.orgs_of("bank")]
    assert all(WORLD.relations[bank] for bank in banks)
    for org, members in WORLD.relations.items():
        assert list(members) == sorted(set(members))
        assert set(members) <= ids - {WORLD.erasure}
        assert WORLD.org(org).kind in ("bank", "hotel", "airline", "border")


def test_misuse_plan_covers_every_kind_with_distinct_accessors() -> None:
    kinds = [kind for kind, _ in WORLD.misusers]
    assert set(kinds) == set(MISUSE_KINDS)
    accessors = [accessor for _, accessor in WORLD.misusers]
    assert len(set(accessors)) == len(accessors)
    plan = dict(WORLD.misusers)
    family = WORLD.member(plan["family_lookup"]).person
    household = [
        p
        for p in WORLD.people
        if p != family and p.address == family.address and surname(p) == surname(family)
    ]
    assert household, "the family snoop must have a family to snoop on"
    neighbour = WORLD.member(plan["neighbour_lookup"]).person
    flatmates = [
        p
        for p in WORLD.people
        if p.address == neighbour.address and surname(p) != surname(neighbour)
    ]
    assert len(flatmates) >= 2
    assert WORLD.member(plan["official_targeting"]).org == "ministry"
    assert WORLD.member(plan["bulk_exfiltration"]).shift == "day"


def test_households_share_surname_and_address() -> None:
    homes = Counter((surname(p), p.address) for p in WORLD.people)
    shared = sum(n for n in homes.values() if n > 1)
    assert 0.15 < shared / len(WORLD.people) < 0.45


def test_a_large_world_is_fast_and_its_staff_grows_slowly() -> None:
    began = time.perf_counter()
    large = build_world(100_000, seed=1)
    assert time.perf_counter() - began < 30
    assert 50 <= len(WORLD.staff) < len(large.staff) <= 300
    assert len(large.people) == 100_000
