"""A small hand-built world for detector unit tests: a police station, two banks, a border
post and a ministry, with notable subjects (canary, public figure, official, colleague, household,
flatmate) and a few days of routine work that teaches the peer baselines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from custodes.detect import (
    AccessorInfo,
    Baseline,
    CaseInfo,
    Context,
    Detector,
    Directory,
    Event,
    Pipeline,
    SubjectInfo,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC).timestamp()  # 09:00 in Shanghai
HOUR = 3600.0
DAY = 86400.0
PLAIN = [f"s{i:03d}" for i in range(400)]
CUSTOMERS = {"bank-1": set(PLAIN[:200]), "bank-2": set(PLAIN[200:]), "border-1": set(PLAIN[200:])}

ACCESSORS = [
    ("duty-1", "police-1", "duty_officer"),
    ("duty-2", "police-1", "duty_officer"),
    ("duty-3", "police-2", "duty_officer"),
    ("teller-1", "bank-1", "teller"),
    ("teller-2", "bank-1", "teller"),
    ("teller-3", "bank-2", "teller"),
    ("border-1", "border-1", "border_officer"),
    ("border-2", "border-1", "border_officer"),
    ("border-3", "border-1", "border_officer"),
    ("inv-1", "police-1", "investigator"),
    ("inv-2", "police-1", "investigator"),
    ("director-1", "ministry", "director"),
    ("clerk-1", "hotel-1", "clerk"),
    ("clerk-2", "hotel-1", "clerk"),
]


def subject(name: str, **kw: object) -> SubjectInfo:
    values: dict[str, object] = {
        "subject": name,
        "surname_token": f"sur-{name}",
        "address_token": f"addr-{name}",
        "employer_org": None,
        "protected": False,
        "canary": False,
        "relations": frozenset(o for o, ids in CUSTOMERS.items() if name in ids),
    }
    values.update(kw)
    return SubjectInfo(**values)  # type: ignore[arg-type]


def directory(
    *, active_to: dict[str, float] | None = None, cases: Sequence[CaseInfo] = ()
) -> Directory:
    active_to = active_to or {}
    accessors = {
        a: AccessorInfo(a, org, role, f"sur-{a}", f"addr-{a}", None, active_to.get(a))
        for a, org, role in ACCESSORS
    }
    subjects = {s: subject(s) for s in PLAIN}
    special = [
        subject("canary", canary=True),
        subject("vip", protected=True),
        subject("official-1", protected=True, employer_org="police-2"),
        subject("official-2", protected=True, employer_org="border-1"),
        subject("mate-1", employer_org="police-1"),
        subject("mate-2", employer_org="police-1"),
        subject("kin-1", surname_token="sur-teller-1", address_token="addr-teller-1"),
        subject("kin-2", surname_token="sur-duty-1", address_token="addr-duty-1"),
        subject("flat-1", address_token="addr-duty-1"),
        subject("flat-2", address_token="addr-duty-1"),
    ]
    subjects.update({s.subject: s for s in special})
    return Directory(accessors, subjects, {c.case: c for c in cases})


_ORG = {a: (org, role) for a, org, role in ACCESSORS}


def ev(
    accessor: str,
    subject: str | None,
    *,
    at: float = 0.0,
    action: str = "read",
    collection: str | None = "identity",
    purpose: str | None = None,
    case: str | None = None,
    allowed: bool = True,
    count: int = 1,
    glass: bool = False,
) -> Event:
    """One event ``at`` seconds after T0 (indexes are filled in by :func:`log`)."""
    org, role = _ORG[accessor]
    default = {
        "duty_officer": "identity_check",
        "teller": "customer_service",
        "border_officer": "border_control",
        "investigator": "criminal_investigation",
    }.get(role, "registration")
    return Event(
        0, T0 + at, accessor, org, role, action, collection, (), subject,
        purpose or default, case, allowed, count, glass,
    )  # fmt: skip


def routine(days: int = 4) -> list[Event]:
    """Ordinary work: identity checks of anyone, tellers serving their own customers, border
    officers checking travellers they deal with (bank-2's customers stand in for them)."""
    out: list[Event] = []
    for day in range(days):
        base = day * DAY
        for n in range(12):
            at = base + n * 1800.0
            for i, duty in enumerate(("duty-1", "duty-2", "duty-3")):
                out.append(ev(duty, PLAIN[(day * 37 + n * 3 + i * 101) % 400], at=at + i))
            for i, teller in enumerate(("teller-1", "teller-2")):
                who = PLAIN[(day * 17 + n * 2 + i * 50) % 200]
                out.append(ev(teller, who, at=at + 10 + i))
                out.append(ev(teller, who, at=at + 70 + i, collection="bank_deposits"))
            out.append(ev("teller-3", PLAIN[200 + (day * 13 + n) % 200], at=at + 20))
            for i, officer in enumerate(("border-1", "border-2", "border-3")):
                who = PLAIN[200 + (day * 11 + n * 3 + i * 40) % 200]
                out.append(ev(officer, who, at=at + 30 + i))
    return out


def log(events: list[Event]) -> list[Event]:
    """Sort by time and number the events as lines of one file."""
    events = sorted(events, key=lambda e: e.ts)
    for index, event in enumerate(events):
        event.index = index
    return events


def run(
    detectors: Sequence[Detector], extra: list[Event], *, world: Directory | None = None
) -> Pipeline:
    """Run detectors over four days of routine work plus ``extra`` through the pipeline."""
    world = world or directory()
    events = log(routine() + extra)
    pipeline = Pipeline(Context(world, Baseline.learn(events, world)), detectors)
    pipeline.feed(events)
    return pipeline


def top(pipeline: Pipeline, accessor: str) -> float:
    """The highest finding score about one accessor (0 when none)."""
    return max((f.score for f in pipeline.findings(accessor)), default=0.0)


def benign_scores(pipeline: Pipeline, *, but: set[str] = frozenset()) -> dict[str, float]:  # type: ignore[assignment]
    """Every accessor other than ``but`` that has any finding, with its top score."""
    names = {a for a, _, _ in ACCESSORS} - but
    return {a: top(pipeline, a) for a in names if top(pipeline, a) > 0}
