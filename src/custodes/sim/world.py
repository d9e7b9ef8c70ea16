"""The simulated world: a population, the organizations that hold records about it, their staff.

Everything is drawn from ``random.Random`` generators derived from the seed, so the same
``(people, seed)`` always gives the same world. Staff are people of the population (officials
are data subjects too); a few of them are planned to misuse their access during the simulated
month (:attr:`World.misusers`), which :func:`custodes.sim.simulate` carries out and records as
ground truth.

:func:`subject_rows` and :func:`accessor_rows` describe the world to misuse detectors in the
interchange format of DESIGN.md §6, with surnames and addresses as keyed tokens only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from custodes.errors import InputError
from custodes.sim._people import (
    AIRLINES,
    BANKS,
    BORDER_PORTS,
    HOTEL_BRANDS,
    REGIONS,
    Person,
    _surname_length,
    generate_people,
)

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = [
    "DEFAULT_START",
    "MIN_PEOPLE",
    "MISUSE_KINDS",
    "Org",
    "Staff",
    "World",
    "accessor_rows",
    "build_world",
    "subject_rows",
    "surname",
]

MIN_PEOPLE = 100
"""The smallest population that can staff every organization of the world."""

DEFAULT_START = date(2026, 3, 2)
"""The first simulated day staff hire dates are counted back from (a Monday)."""

MISUSE_KINDS: tuple[str, ...] = (
    "seller",
    "covered_seller",
    "purpose_misuse",
    "vip_snooping",
    "family_lookup",
    "neighbour_lookup",
    "coworker_lookup",
    "official_targeting",
    "bulk_exfiltration",
    "enumeration",
    "low_and_slow",
    "stalking",
    "canary_touch",
    "departing_employee",
    "denied_probing",
)
"""Every kind of injected misuse, in the order the ground truth lists them."""

# Which roles may carry out each kind of misuse, in order of preference, and which shift the
# misuser should work (None: any), so that e.g. stolen credentials are used outside the shift.
_MISUSE_ROLES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "seller": (("investigator",), "day"),
    "covered_seller": (("investigator",), "day"),
    "purpose_misuse": (("duty_officer",), None),
    "vip_snooping": (("border_officer", "duty_officer"), None),
    "family_lookup": (("teller", "duty_officer", "border_officer"), None),
    "neighbour_lookup": (("duty_officer", "supervisor"), None),
    "coworker_lookup": (("duty_officer", "supervisor"), None),
    "official_targeting": (("director",), None),
    "bulk_exfiltration": (("border_officer",), "day"),
    "enumeration": (("supervisor", "duty_officer"), None),
    "low_and_slow": (("teller",), None),
    "stalking": (("intercept_operator",), None),
    "canary_touch": (("duty_officer", "supervisor"), None),
    "departing_employee": (("teller",), None),
    "denied_probing": (("clerk",), None),
}

# Government organizations: their staff are officials, whose lookups need extra scrutiny.
_OFFICIAL_KINDS = frozenset({"police", "border", "ministry"})
_ADULT_BORN = (date(1962, 1, 1), date(2003, 12, 31))
_FLATMATES = 0.015  # share of people who rent a room in someone else's flat (合租)


@dataclass(frozen=True, slots=True)
class Org:
    """An organization that writes or reads records: ``kind`` is police, hotel, bank, airline,
    border, telecom or ministry."""

    org: str
    kind: str
    name: str
    city: str


@dataclass(frozen=True, slots=True)
class Staff:
    """An accessor: a person of the population working for ``org`` in ``role``.

    ``shift`` is ``day`` (08-20 local), ``night`` (20-08) or ``on_call`` (odd hours).
    ``active_to`` is the first day the accessor no longer works there (None while employed).
    """

    accessor: str
    org: str
    role: str
    person: Person
    shift: str
    active_from: date
    active_to: date | None = None


@dataclass
class World:
    """A population, its organizations and their staff; the plan of a simulated month.

    ``relations`` maps an org to the sorted ID numbers of the people it legitimately deals
    with (a bank's customers, a hotel's guests, an airline's passengers, a port's travellers).
    ``protected`` holds the ID numbers of public figures and officials. ``canaries`` are
    synthetic subjects that no legitimate work touches. ``misusers`` pairs each planned misuse
    kind with the accessor who commits it. ``erasure`` is the subject erased during the month.
    """

    seed: int
    start: date
    people: list[Person]
    canaries: list[Person]
    orgs: list[Org]
    staff: list[Staff]
    celebrities: list[Person]
    protected: frozenset[str]
    relations: dict[str, tuple[str, ...]]
    misusers: tuple[tuple[str, str], ...]
    erasure: str

    @cached_property
    def by_id(self) -> dict[str, Person]:
        """People and canaries by ID number."""
        return {p.id_number: p for p in (*self.people, *self.canaries)}

    @cached_property
    def employer(self) -> dict[str, str]:
        """The org of each staff member, by their ID number."""
        return {s.person.id_number: s.org for s in self.staff}

    @cached_property
    def pool(self) -> tuple[Person, ...]:
        """The people ordinary work may draw on: everyone but the erased subject."""
        return tuple(p for p in self.people if p.id_number != self.erasure)

    def org(self, org_id: str) -> Org:
        """Return the org with this id.

        Raises:
            InputError: no such org.
        """
        for org in self.orgs:
            if org.org == org_id:
                return org
        raise InputError(f"no org '{org_id}' in this world")

    def member(self, accessor: str) -> Staff:
        """Return the staff member with this accessor id.

        Raises:
            InputError: no such accessor.
        """
        for staff in self.staff:
            if staff.accessor == accessor:
                return staff
        raise InputError(f"no accessor '{accessor}' in this world")

    def staff_of(self, org_id: str, role: str | None = None) -> list[Staff]:
        """Return the staff of an org (of one role), in accessor order."""
        return [s for s in self.staff if s.org == org_id and (role is None or s.role == role)]

    def orgs_of(self, kind: str) -> list[Org]:
        """Return the orgs of one kind, in id order."""
        return [o for o in self.orgs if o.kind == kind]


def surname(person: Person) -> str:
    """Return the surname part of a person's name."""
    return person.name[: _surname_length(person.name)]


def build_world(people: int, *, seed: int, start: date = DEFAULT_START) -> World:
    """Build a world of ``people`` residents with organizations, staff and a misuse plan.

    Raises:
        InputError: fewer than :data:`MIN_PEOPLE` people.
    """
    if people < MIN_PEOPLE:
        raise InputError(f"a simulated world needs at least {MIN_PEOPLE} people, not {people}")
    rng = random.Random(f"custodes.sim.world:{seed}")  # noqa: S311 - simulation data
    population = _with_flatmates(generate_people(people, seed=seed), rng)
    orgs = _orgs(people, rng)
    staff = _staff(orgs, population, people, rng, start)
    staff, population, misusers = _plan_misuse(staff, population, people, rng)
    taken = {s.person.id_number for s in staff}
    others = [p for p in population if p.id_number not in taken]
    celebrities = rng.sample(others, 5 + people // 20_000)
    famous = {p.id_number for p in celebrities}
    erasure = rng.choice(others).id_number
    while erasure in famous:
        erasure = rng.choice(others).id_number
    officials = {s.person.id_number for s in staff if _kind(orgs, s.org) in _OFFICIAL_KINDS}
    return World(
        seed=seed,
        start=start,
        people=population,
        canaries=_canaries(people, seed, {p.id_number for p in population}),
        orgs=orgs,
        staff=staff,
        celebrities=celebrities,
        protected=frozenset(officials | {p.id_number for p in celebrities}),
        relations=_relations(orgs, population, erasure, rng),
        misusers=misusers,
        erasure=erasure,
    )


def _kind(orgs: list[Org], org_id: str) -> str:
    return next(o.kind for o in orgs if o.org == org_id)


def _with_flatmates(people: list[Person], rng: random.Random) -> list[Person]:
    """Move a few people into other people's flats (room renters with another surname)."""
    out = list(people)
    for i in range(len(out)):
        if rng.random() < _FLATMATES:
            host = out[rng.randrange(len(out))]
            if surname(host) != surname(out[i]):
                out[i] = replace(out[i], address=host.address)
    return out


def _scale(people: int) -> int:
    """How many organizations grow with the population: slowly (logarithmically)."""
    return max(0, round(math.log2(people / 1000))) if people >= 1000 else 0


def _orgs(people: int, rng: random.Random) -> list[Org]:
    k = _scale(people)
    orgs: list[Org] = []
    for i in range(2 + (k + 1) // 2 + (1 if k == 0 else 0)):
        _, city, district, _ = rng.choice(REGIONS)
        orgs.append(Org(f"police-{i + 1}", "police", f"{city}公安局{district}分局", city))
    for i in range(2 + k):
        _, city, district, _ = rng.choice(REGIONS)
        hotel = f"{HOTEL_BRANDS[i % len(HOTEL_BRANDS)]}({city.removesuffix('市')}{district}店)"
        orgs.append(Org(f"hotel-{i + 1}", "hotel", hotel, city))
    for i in range(3 + k // 2):
        orgs.append(Org(f"bank-{i + 1}", "bank", BANKS[i % len(BANKS)], rng.choice(REGIONS)[1]))
    for i in range(2 + k // 3):
        airline = AIRLINES[i % len(AIRLINES)][0]
        orgs.append(Org(f"airline-{i + 1}", "airline", airline, rng.choice(REGIONS)[1]))
    for i in range(1 + k // 3):
        port = BORDER_PORTS[i % len(BORDER_PORTS)]
        orgs.append(Org(f"border-{i + 1}", "border", port, "深圳市"))
    orgs.append(Org("telecom-1", "telecom", "中国移动通信集团", "北京市"))
    orgs.append(Org("ministry", "ministry", "公安部", "北京市"))
    return orgs


# Per kind of org: (role, how many, shifts in turn). Counts grow with _scale.
def _roster(kind: str, k: int) -> list[tuple[str, int, tuple[str, ...]]]:
    rosters: dict[str, list[tuple[str, int, tuple[str, ...]]]] = {
        "police": [
            ("investigator", 3 + k // 3, ("day", "day", "on_call")),
            ("supervisor", 1 + k // 4, ("day",)),
            ("duty_officer", 3 + k // 4, ("day", "night", "on_call")),
            ("director", 1, ("day",)),
        ],
        "hotel": [("clerk", 2, ("day", "night"))],
        "bank": [("teller", 2, ("day",))],
        "airline": [("registrar", 1, ("day",)), ("clerk", 1, ("day",))],
        "border": [("border_officer", 4 + k // 3, ("day", "night", "day", "on_call"))],
        "telecom": [("intercept_operator", 2 + k // 3, ("day",)), ("director", 1, ("day",))],
        "ministry": [
            ("analyst", 1, ("day",)),
            ("director", 1, ("day",)),
            ("registrar", 1, ("day",)),
        ],
    }
    return rosters[kind]


def _staff(
    orgs: list[Org], population: list[Person], people: int, rng: random.Random, start: date
) -> list[Staff]:
    k = _scale(people)
    adults = [p for p in population if _ADULT_BORN[0] <= p.birth_date <= _ADULT_BORN[1]]
    slots = [
        (org, role, shifts[i % len(shifts)], i + 1)
        for org in orgs
        for role, count, shifts in _roster(org.kind, k)
        for i in range(count)
    ]
    # The first police station also employs the custodian (data-protection officer).
    slots.append((orgs[0], "custodian", "day", 1))
    if len(adults) < len(slots):
        raise InputError(f"a simulated world of {people} people has too few adults to staff it")
    persons = rng.sample(adults, len(slots))
    return [
        Staff(
            accessor=f"{org.org}.{role}-{n}",
            org=org.org,
            role=role,
            person=person,
            shift=shift,
            active_from=date.fromordinal(start.toordinal() - rng.randint(60, 6000)),
        )
        for (org, role, shift, n), person in zip(slots, persons, strict=True)
    ]


def _plan_misuse(
    staff: list[Staff], population: list[Person], people: int, rng: random.Random
) -> tuple[list[Staff], list[Person], tuple[tuple[str, str], ...]]:
    """Choose the misusers (distinct accessors); give the family and neighbour snoops a
    household and flatmates to snoop on."""
    instances = 1 if people < 50_000 else 2
    used: set[str] = set()
    plan: list[tuple[str, str]] = []
    for kind in MISUSE_KINDS:
        for _ in range(instances):
            chosen = _choose(staff, kind, used, rng)
            if chosen is None:
                break
            used.add(chosen.accessor)
            plan.append((kind, chosen.accessor))
    staff, population = list(staff), list(population)
    for kind, accessor in plan:
        index = next(i for i, s in enumerate(staff) if s.accessor == accessor)
        if kind == "family_lookup":
            staff[index] = _give_household(staff, index, population, rng)
        elif kind == "neighbour_lookup":
            _give_flatmates(staff[index].person, population, staff, rng)
    return staff, population, tuple(plan)


def _choose(staff: list[Staff], kind: str, used: set[str], rng: random.Random) -> Staff | None:
    roles, shift = _MISUSE_ROLES[kind]
    for role in roles:
        free = [s for s in staff if s.role == role and s.accessor not in used]
        if kind == "official_targeting":
            free = [s for s in free if s.org == "ministry"]
        preferred = [s for s in free if shift is None or s.shift == shift]
        if preferred or free:
            return rng.choice(preferred or free)
    return None


def _households(population: list[Person]) -> dict[tuple[str, str], list[Person]]:
    groups: dict[tuple[str, str], list[Person]] = {}
    for person in population:
        groups.setdefault((surname(person), person.address), []).append(person)
    return groups


def _give_household(
    staff: list[Staff], index: int, population: list[Person], rng: random.Random
) -> Staff:
    """Return the staff member at ``index``, working as a person who lives with family."""
    taken = {s.person.id_number for s in staff}
    groups = _households(population)
    current = staff[index].person
    if len(groups[(surname(current), current.address)]) > 1:
        return staff[index]
    candidates = [
        p
        for members in groups.values()
        if len(members) > 1
        for p in members
        if p.id_number not in taken and _ADULT_BORN[0] <= p.birth_date <= _ADULT_BORN[1]
    ]
    if not candidates:
        return staff[index]
    return replace(staff[index], person=rng.choice(candidates))


def _give_flatmates(
    host: Person, population: list[Person], staff: list[Staff], rng: random.Random
) -> None:
    """Move two or three people of other surnames into ``host``'s building (flatmates)."""
    taken = {s.person.id_number for s in staff}
    # Leave staff households alone (a family snoop's family must stay at home).
    homes = {s.person.address for s in staff}
    wanted = rng.randint(2, 3)
    for _ in range(50 * wanted):
        if wanted == 0:
            return
        i = rng.randrange(len(population))
        other = population[i]
        if other.id_number in taken or surname(other) == surname(host):
            continue
        if other.address in homes:
            continue
        population[i] = replace(other, address=host.address)
        taken.add(other.id_number)
        wanted -= 1


def _canaries(people: int, seed: int, taken: set[str]) -> list[Person]:
    count = min(200, max(5, people // 5000))
    drawn = generate_people(count + 10, seed=_derived(seed, "canaries"))
    return [p for p in drawn if p.id_number not in taken][:count]


def _derived(seed: int, label: str) -> int:
    return random.Random(f"custodes.sim.{label}:{seed}").getrandbits(63)  # noqa: S311


def _relations(
    orgs: list[Org], population: list[Person], erasure: str, rng: random.Random
) -> dict[str, tuple[str, ...]]:
    pool = [p.id_number for p in population if p.id_number != erasure]
    relations: dict[str, set[str]] = {o.org: set() for o in orgs if o.kind in _RELATION_SIZES}
    banks = [o.org for o in orgs if o.kind == "bank"]
    for id_number in pool:
        draw = rng.random()
        if draw < 0.7:
            for bank in rng.sample(banks, 1 if draw < 0.55 else 2):
                relations[bank].add(id_number)
    for org in orgs:
        size = _RELATION_SIZES.get(org.kind, 0)
        if size:
            relations[org.org].update(rng.sample(pool, min(size, len(pool) // 2)))
    return {org: tuple(sorted(ids)) for org, ids in relations.items()}


# How many guests (hotel), passengers (airline) or travellers (border post) an org deals with
# over the month; banks draw their customers from the whole population instead.
_RELATION_SIZES = {"hotel": 400, "airline": 600, "border": 500, "bank": 0}


def subject_rows(vault: Vault, world: World) -> list[dict[str, object]]:
    """Return one ``subjects.jsonl`` row per subject of the world (people and canaries),
    sorted by pseudonym; surnames and addresses appear only as keyed tokens."""
    related: dict[str, list[str]] = {}
    for org, ids in sorted(world.relations.items()):
        for id_number in ids:
            related.setdefault(id_number, []).append(org)
    employer = world.employer
    canaries = {p.id_number for p in world.canaries}
    rows: list[dict[str, object]] = []
    for person in (*world.people, *world.canaries):
        rows.append(
            {
                "subject": vault.pseudonym(person.id_number),
                "surname_token": vault.keyed_token("surname", surname(person)),
                "address_token": vault.keyed_token("address", person.address),
                "employer_org": employer.get(person.id_number),
                "protected": person.id_number in world.protected,
                "canary": person.id_number in canaries,
                "relations": sorted(related.get(person.id_number, ())),
            }
        )
    rows.sort(key=lambda row: str(row["subject"]))
    return rows


def accessor_rows(vault: Vault, world: World) -> list[dict[str, object]]:
    """Return one ``accessors.jsonl`` row per staff member, sorted by accessor id."""
    return [
        {
            "accessor": s.accessor,
            "org": s.org,
            "role": s.role,
            "surname_token": vault.keyed_token("surname", surname(s.person)),
            "address_token": vault.keyed_token("address", s.person.address),
            "active_from": s.active_from.isoformat(),
            "active_to": None if s.active_to is None else s.active_to.isoformat(),
        }
        for s in sorted(world.staff, key=lambda s: s.accessor)
    ]
