"""Ordinary work, one simulated day at a time: what each role does on its shift.

Every step is one vault call by one staff member at a moment of their shift; what a step reads
(which case, which subject) is decided when it runs, from the state earlier steps left (cases
opened, approved, closed). Some benign noise is part of ordinary work: reads tried before a case
is approved, a field asked for that the purpose does not cover, night and on-call checks at odd
hours, cases that gain subjects, rush days at ports, warrants read by the colleague they are also
assigned to and by an operator not assigned to them (covering a shift), one justified
break-glass read. How much of each is set by the scenario mix (``custodes.sim._mix``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from custodes.sim import _records as rec
from custodes.sim._people import Person
from custodes.sim._runner import SHIFTS, Runner
from custodes.sim.world import Staff

__all__ = ["CASE_COLLECTIONS", "CaseState", "Police", "plan_day"]

CASE_COLLECTIONS = (
    "identity",
    "hotel_stays",
    "flights",
    "border_crossings",
    "rentals",
    "police_incidents",
)
IDENTITY_FIELDS = ["name", "id_number", "birth_date"]
_EMERGENCY = (
    "missing child reported at night; checking where the suspect stayed before the case is filed"
)
_WARRANT_HOURS = 48


@dataclass(eq=False)
class CaseState:
    """A case as the simulation tracks it: who works it and where it stands."""

    owner: Staff
    team: tuple[Staff, ...]
    subjects: list[str]
    purpose: str
    collections: tuple[str, ...]
    close_day: int
    expires: datetime | None = None
    case_id: str | None = None
    approved: bool = False
    closed: bool = False

    def usable_by(self, staff: Staff) -> bool:
        """Whether the case exists, is open and is assigned to ``staff``."""
        return self.case_id is not None and not self.closed and staff in self.team


@dataclass
class Police:
    """The cases of every station, the operator's warrants and the ministry's studies."""

    runner: Runner
    cases: list[CaseState] = field(default_factory=list)
    warrants: list[CaseState] = field(default_factory=list)

    def mine(self, staff: Staff) -> list[CaseState]:
        """Open cases assigned to ``staff`` (the ones it may read under)."""
        return [c for c in self.cases if c.usable_by(staff)]

    def owned(self, staff: Staff) -> list[CaseState]:
        """Cases ``staff`` opened (or queued) and has not closed."""
        return [c for c in self.cases if c.owner == staff and not c.closed]

    def open(
        self,
        at: datetime,
        case: CaseState,
        approver: Staff,
        delay: timedelta,
        *,
        tracked: bool = True,
        misuse: tuple[str, str] | None = None,
    ) -> None:
        """Queue the opening of ``case`` at ``at`` and its approval ``delay`` later.

        An untracked case is not offered to ordinary reads (a misuser's cover case).
        """
        r = self.runner
        if tracked:
            self.cases.append(case)

        def run() -> None:
            ttl = None if case.expires is None else case.expires - r.clock.now
            opened = r.vault.open_case(
                r.access(case.owner, case.purpose),
                case.subjects,
                assigned=[s.accessor for s in case.team],
                ttl=ttl,
            )
            case.case_id = opened.case_id
            r.cases += 1

        r.schedule(at, "case_open", run, misuse=misuse)
        self.approve(at + delay, case, approver)

    def approve(self, at: datetime, case: CaseState, approver: Staff) -> None:
        """Queue the approval of ``case`` by ``approver`` (a second person)."""
        r = self.runner

        def run() -> None:
            if case.case_id is None or case.closed or case.approved:
                return
            r.vault.approve_case(r.access(approver, None), case.case_id)
            case.approved = True

        r.schedule(at, "case_approve", run)

    def add_subjects(
        self,
        at: datetime,
        case: CaseState,
        subjects: list[str],
        approver: Staff,
        *,
        misuse: tuple[str, str] | None = None,
    ) -> None:
        """Queue adding subjects to ``case``, and its approval again 30 minutes to 3 h later."""
        r = self.runner

        def run() -> None:
            new = [s for s in subjects if s not in case.subjects]
            if case.case_id is None or case.closed or not new:
                return
            r.vault.add_case_subjects(r.access(case.owner, case.purpose), case.case_id, new)
            case.subjects.extend(new)
            case.approved = False

        r.schedule(at, "case_add_subjects", run, misuse=misuse)
        self.approve(at + timedelta(minutes=r.rng.uniform(30, 180)), case, approver)

    def close(self, at: datetime, case: CaseState) -> None:
        """Queue the closing of ``case`` by its owner."""
        r = self.runner

        def run() -> None:
            if case.case_id is None or case.closed:
                return
            r.vault.close_case(r.access(case.owner, case.purpose), case.case_id)
            case.closed = True

        r.schedule(at, "case_close", run)


def plan_day(runner: Runner, police: Police, day: int, days: int) -> None:
    """Queue the ordinary work of every active staff member on ``day``."""
    for staff in runner.world.staff:
        leaves = runner.leaving.get(staff.accessor)
        if leaves is not None and day >= leaves:
            continue
        plan = _PLANS.get((runner.world.org(staff.org).kind, staff.role))
        if plan is not None:
            plan(runner, police, staff, day)
    if day == min(days - 1, 8):
        _study(runner, police, day)
    if day == days // 2:
        _erasure(runner, police, day)
    if day == min(days - 1, 5):
        _emergency(runner, day)


def _times(runner: Runner, staff: Staff, day: int, count: int) -> list[datetime]:
    rng = runner.rng
    if staff.shift == "on_call":
        # A few calls at odd hours: before six in the morning or late in the evening.
        minutes = [rng.choice((rng.uniform(0, 360), rng.uniform(1260, 1440))) for _ in range(count)]
    else:
        lo, hi = SHIFTS[staff.shift]
        minutes = [rng.uniform(lo, hi) for _ in range(count)]
    return [runner.when(day, m) for m in sorted(minutes)]


def _someone(runner: Runner) -> Person:
    return runner.rng.choice(runner.world.pool)


def _related(runner: Runner, org: str) -> str:
    return runner.rng.choice(runner.world.relations[org])


# -- police ----------------------------------------------------------------------------------


def identity_checks(runner: Runner, staff: Staff, day: int, count: int) -> None:
    """Queue ``count`` identity checks (a get, or a find by ID number or phone)."""
    r = runner
    access = r.access(staff, "identity_check")
    for at in _times(r, staff, day, count):
        person = _someone(r)
        draw = r.rng.random()
        if draw < 0.03:
            # Asking for a field the purpose does not cover: refused (benign noise).
            fields = [*IDENTITY_FIELDS, "address"]
            call = r.get(access, "identity", person.id_number, fields)
        elif draw < 0.72:
            call = r.get(access, "identity", person.id_number)
        elif draw < 0.92:
            call = r.find(access, "identity", "id_number", person.id_number)
        else:
            call = r.find(access, "identity", "phone", person.phone)
        r.schedule(at, "identity_check", call)


def _duty_officer(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    counts = runner.mix.duty_checks[staff.shift]
    identity_checks(runner, staff, day, runner.rng.randint(*counts))


def _supervisor(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    if runner.weekday(day) < 5:
        identity_checks(runner, staff, day, runner.rng.randint(2, 6))


def _investigator(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    weekend = r.weekday(day) >= 5
    if weekend and (staff.shift != "on_call" or r.rng.random() < 0.5):
        return
    _maybe_open_case(r, police, staff, day)
    reader = _case_reader(r, police, staff)
    for _ in range(r.rng.randint(4, 10)):
        minute = r.rng.uniform(1260, 1440) if weekend else r.rng.uniform(540, 1080)
        r.schedule(r.when(day, minute), "case_read", reader)
    approvers = r.world.staff_of(staff.org, "supervisor")
    for case in police.owned(staff):
        if case.close_day <= day:
            police.close(r.when(day, r.rng.uniform(960, 1080)), case)
        elif (
            case.approved
            and case.collections == CASE_COLLECTIONS
            and r.rng.random() < r.mix.case_growth
        ):
            at = r.when(day, r.rng.uniform(600, 900))
            lo, hi = r.mix.case_growth_size
            count = lo if lo == hi else r.rng.randint(lo, hi)
            new = [_someone(r).id_number for _ in range(count)]
            police.add_subjects(at, case, new, r.rng.choice(approvers))


def _maybe_open_case(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    owned = police.owned(staff)
    at = r.when(day, r.rng.uniform(540, 660))
    delay = timedelta(minutes=r.rng.uniform(15, 120))
    ordinary = [c for c in owned if c.collections == CASE_COLLECTIONS and c.approved]
    if len(owned) < 2 and r.rng.random() < (0.6 if not owned else 0.3):
        mates = [s for s in r.world.staff_of(staff.org, "investigator") if s != staff]
        team = (staff,) if not mates or r.rng.random() < 0.7 else (staff, r.rng.choice(mates))
        subjects = [p.id_number for p in r.rng.sample(r.world.pool, r.rng.randint(1, 3))]
        case = CaseState(
            staff,
            team,
            subjects,
            "criminal_investigation",
            CASE_COLLECTIONS,
            day + r.rng.randint(4, 12),
        )
        police.open(at, case, r.rng.choice(r.world.staff_of(staff.org, "supervisor")), delay)
    elif ordinary and r.rng.random() < 0.12:
        # Following the money: bank records need a case approved by the director.
        base = r.rng.choice(ordinary)
        subjects = r.rng.sample(base.subjects, r.rng.randint(1, len(base.subjects)))
        case = CaseState(
            staff,
            base.team,
            subjects,
            "criminal_investigation",
            ("bank_deposits",),
            day + r.rng.randint(2, 6),
        )
        police.open(at, case, r.world.staff_of(staff.org, "director")[0], delay)


def _case_reader(runner: Runner, police: Police, staff: Staff) -> Callable[[], object]:
    r = runner

    def run() -> object:
        cases = police.mine(staff)
        if r.live.random() < 0.92:
            # Mostly under approved cases; now and then too early (refused: benign noise).
            cases = [c for c in cases if c.approved]
        if not cases:
            return None
        case = r.live.choice(cases)
        subject = r.live.choice(case.subjects)
        collection = r.live.choice(case.collections)
        access = r.access(staff, case.purpose, case.case_id)
        if collection == "identity" and r.live.random() < 0.2:
            phone = r.world.by_id[subject].phone
            return r.vault.find(access, "identity", "phone", phone)
        return r.vault.get(access, collection, subject)

    return run


def _emergency(runner: Runner, day: int) -> None:
    """One justified break-glass read at night by an on-call investigator (benign)."""
    r = runner
    on_call = [s for s in r.world.staff if s.role == "investigator" and s.shift == "on_call"]
    if not on_call:
        return
    staff = r.rng.choice(on_call)
    if r.leaving.get(staff.accessor, day + 1) <= day:
        return
    access = r.access(staff, "criminal_investigation", justification=_EMERGENCY)
    subject = _someone(r).id_number
    at = r.when(day, r.rng.uniform(1380, 1430))
    r.schedule(at, "break_glass", r.get(access, "identity", subject))
    r.schedule(at + timedelta(minutes=2), "break_glass", r.get(access, "hotel_stays", subject))


def _erasure(runner: Runner, police: Police, day: int) -> None:
    """The custodian erases one subject under a case the director approved."""
    r = runner
    custodian = next((s for s in r.world.staff if s.role == "custodian"), None)
    if custodian is None:
        return
    director = r.world.staff_of(custodian.org, "director")[0]
    case = CaseState(custodian, (custodian,), [r.world.erasure], "erasure", (), day + 1)
    at = r.when(day, r.rng.uniform(600, 660))
    police.open(at, case, director, timedelta(minutes=r.rng.uniform(30, 90)), tracked=False)

    def shred() -> object:
        if case.case_id is None or not case.approved:
            return None
        return r.vault.shred(r.access(custodian, "erasure", case.case_id), r.world.erasure)

    r.schedule(at + timedelta(hours=2), "erasure", shred)
    police.close(at + timedelta(hours=3), case)


# -- telecom and ministry --------------------------------------------------------------------


def _intercept_operator(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    if r.weekday(day) >= 5 or r.rng.random() >= 0.3:
        return
    colleagues = [s for s in r.world.staff_of(staff.org, staff.role) if s != staff]
    team = (staff,) if not colleagues or r.rng.random() < 0.5 else (staff, r.rng.choice(colleagues))
    at = r.when(day, r.rng.uniform(540, 900))
    case = CaseState(
        staff,
        team,
        [_someone(r).id_number],
        "lawful_intercept",
        ("phone_location",),
        day + 3,
        expires=at + timedelta(hours=_WARRANT_HOURS),
    )
    delay = timedelta(minutes=r.rng.uniform(20, 90))
    police.open(at, case, r.world.staff_of(staff.org, "director")[0], delay, tracked=False)
    approved = at + delay
    hours = [r.rng.uniform(0.2, 1.0), r.rng.uniform(5, 8), r.rng.uniform(18, 22)]
    if r.rng.random() < 0.5:
        hours.append(r.rng.uniform(28, 34))
    for h in hours:
        r.schedule(approved + timedelta(hours=h), "location_read", _warrant_read(r, case, staff))
    if len(team) > 1:
        at = approved + timedelta(hours=r.rng.uniform(8, 12))
        r.schedule(at, "location_read", _warrant_read(r, case, team[1]))
    # The next day, an operator the warrant is not assigned to covers the owner's shift and
    # takes its location fix (the policy lets operators execute any warrant of their operator).
    cover = [s for s in colleagues if s not in team]
    if cover and r.noise.random() < r.mix.cover_read:
        reader = r.noise.choice(cover)
        for _ in range(r.noise.randint(1, 2)):
            at = approved + timedelta(hours=r.noise.uniform(20, 27))
            r.schedule(at, "location_cover_read", _warrant_read(r, case, reader))
    police.warrants.append(case)


def _warrant_read(runner: Runner, case: CaseState, reader: Staff) -> Callable[[], object]:
    def run() -> object:
        if case.case_id is None or not case.approved:
            return None
        access = runner.access(reader, "lawful_intercept", case.case_id)
        return runner.vault.get(access, "phone_location", case.subjects[0])

    return run


def _study(runner: Runner, police: Police, day: int) -> None:
    """The ministry's analyst exports flights for statistics under an approved study case."""
    r = runner
    analyst = next((s for s in r.world.staff if s.role == "analyst"), None)
    if analyst is None:
        return
    director = r.world.staff_of(analyst.org, "director")[0]
    cohort = [p.id_number for p in r.rng.sample(r.world.pool, 5)]
    case = CaseState(analyst, (analyst,), cohort, "statistics", ("flights",), day + 1)
    at = r.when(day, r.rng.uniform(570, 630))
    police.open(at, case, director, timedelta(minutes=r.rng.uniform(30, 90)), tracked=False)

    def export() -> object:
        if case.case_id is None or not case.approved:
            return None
        # Like every export, it is fingerprinted for its recipient (canary rows, spellings).
        from custodes.forensics import export_fingerprinted  # forensics builds on the simulator

        access = r.access(analyst, "statistics", case.case_id)
        done = export_fingerprinted(r.vault, access, "flights", rng=r.forensics)
        r.exports.append(done)
        return done

    r.schedule(at + timedelta(hours=2), "statistics_export", export)
    police.close(at + timedelta(hours=3), case)


# -- hotels, airlines, ports, banks ----------------------------------------------------------


def _hotel_clerk(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    org = r.world.org(staff.org)
    access = r.access(staff, "registration")
    lo, hi, count = (720, 1380, r.rng.randint(6, 14))
    if staff.shift == "night":
        lo, hi, count = (1200, 1680, r.rng.randint(2, 5))
    for _ in range(count):
        size = 1 if r.rng.random() < 0.8 else r.rng.randint(2, 3)
        guests = [_related(r, staff.org) for _ in range(size)]
        room = f"{r.rng.randint(2, 25)}{r.rng.randint(1, 40):02d}"

        def check_in(guests: list[str] = guests, room: str = room) -> None:
            now = r.local(r.clock.now)
            items = [(g, rec.hotel_stay(org, r.live, now, room)) for g in dict.fromkeys(guests)]
            r.put_many(access, "hotel_stays", items)

        r.schedule(r.when(day, r.rng.uniform(lo, hi)), "hotel_check_in", check_in)


def _airline_clerk(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    org = r.world.org(staff.org)
    access = r.access(staff, "registration")
    for at in _times(r, staff, day, r.rng.randint(5, 12)):
        passenger = _related(r, staff.org)

        def book(passenger: str = passenger) -> None:
            now = r.local(r.clock.now)
            departs = (now + timedelta(days=r.live.randint(1, 30))).replace(
                hour=r.live.randint(6, 22), minute=r.live.choice((0, 15, 30, 45)), second=0
            )
            number = rec.flight_number(org, r.live)
            record = rec.flight(org, r.live, departs, number, rec.route(r.live))
            r.put_many(access, "flights", [(passenger, record)])

        r.schedule(at, "flight_booking", book)


def _airline_registrar(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    org = r.world.org(staff.org)
    access = r.access(staff, "registration")
    for _ in range(r.rng.randint(1, 2)):
        passengers = sorted(set(r.rng.sample(r.world.relations[staff.org], r.rng.randint(10, 25))))

        def manifest(passengers: list[str] = passengers) -> None:
            now = r.local(r.clock.now)
            departs = (now + timedelta(days=r.live.randint(1, 3))).replace(
                hour=r.live.randint(6, 22), minute=r.live.choice((0, 15, 30, 45)), second=0
            )
            number, route = rec.flight_number(org, r.live), rec.route(r.live)
            items = [(p, rec.flight(org, r.live, departs, number, route)) for p in passengers]
            r.put_many(access, "flights", items)

        r.schedule(r.when(day, r.rng.uniform(360, 1320)), "flight_manifest", manifest)


def _border_officer(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    counts = r.mix.border_checks[staff.shift]
    if staff.shift == "day":
        # Ports are busiest in the morning and the evening.
        minutes = [_port_minute(r.rng) for _ in range(r.rng.randint(*counts))]
        times = [r.when(day, m) for m in minutes]
    else:
        times = _times(r, staff, day, r.rng.randint(*counts))
    _travellers(r, r.rng, staff, times)
    if staff.shift == "day" and _rush(r, staff.org, day):
        # A rush day (holidays, a cancelled ferry): every officer of the port sees 1.8x.
        extra = round(0.8 * len(times))
        _travellers(r, r.noise, staff, [r.when(day, _port_minute(r.noise)) for _ in range(extra)])


def _port_minute(rng: random.Random) -> float:
    return rng.choice((rng.uniform(420, 600), rng.uniform(1020, 1200), rng.uniform(480, 1200)))


def _rush(runner: Runner, org: str, day: int) -> bool:
    key = (org, day)
    if key not in runner.rushes:
        runner.rushes[key] = runner.noise.random() < runner.mix.port_rush
    return runner.rushes[key]


def _travellers(runner: Runner, rng: random.Random, staff: Staff, times: list[datetime]) -> None:
    r = runner
    port = r.world.org(staff.org)
    access = r.access(staff, "border_control")
    for at in times:
        person = r.world.by_id[rng.choice(r.world.relations[staff.org])]
        r.schedule(at, "border_crossing", r.get(access, "identity", person.id_number))

        def cross(person: Person = person) -> None:
            record = rec.crossing(port, person, r.live, r.local(r.clock.now))
            r.put_many(access, "border_crossings", [(person.id_number, record)])

        r.schedule(at + timedelta(minutes=rng.uniform(1, 3)), "border_crossing", cross)
        if rng.random() < 0.3:
            history = r.get(access, "border_crossings", person.id_number)
            r.schedule(at + timedelta(seconds=30), "border_crossing", history)


def _teller(runner: Runner, police: Police, staff: Staff, day: int) -> None:
    r = runner
    if r.weekday(day) == 6:
        return
    serve_customers(
        r, staff, day, r.rng.randint(6, 12), [_related(r, staff.org) for _ in range(12)]
    )


def serve_customers(
    runner: Runner,
    staff: Staff,
    day: int,
    count: int,
    customers: list[str],
    *,
    misuse: tuple[str, str] | None = None,
    kind: str = "bank_service",
) -> None:
    """Queue ``count`` counter services (identity, then deposits) of the given people."""
    r = runner
    access = r.access(staff, "customer_service")
    lo, hi = 540, 1020
    for subject in customers[:count]:
        at = r.when(day, r.rng.uniform(lo, hi))
        r.schedule(at, kind, r.get(access, "identity", subject), misuse=misuse)
        later = at + timedelta(minutes=r.rng.uniform(1, 4))
        r.schedule(later, kind, r.get(access, "bank_deposits", subject), misuse=misuse)


_Plan = Callable[[Runner, Police, Staff, int], None]
_PLANS: dict[tuple[str, str], _Plan] = {
    ("police", "duty_officer"): _duty_officer,
    ("police", "supervisor"): _supervisor,
    ("police", "investigator"): _investigator,
    ("telecom", "intercept_operator"): _intercept_operator,
    ("hotel", "clerk"): _hotel_clerk,
    ("airline", "clerk"): _airline_clerk,
    ("airline", "registrar"): _airline_registrar,
    ("border", "border_officer"): _border_officer,
    ("bank", "teller"): _teller,
}
