"""Detectors of *whom* an access touches: canaries, protected persons, officials of other
organizations, colleagues, family and neighbours.

Each compares how often the accessor reaches people of a category with how often random work
of the same volume would (the category's share of the population), and weighs hardest the
touches nothing explains: an allowed read with no case, relationship or duty behind it, or a
refused request for something the purpose never covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from custodes.detect._base import Detector, surprise_score
from custodes.detect._context import DAY, Context, Explanation
from custodes.detect._model import AccessorInfo, Event, Finding, SubjectInfo

__all__ = [
    "CanaryDetector",
    "CoworkerDetector",
    "FamilyDetector",
    "NeighbourDetector",
    "OfficialDetector",
    "ProtectedDetector",
    "pressed",
]

_PRESSED_WEIGHT = 0.3  # score per subject-day touched with nothing to explain it


def pressed(event: Event, why: str, ctx: Context) -> bool:
    """Whether an access is pressed beyond any explanation: allowed with no case,
    relationship or duty behind it, or refused for a collection its purpose never covers."""
    if event.allowed:
        return why == Explanation.NONE
    return not ctx.baseline.in_scope(event)


class CanaryDetector(Detector):
    """Any touch of a canary subject: no legitimate work ever reaches one.

    The one exception is an export under an approved case: a bulk export covers everyone in
    its collection, canaries included (when the identity collection is exportable, since every
    canary has an identity record); such an export is accounted for by its case and its
    fingerprint instead.
    """

    name = "canary_touch"
    description = "Reads, finds or exports reaching a canary subject (immediate, highest score)."
    notable_only = True

    def __init__(self) -> None:
        self._hits: dict[str, list[int]] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        subject = ctx.directory.subjects.get(event.subject) if event.subject else None
        if subject is None or not subject.canary:
            return None
        if event.action == "export" and why == Explanation.CASE:
            return None
        hits = self._hits.setdefault(event.accessor, [])
        hits.append(event.index)
        return Finding(
            event.accessor,
            self.name,
            1.0,
            hits,
            event.ts,
            f"touched {len(hits)} time(s) a canary record that no legitimate work reaches",
        )


@dataclass
class _Tally:
    hits: set[tuple[str, int]] = field(default_factory=set)
    pushed: set[tuple[str, int]] = field(default_factory=set)
    people: set[str] = field(default_factory=set)
    evidence: list[int] = field(default_factory=list)
    score: float = 0.0


class _WhomDetector(Detector):
    """A category of subjects; subclasses say who belongs and the category's share."""

    notable_only = True

    what: ClassVar[str] = ""
    counts_relations: ClassVar[bool] = False  # whether a relationship explains the touch

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        raise NotImplementedError

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        raise NotImplementedError

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if event.subject is None:
            return None
        subject = ctx.directory.subjects.get(event.subject)
        accessor = ctx.directory.accessors.get(event.accessor)
        if subject is None or accessor is None or not self.matches(accessor, subject):
            return None
        if why == Explanation.CASE or (why == Explanation.RELATION and not self.counts_relations):
            return None
        tally = self._tallies.get(event.accessor)
        if tally is None:
            tally = self._tallies[event.accessor] = _Tally()
        key = (event.subject, int(event.ts // DAY))
        tally.evidence.append(event.index)
        new = key not in tally.hits
        tally.hits.add(key)
        tally.people.add(event.subject)
        if pressed(event, why, ctx) and key not in tally.pushed:
            tally.pushed.add(key)
            new = True
        if not new:
            return None
        return self._judge(event, tally, accessor, ctx)

    def _judge(
        self, event: Event, tally: _Tally, accessor: AccessorInfo, ctx: Context
    ) -> Finding | None:
        reach = len(ctx.reach.get(event.accessor, ()))
        mean = max(reach, 20) * self.share(accessor, ctx)
        score = max(
            surprise_score(len(tally.hits), mean),
            min(1.0, _PRESSED_WEIGHT * len(tally.pushed)),
        )
        if score <= 0 or score < tally.score:
            return None
        tally.score = score
        return Finding(
            event.accessor,
            self.name,
            score,
            tally.evidence,
            event.ts,
            f"looked up {len(tally.people)} {self.what} on {len(tally.hits)} subject-day(s) "
            f"({len(tally.pushed)} with no case, relationship or duty behind them; "
            f"{mean:.2f} expected by chance)",
        )


class ProtectedDetector(_WhomDetector):
    """Public figures and other protected persons without an employer in the log."""

    name = "vip_snooping"
    description = "Protected persons (public figures) reached without a case or relationship."
    what = "protected person(s)"

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        return subject.protected and subject.employer_org is None

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        return ctx.directory.celebrities / ctx.directory.population


class OfficialDetector(_WhomDetector):
    """Protected officials of *other* organizations (cross-organization targeting)."""

    name = "official_targeting"
    description = "Officials of other organizations reached without a case or relationship."
    what = "official(s) of other organizations"

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        return subject.protected and subject.employer_org not in (None, accessor.org)

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        own = ctx.directory.employees.get(accessor.org, 0) if accessor else 0
        return max(0, ctx.directory.officials - own) / ctx.directory.population


class CoworkerDetector(_WhomDetector):
    """Colleagues: subjects employed by the accessor's own organization."""

    name = "coworker_lookup"
    description = "Colleagues of the accessor's own organization reached without a case."
    what = "colleague(s)"

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        return subject.employer_org == accessor.org and not _same_home(accessor, subject)

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        return ctx.directory.employees.get(accessor.org, 0) / ctx.directory.population


class FamilyDetector(_WhomDetector):
    """The accessor's household: same surname token and same address token."""

    name = "family_lookup"
    description = "Members of the accessor's own household (surname and address tokens)."
    what = "member(s) of their own household"
    counts_relations = True  # serving your own family is a conflict of interest

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        return _same_home(accessor, subject)

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        if accessor.surname_token is None or accessor.address_token is None:
            return 0.0
        key = (accessor.surname_token, accessor.address_token)
        return ctx.directory.households.get(key, 0) / ctx.directory.population


class NeighbourDetector(_WhomDetector):
    """People at the accessor's address with another surname (flatmates, neighbours)."""

    name = "neighbour_lookup"
    description = "People living at the accessor's address (address token, other surname)."
    what = "people at their own address"

    def matches(self, accessor: AccessorInfo, subject: SubjectInfo) -> bool:
        return (
            accessor.address_token is not None
            and subject.address_token == accessor.address_token
            and subject.surname_token != accessor.surname_token
        )

    def share(self, accessor: AccessorInfo, ctx: Context) -> float:
        if accessor.address_token is None:
            return 0.0
        at = ctx.directory.addresses.get(accessor.address_token, 0)
        same = ctx.directory.households.get((accessor.surname_token or "", accessor.address_token))
        return max(0, at - (same or 0)) / ctx.directory.population


def _same_home(accessor: AccessorInfo, subject: SubjectInfo) -> bool:
    return (
        accessor.address_token is not None
        and accessor.surname_token is not None
        and subject.address_token == accessor.address_token
        and subject.surname_token == accessor.surname_token
    )
