"""The injected misuse: the abuses of DESIGN.md §1, each carried out through the vault.

Each planner queues the misuse steps of one misuser over the simulated days; every step is one
vault call by the misuser and is tagged ``(kind, accessor)``, so the runner records the ledger
indexes it wrote as ground truth. Denied attempts are ledgered like everything else and are part
of the truth. What the misuse depends on at run time (the misuser's open case or warrant) is
looked up when the step runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from custodes.model import Access, Accessor
from custodes.sim import _records as rec
from custodes.sim._people import Person
from custodes.sim._runner import Runner
from custodes.sim._work import CASE_COLLECTIONS, IDENTITY_FIELDS, CaseState, Police, serve_customers
from custodes.sim.world import Staff, surname

__all__ = ["deactivate_leavers", "leave_day", "plan_misuse"]

Tag = tuple[str, str]
_SELLER_TEXT = "urgent: suspect about to flee the city, tracing contacts before the case is filed"
# (purpose, action, collection) tried by a clerk probing what the vault will give them.
_PROBES = (
    ("registration", "get", "identity"),
    ("registration", "get", "hotel_stays"),
    ("identity_check", "get", "identity"),
    ("customer_service", "get", "bank_deposits"),
    ("registration", "find", "identity"),
    ("statistics", "export", "hotel_stays"),
    ("criminal_investigation", "get", "flights"),
    ("lawful_intercept", "get", "phone_location"),
)
# What a role can read about anyone without a case (purpose, collections), and one more
# collection its snooping tries and is refused.
_PEEK: dict[str, tuple[str, tuple[str, ...]]] = {
    "teller": ("customer_service", ("identity", "bank_deposits")),
    "border_officer": ("border_control", ("identity", "border_crossings")),
    "duty_officer": ("identity_check", ("identity", "hotel_stays")),
    "supervisor": ("identity_check", ("identity", "hotel_stays")),
}


def leave_day(days: int) -> int:
    """The simulated day from which the departing employee no longer works."""
    return 1 if days == 1 else max(1, days - max(1, days // 6))


def plan_misuse(runner: Runner, police: Police, days: int) -> None:
    """Queue every planned misuse of the world over ``days`` days."""
    for kind, accessor in runner.world.misusers:
        staff = runner.world.member(accessor)
        note = _PLANNERS[kind](runner, police, staff, days, (kind, accessor))
        runner.notes[(kind, accessor)] = note


def deactivate_leavers(runner: Runner) -> None:
    """Deactivate the accessors who left during the simulation (at the current time)."""
    for accessor in sorted(runner.leaving):
        staff = runner.world.member(accessor)
        runner.vault.add_accessor(Accessor(staff.accessor, staff.org, staff.role, active=False))


def _days(runner: Runner, days: int, count: int, start: int = 0) -> list[int]:
    choices = list(range(start, days)) or [days - 1]
    return sorted(runner.rng.sample(choices, min(count, len(choices))))


def _strangers(runner: Runner, staff: Staff, count: int) -> list[Person]:
    """People ``staff``'s organization has no dealings with (and who are not staff)."""
    related = set(runner.world.relations.get(staff.org, ()))
    employer = runner.world.employer
    out: list[Person] = []
    for _ in range(100 * count):
        person = runner.rng.choice(runner.world.pool)
        if person.id_number in related or person.id_number in employer or person in out:
            continue
        if person.address == staff.person.address:
            continue
        out.append(person)
        if len(out) == count:
            return out
    # A tiny world may have too few strangers: then anyone who is not the misuser will do.
    others = [p for p in runner.world.pool if p != staff.person and p not in out]
    return out + runner.rng.sample(others, min(count - len(out), len(others)))


def _step(runner: Runner, at: datetime, call: Callable[[], object], tag: Tag) -> None:
    runner.schedule(at, "misuse", call, misuse=tag)


def _peek(runner: Runner, staff: Staff, person: Person, at: datetime, tag: Tag) -> None:
    """Queue what ``staff``'s role lets it read about ``person`` without a case, and one more."""
    purpose, collections = _PEEK[staff.role]
    access = runner.access(staff, purpose)
    for i, collection in enumerate(collections):
        call = runner.get(access, collection, person.id_number)
        _step(runner, at + timedelta(seconds=40 * i), call, tag)


# -- sellers ---------------------------------------------------------------------------------


def _seller(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    plain = r.access(staff, "criminal_investigation")
    glass = r.access(staff, "criminal_investigation", justification=_SELLER_TEXT)
    sold = 0
    on = _days(r, days, r.mix.seller_days)
    for day in on:
        at = r.in_shift(staff, day, misuse=True)
        for person in _strangers(r, staff, r.rng.randint(*r.mix.seller_people)):
            sold += 1
            _step(r, at, r.get(plain, "hotel_stays", person.id_number), tag)
            for i, collection in enumerate(CASE_COLLECTIONS):
                moment = at + timedelta(seconds=(i + 1) * r.rng.uniform(20, 60))
                _step(r, moment, r.get(glass, collection, person.id_number), tag)
            bank = r.get(glass, "bank_deposits", person.id_number)
            _step(r, at + timedelta(minutes=8), bank, tag)
            at += timedelta(minutes=r.rng.uniform(10, 30))
    return (
        f"investigator pulled the full histories of {sold} strangers on {len(on)} day(s) "
        "with break-glass and no case; refused without break-glass and for bank records"
    )


def _covered_seller(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    on = _days(r, days, 2)
    approver = r.rng.choice(r.world.staff_of(staff.org, "supervisor"))
    suspects = [p.id_number for p in r.rng.sample(r.world.pool, 2)]
    cover = CaseState(
        staff, (staff,), suspects, "criminal_investigation", CASE_COLLECTIONS, days + 100
    )
    opened = r.when(on[0], r.rng.uniform(540, 600))
    police.open(opened, cover, approver, timedelta(minutes=r.rng.uniform(20, 60)), tracked=False)
    sold = 0
    for day in on:
        at = r.when(day, r.rng.uniform(660, 720))
        strangers = _strangers(r, staff, r.rng.randint(*r.mix.covered_people))
        sold += len(strangers)
        ids = [p.id_number for p in strangers]
        police.add_subjects(at, cover, ids, approver, misuse=tag)
        moment = at + timedelta(hours=3, minutes=30)
        for subject in ids:
            for collection in CASE_COLLECTIONS:
                moment += timedelta(seconds=r.rng.uniform(20, 90))
                _step(r, moment, _case_read(r, staff, cover, collection, subject), tag)
    return (
        f"investigator added {sold} strangers to his own unrelated case, had it re-approved "
        "and pulled their full histories under it"
    )


def _case_read(
    runner: Runner, staff: Staff, case: CaseState, collection: str, subject: str
) -> Callable[[], object]:
    def run() -> object:
        if case.case_id is None:
            return None
        access = runner.access(staff, case.purpose, case.case_id)
        return runner.vault.get(access, collection, subject)

    return run


def _purpose_misuse(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    check = r.access(staff, "identity_check")
    investigate = r.access(staff, "criminal_investigation")
    on = _days(r, days, r.mix.purpose_days)
    tried = 0
    for n, day in enumerate(on):
        at = r.in_shift(staff, day, misuse=True)
        for person in _strangers(r, staff, r.rng.randint(*r.mix.purpose_people)):
            tried += 1
            subject = person.id_number
            every = [*IDENTITY_FIELDS, "address", "phone"]
            calls = [
                r.get(check, "identity", subject, every),
                r.get(check, "hotel_stays", subject),
                r.get(check, "flights", subject),
                r.get(check, "border_crossings", subject),
                r.get(check, "identity", subject),
            ]
            if n == 0:
                calls.insert(1, r.get(investigate, "hotel_stays", subject))
            for i, call in enumerate(calls):
                _step(r, at + timedelta(seconds=45 * i), call, tag)
            at += timedelta(minutes=r.rng.uniform(5, 20))
    return (
        f"duty officer used the identity-check purpose to try to read the full histories of "
        f"{tried} strangers on {len(on)} day(s); refused except for minimal identity"
    )


# -- snooping --------------------------------------------------------------------------------


def _snoop(
    runner: Runner, staff: Staff, days: int, tag: Tag, targets: list[Person], per_day: int
) -> int:
    """Peek at ``per_day`` of ``targets`` on a few days; return how many were looked at."""
    r = runner
    on = _days(r, days, 3 if len(targets) > per_day else 2)
    seen: set[str] = set()
    for day in on:
        at = r.in_shift(staff, day, misuse=True)
        for person in r.rng.sample(targets, min(per_day, len(targets))):
            seen.add(person.id_number)
            _peek(r, staff, person, at, tag)
            at += timedelta(minutes=r.rng.uniform(3, 15))
    return len(seen)


def _vip(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    seen = _snoop(runner, staff, days, tag, list(runner.world.celebrities), 2)
    return f"{staff.role} looked up {seen} public figures with no reason to"


def _family(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    me = staff.person
    family = [
        p
        for p in runner.world.people
        if p.address == me.address and surname(p) == surname(me) and p != me
    ]
    seen = _snoop(runner, staff, days, tag, family or _strangers(runner, staff, 2), 3)
    return f"{staff.role} looked up {seen} members of their own household"


def _neighbour(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    me = staff.person
    near = [p for p in runner.world.people if p.address == me.address and surname(p) != surname(me)]
    seen = _snoop(runner, staff, days, tag, near or _strangers(runner, staff, 2), 2)
    return f"{staff.role} looked up {seen} people living at their own address"


def _coworker(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    mates = [s.person for s in runner.world.staff_of(staff.org) if s != staff]
    chosen = runner.rng.sample(mates, min(len(mates), runner.rng.randint(3, 5)))
    seen = _snoop(runner, staff, days, tag, chosen, 2)
    return f"{staff.role} looked up {seen} colleagues of their own organization"


def _canary(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    purpose = _PEEK[staff.role][0]
    access = r.access(staff, purpose)
    touched: set[str] = set()
    for day in _days(r, days, 2):
        at = r.in_shift(staff, day, misuse=True)
        for person in r.rng.sample(r.world.canaries, r.rng.randint(1, 2)):
            touched.add(person.id_number)
            _step(r, at, r.get(access, "identity", person.id_number), tag)
            if purpose == "identity_check":
                find = r.find(access, "identity", "phone", person.phone)
                _step(r, at + timedelta(minutes=2), find, tag)
            at += timedelta(minutes=r.rng.uniform(5, 30))
    return f"{staff.role} read {len(touched)} canary records that no legitimate work touches"


def _official(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    officials = [
        s.person
        for s in r.world.staff
        if s.org != staff.org
        and r.world.org(s.org).kind in ("police", "border")
        and s.role in ("director", "supervisor", "investigator", "border_officer")
    ]
    targets = r.rng.sample(officials, min(len(officials), r.rng.randint(4, 6)))
    check = r.access(staff, "identity_check")
    investigate = r.access(staff, "criminal_investigation")
    on = _days(r, days, 3)
    for day in on:
        at = r.in_shift(staff, day, misuse=True)
        for person in r.rng.sample(targets, min(len(targets), r.rng.randint(1, 3))):
            subject = person.id_number
            calls = [
                r.get(check, "identity", subject),
                r.get(investigate, "hotel_stays", subject),
                r.get(investigate, "bank_deposits", subject),
                _open_case(r, investigate, subject),
            ]
            for i, call in enumerate(calls):
                _step(r, at + timedelta(seconds=50 * i), call, tag)
            at += timedelta(minutes=r.rng.uniform(10, 40))
    return (
        f"senior official tried to pull data on {len(targets)} officials of other "
        "organizations; no role is above the rules, so every attempt was refused"
    )


def _open_case(runner: Runner, access: Access, subject: str) -> Callable[[], object]:
    return lambda: runner.vault.open_case(access, [subject])


# -- volume ----------------------------------------------------------------------------------


def _bulk(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    day = _days(r, days, 1, start=1 if days > 1 else 0)[0]
    # Stolen credentials, used deep in the night (or late on a one-day run).
    at = r.when(day, r.rng.uniform(120, 200) if day > 0 else 1350)
    mix = r.mix
    count = min(mix.bulk_cap, max(60, len(r.world.pool) // mix.bulk_divisor))
    access = r.access(staff, "border_control")
    began = at
    for person in r.rng.sample(r.world.pool, count):
        _step(r, at, r.get(access, "identity", person.id_number), tag)
        _step(
            r, at + timedelta(seconds=1), r.get(access, "border_crossings", person.id_number), tag
        )
        at += timedelta(seconds=r.rng.uniform(*mix.bulk_gap))
    minutes = round((at - began).total_seconds() / 60)
    return (
        f"stolen {staff.role} credentials used at night to pull {count} people's identities and "
        f"crossings in {minutes} minutes"
    )


def _enumeration(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    access = r.access(staff, _PEEK[staff.role][0])
    known = r.world.by_id
    phones = {p.phone for p in known.values()}
    tried = 0
    for day in _days(r, days, 2):
        at = r.in_shift(staff, day, misuse=True)
        for _ in range(r.rng.randint(*r.mix.enumeration_finds)):
            tried += 1
            if r.rng.random() < 0.9:
                value = rec.random_id_number(r.rng)
                while value in known:
                    value = rec.random_id_number(r.rng)
                call = r.find(access, "identity", "id_number", value)
            else:
                value = rec.random_phone(r.rng)
                while value in phones:
                    value = rec.random_phone(r.rng)
                call = r.find(access, "identity", "phone", value)
            _step(r, at, call, tag)
            at += timedelta(seconds=r.rng.uniform(20, 50))
    return f"{staff.role} ran {tried} lookups of made-up ID and phone numbers, finding nobody"


def _low_and_slow(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    on = [d for d in range(days) if r.weekday(d) != 6] or [0]
    total = 0
    for day in on:
        people = [p.id_number for p in _strangers(r, staff, r.rng.randint(*r.mix.low_slow_people))]
        total += len(people)
        serve_customers(r, staff, day, len(people), people, misuse=tag, kind="misuse")
    return (
        f"teller read the bank records of {total} people who are not the bank's customers, "
        f"a few a day over {len(on)} day(s)"
    )


def _departing(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    leaves = leave_day(days)
    r.leaving[staff.accessor] = leaves
    index = r.world.staff.index(staff)
    r.world.staff[index] = _left(staff, r.first_day + timedelta(days=leaves))
    customers = r.world.relations[staff.org]
    pulled = 0
    for day in range(max(0, leaves - 3), min(leaves, days)):
        count = r.rng.randint(*r.mix.departing_people)
        pulled += count
        chosen = r.rng.sample(customers, min(count, len(customers)))
        serve_customers(r, staff, day, len(chosen), chosen, misuse=tag, kind="misuse")
    return (
        f"teller pulled {pulled} customers' bank records in the last days before leaving "
        f"on {r.first_day + timedelta(days=leaves)}"
    )


def _left(staff: Staff, on: date) -> Staff:
    return replace(staff, active_to=on)


# -- refused ---------------------------------------------------------------------------------


def _stalking(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    target = r.rng.choice(r.world.pool)
    plain = r.access(staff, "lawful_intercept")
    on = _days(r, days, max(1, round(days * r.mix.stalking_share)))
    for n, day in enumerate(on):
        at = r.in_shift(staff, day, misuse=True)
        for i in range(r.rng.randint(1, 3)):
            if n == 0 and i == 0:
                call = _under_own_warrant(r, police, staff, target.id_number)
            elif n == 1 and i == 0:
                call = r.find(plain, "phone_location", "phone", target.phone)
            else:
                call = r.get(plain, "phone_location", target.id_number)
            _step(r, at, call, tag)
            at += timedelta(minutes=r.rng.uniform(20, 120))
    return (
        f"intercept operator tried to locate one person's phone without a warrant on "
        f"{len(on)} day(s); refused every time"
    )


def _under_own_warrant(
    runner: Runner, police: Police, staff: Staff, subject: str
) -> Callable[[], object]:
    """A location read of ``subject`` under the operator's own (unrelated) warrant, if any."""

    def run() -> object:
        warrants = [c for c in police.warrants if c.usable_by(staff)]
        case = warrants[-1].case_id if warrants else None
        access = runner.access(staff, "lawful_intercept", case)
        return runner.vault.get(access, "phone_location", subject)

    return run


def _probing(runner: Runner, police: Police, staff: Staff, days: int, tag: Tag) -> str:
    r = runner
    tried = 0
    for day in _days(r, days, 3):
        at = r.in_shift(staff, day, misuse=True)
        for _ in range(r.rng.randint(*r.mix.probes)):
            purpose, action, collection = _PROBES[tried % len(_PROBES)]
            tried += 1
            person = r.rng.choice(r.world.pool)
            access = r.access(staff, purpose)
            if action == "find":
                call = r.find(access, collection, "phone", person.phone)
            elif action == "export":
                call = _export(r, access, collection)
            else:
                call = r.get(access, collection, person.id_number)
            _step(r, at, call, tag)
            at += timedelta(minutes=r.rng.uniform(1, 10))
    return f"{staff.role} probed {tried} times across purposes and collections; all refused"


def _export(runner: Runner, access: Access, collection: str) -> Callable[[], object]:
    return lambda: runner.vault.export(access, collection)


_Planner = Callable[[Runner, Police, Staff, int, Tag], str]
_PLANNERS: dict[str, _Planner] = {
    "seller": _seller,
    "covered_seller": _covered_seller,
    "purpose_misuse": _purpose_misuse,
    "vip_snooping": _vip,
    "family_lookup": _family,
    "neighbour_lookup": _neighbour,
    "coworker_lookup": _coworker,
    "official_targeting": _official,
    "bulk_exfiltration": _bulk,
    "enumeration": _enumeration,
    "low_and_slow": _low_and_slow,
    "stalking": _stalking,
    "canary_touch": _canary,
    "departing_employee": _departing,
    "denied_probing": _probing,
}
