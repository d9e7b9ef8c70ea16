"""What detectors know besides the events: who is who (the directory) and what is normal for
each peer group (the baseline), and the one question asked of every access: what explains it?

Explanations follow explanation-based auditing (Fabbri & LeFevre, PVLDB 2011): an access is
explained by an approved, open case of the reader's organization that names the subject and is
assigned to the reader; by a relationship between the subject and the reader's organization (a
bank's customer, a hotel's guest); or by duty, when the reader's peer group routinely makes this
kind of access about anyone (an identity check at a police counter). Whatever none of these
explains is what detectors look at hardest.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from statistics import median

from custodes.detect._model import (
    READ_ACTIONS,
    AccessorInfo,
    CaseInfo,
    Event,
    SubjectInfo,
)

__all__ = [
    "Baseline",
    "Context",
    "Directory",
    "Explanation",
    "peer_group",
]

_ORG_NUMBER = re.compile(r"-\d+$")
HOUR = 3600.0
DAY = 86400.0


class Explanation:
    """Why an access happened, strongest first; ``NONE`` means nothing explains it."""

    CASE = "case"
    RELATION = "relation"
    DUTY = "duty"
    NONE = ""


@lru_cache(maxsize=65536)
def org_type(org: str) -> str:
    """The type of an organization: its id without a trailing number (``bank-2`` → ``bank``)."""
    return _ORG_NUMBER.sub("", org)


@lru_cache(maxsize=65536)
def peer_group(org: str, role: str) -> tuple[str, str]:
    """The peer group of an accessor: same role in the same type of organization."""
    return (org_type(org), role)


@dataclass
class Directory:
    """Accessors, subjects and cases by id, with the population shares detectors need."""

    accessors: dict[str, AccessorInfo]
    subjects: dict[str, SubjectInfo]
    cases: dict[str, CaseInfo]
    households: Counter[tuple[str, str]] = field(default_factory=Counter)
    addresses: Counter[str] = field(default_factory=Counter)
    employees: Counter[str] = field(default_factory=Counter)
    celebrities: int = 0
    officials: int = 0
    notable: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        homes = {a.address_token for a in self.accessors.values() if a.address_token}
        for s in self.subjects.values():
            if s.address_token is not None:
                self.addresses[s.address_token] += 1
                if s.surname_token is not None:
                    self.households[(s.surname_token, s.address_token)] += 1
            if s.employer_org is not None:
                self.employees[s.employer_org] += 1
            if s.protected:
                if s.employer_org is None:
                    self.celebrities += 1
                else:
                    self.officials += 1
            if s.canary or s.protected or s.employer_org is not None or s.address_token in homes:
                self.notable.add(s.subject)

    def add_canaries(self, pseudonyms: Iterable[str]) -> None:
        """Make these subjects canaries (planted ones, from the forensic registry).

        The subjects map is replaced, not changed in place: a re-learning thread may be
        reading the old one.
        """
        subjects = dict(self.subjects)
        for pseudonym in pseudonyms:
            known = subjects.get(pseudonym)
            if known is None:
                known = SubjectInfo(pseudonym, None, None, None, False, False, frozenset())
            subjects[pseudonym] = replace(known, canary=True)
            self.notable.add(pseudonym)
        self.subjects = subjects

    @property
    def population(self) -> int:
        """How many subjects the directory knows (at least 1)."""
        return max(1, len(self.subjects))

    def case_explains(self, event: Event) -> bool:
        """Whether an approved case open at the time, assigned to the reader, names the
        subject (or, for an export or a find that found nobody, is simply valid)."""
        case = self.cases.get(event.case) if event.case is not None else None
        if case is None or case.approved_by is None:
            return False
        if event.accessor not in case.assigned:
            return False
        if case.opened is not None and event.ts < case.opened:
            return False
        if case.closed is not None and event.ts > case.closed:
            return False
        if event.subject is None or event.action == "export":
            return True
        return event.subject in case.subjects

    def related(self, event: Event) -> bool:
        """Whether the subject has a relationship with the reader's organization."""
        subject = self.subjects.get(event.subject) if event.subject is not None else None
        return subject is not None and event.org in subject.relations


def _routine_key(event: Event) -> tuple[str | None, str, str | None]:
    return (event.purpose, event.action, event.collection)


@dataclass
class Baseline:
    """What is normal, learned from a reference log (in batch: the log itself).

    ``duty``: per peer group, the (purpose, action, collection) its members routinely use
    about people no case or relationship connects them to. ``scope``: per peer group and
    purpose, the collections its requests were ever allowed. ``stats``: per accessor, counts
    of each signal (see :meth:`peer_rate`). ``hourly_peak``: per accessor, the most distinct
    subjects read in any hour. ``hours``: per peer group, events per hour of the day.
    """

    duty: dict[tuple[str, str], set[tuple[str | None, str, str | None]]]
    scope: dict[tuple[tuple[str, str], str | None], set[str | None]]
    stats: dict[str, Counter[str]]
    hourly_peak: dict[str, int]
    hours: dict[tuple[str, str], list[int]]
    groups: dict[tuple[str, str], set[str]]
    _cache: dict[tuple[object, ...], float] = field(default_factory=dict)

    @classmethod
    def learn(cls, events: Iterable[Event], directory: Directory) -> Baseline:
        """Learn the baseline from ``events`` (a list: it is read twice)."""
        events = list(events)
        duty, scope, groups = _learn_duty(events, directory)
        base = cls(duty, scope, defaultdict(Counter), {}, defaultdict(lambda: [0] * 24), groups)
        base._count(events, directory)
        return base

    def explain(self, event: Event, directory: Directory) -> str:
        """Why ``event`` happened (an :class:`Explanation` value)."""
        if directory.case_explains(event):
            return Explanation.CASE
        if directory.related(event):
            return Explanation.RELATION
        if event.break_glass:
            return Explanation.NONE
        group = peer_group(event.org, event.role)
        if _routine_key(event) in self.duty.get(group, ()):
            return Explanation.DUTY
        return Explanation.NONE

    def in_scope(self, event: Event) -> bool:
        """Whether the peer group was ever allowed this purpose on this collection."""
        group = peer_group(event.org, event.role)
        return event.collection in self.scope.get((group, event.purpose), ())

    def peer_rate(self, accessor: str, group: tuple[str, str], signal: str, per: str) -> float:
        """The median over the accessor's peers (not itself) of ``signal`` per ``per``, with a
        small prior so that a group without history gives a low but non-zero rate."""
        key = ("rate", accessor, signal, per)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rates = [
            (self.stats[peer][signal] + 0.5) / (self.stats[peer][per] + 100.0)
            for peer in self.groups.get(group, ())
            if peer != accessor
        ]
        rate = self._cache[key] = median(rates) if rates else 0.5 / 100.0
        return rate

    def peer_peak(self, accessor: str, group: tuple[str, str]) -> int:
        """The highest hourly peak of distinct subjects among the accessor's peers."""
        key = ("peak", accessor)
        cached = self._cache.get(key)
        if cached is None:
            peers = self.groups.get(group, ())
            peaks = [self.hourly_peak.get(peer, 0) for peer in peers if peer != accessor]
            cached = self._cache[key] = max(peaks) if peaks else 0
        return int(cached)

    def usual_hour(self, group: tuple[str, str], hour: int) -> bool:
        """Whether the peer group does at least 2% of its work in this hour of the day."""
        key = ("hour", group, hour)
        cached = self._cache.get(key)
        if cached is None:
            counts = self.hours.get(group)
            total = sum(counts) if counts is not None else 0
            usual = counts is None or total == 0 or counts[hour] >= 0.02 * total
            cached = self._cache[key] = 1.0 if usual else 0.0
        return cached == 1.0

    def _count(self, events: list[Event], directory: Directory) -> None:
        hourly: dict[str, tuple[int, set[str]]] = {}
        for ev in events:
            if ev.action not in READ_ACTIONS:
                continue
            stats = self.stats[ev.accessor]
            stats["attempts"] += 1
            group = peer_group(ev.org, ev.role)
            self.hours[group][int(ev.ts // HOUR) % 24] += 1
            if not ev.allowed:
                stats["denied"] += 1
                if not self.in_scope(ev):
                    stats["misfit"] += 1
                continue
            if ev.action == "find" and ev.count == 0:
                stats["empty_finds"] += 1
            if ev.subject is None:
                continue
            stats["reads"] += 1
            if self.explain(ev, directory) == Explanation.NONE:
                stats["unexplained"] += 1
            hour = int(ev.ts // HOUR)
            slot, seen = hourly.get(ev.accessor, (-1, set()))
            if slot != hour:
                slot, seen = hour, set()
                hourly[ev.accessor] = (slot, seen)
            seen.add(ev.subject)
            if len(seen) > self.hourly_peak.get(ev.accessor, 0):
                self.hourly_peak[ev.accessor] = len(seen)


def _learn_duty(
    events: list[Event], directory: Directory
) -> tuple[
    dict[tuple[str, str], set[tuple[str | None, str, str | None]]],
    dict[tuple[tuple[str, str], str | None], set[str | None]],
    dict[tuple[str, str], set[str]],
]:
    """A (purpose, action, collection) is duty for a peer group when at least half of the
    group's members each use it mostly about unconnected people (so one misuser cannot make
    their own habit look routine)."""
    per: dict[tuple[str, str], dict[str, Counter[tuple[str | None, str, str | None]]]] = {}
    loose: dict[tuple[str, str], dict[str, Counter[tuple[str | None, str, str | None]]]] = {}
    scope: dict[tuple[tuple[str, str], str | None], set[str | None]] = defaultdict(set)
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for info in directory.accessors.values():
        groups[peer_group(info.org, info.role)].add(info.accessor)
    for ev in events:
        group = peer_group(ev.org, ev.role)
        groups[group].add(ev.accessor)
        if not ev.allowed or ev.action not in READ_ACTIONS:
            continue
        scope[(group, ev.purpose)].add(ev.collection)
        if ev.subject is None or ev.break_glass:
            continue
        key = _routine_key(ev)
        per.setdefault(group, {}).setdefault(ev.accessor, Counter())[key] += 1
        if not directory.case_explains(ev) and not directory.related(ev):
            loose.setdefault(group, {}).setdefault(ev.accessor, Counter())[key] += 1
    duty: dict[tuple[str, str], set[tuple[str | None, str, str | None]]] = {}
    for group, members in per.items():
        keys = {k for counts in members.values() for k in counts}
        routine = set()
        for key in keys:
            habitual = sum(
                1
                for accessor, counts in members.items()
                if counts[key] >= 5
                and loose.get(group, {}).get(accessor, Counter())[key] >= 0.5 * counts[key]
            )
            if habitual >= 2 and habitual * 2 >= len(groups[group]):
                routine.add(key)
        duty[group] = routine
    return duty, dict(scope), dict(groups)


@dataclass
class Context:
    """Directory and baseline together: everything a detector may consult. ``reach`` is
    kept up to date by the pipeline: per accessor, the (subject, day) pairs it asked about."""

    directory: Directory
    baseline: Baseline
    reach: dict[str, set[tuple[str, int]]] = field(default_factory=dict)

    def explain(self, event: Event) -> str:
        """Why ``event`` happened (an :class:`Explanation` value)."""
        return self.baseline.explain(event, self.directory)
