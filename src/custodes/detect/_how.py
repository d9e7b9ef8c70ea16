"""Detectors of *how* access moves: bursts (at night especially), enumeration, slow
accumulation over weeks, full dossiers, and accounts used around or after leaving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from custodes.detect._base import Detector, surprise_score
from custodes.detect._context import DAY, HOUR, Context, Explanation, peer_group
from custodes.detect._model import Event, Finding

__all__ = [
    "BulkRateDetector",
    "DepartingDetector",
    "DossierDetector",
    "EnumerationDetector",
    "LowAndSlowDetector",
]


@dataclass
class _Window:
    slot: int = -1
    subjects: set[str] = field(default_factory=set)
    evidence: list[int] = field(default_factory=list)
    score: float = 0.0


class BulkRateDetector(Detector):
    """Distinct people read in one hour, against the busiest hour of any peer."""

    name = "bulk_exfiltration"
    description = (
        "More distinct people in one hour than several times any peer's busiest hour "
        "(a lower bar at hours the peer group does not work); approved exports excluded."
    )
    floor = 30
    factor = 3.0
    night_factor = 2.0

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if event.subject is None or (why == Explanation.CASE and event.action == "export"):
            return None
        window = self._windows.get(event.accessor)
        slot = int(event.ts // HOUR)
        if window is None or window.slot != slot:
            score = window.score if window is not None else 0.0
            window = self._windows[event.accessor] = _Window(slot, score=score)
        window.subjects.add(event.subject)
        window.evidence.append(event.index)
        group = peer_group(event.org, event.role)
        usual = ctx.baseline.usual_hour(group, slot % 24)
        bar = max(
            self.floor, (self.factor if usual else self.night_factor) * self._peak(event, ctx)
        )
        if len(window.subjects) < bar:
            return None
        score = 0.9 if usual else 1.0
        if score <= 0 or score < window.score:
            return None
        window.score = score
        when = "in one hour" if usual else "in one hour at a time its peers do not work"
        return Finding(
            event.accessor,
            self.name,
            score,
            window.evidence,
            event.ts,
            f"read {len(window.subjects)} people {when} (peers' busiest hour: "
            f"{self._peak(event, ctx)})",
        )

    def _peak(self, event: Event, ctx: Context) -> int:
        return ctx.baseline.peer_peak(event.accessor, peer_group(event.org, event.role))


@dataclass
class _Tally:
    count: int = 0
    days: dict[int, int] = field(default_factory=dict)
    subjects: set[str] = field(default_factory=set)
    evidence: list[int] = field(default_factory=list)
    score: float = 0.0


class EnumerationDetector(Detector):
    """Lookups by made-up values: finds that return nobody, against the peers' rate."""

    name = "enumeration"
    description = "Finds that return nobody (guessing ID or phone numbers), against the peers."

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._volume: dict[str, int] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        volume = self._volume[event.accessor] = self._volume.get(event.accessor, 0) + 1
        if event.action != "find" or not event.allowed or event.count != 0:
            return None
        tally = self._tallies.setdefault(event.accessor, _Tally())
        tally.count += 1
        tally.evidence.append(event.index)
        group = peer_group(event.org, event.role)
        rate = ctx.baseline.peer_rate(event.accessor, group, "empty_finds", "attempts")
        mean = max(volume, 50) * rate
        score = surprise_score(tally.count, mean) if tally.count >= 5 else 0.0
        if score <= 0 or score < tally.score:
            return None
        tally.score = score
        return Finding(
            event.accessor,
            self.name,
            score,
            tally.evidence,
            event.ts,
            f"ran {tally.count} lookups that found nobody ({mean:.2f} expected from the peers)",
        )


class LowAndSlowDetector(Detector):
    """Unexplained people accumulated a few a day over weeks, below any daily bar."""

    name = "low_and_slow"
    description = (
        "Unexplained reads on at least 4 days within 14, a few people a day, accumulating."
    )
    min_days = 4
    span_days = 14

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if not event.allowed or event.subject is None or why != Explanation.NONE:
            return None
        tally = self._tallies.setdefault(event.accessor, _Tally())
        tally.evidence.append(event.index)
        if event.subject in tally.subjects:
            return None
        tally.subjects.add(event.subject)
        day = int(event.ts // DAY)
        tally.days[day] = tally.days.get(day, 0) + 1
        recent = [d for d in tally.days if day - d < self.span_days]
        if len(recent) < self.min_days:
            return None
        score = min(1.0, 0.5 + 0.05 * (len(recent) - self.min_days))
        if score <= 0 or score < tally.score:
            return None
        tally.score = score
        return Finding(
            event.accessor,
            self.name,
            score,
            tally.evidence,
            event.ts,
            f"read {len(tally.subjects)} unexplained people, a few at a time on "
            f"{len(recent)} of the last {self.span_days} days",
        )


@dataclass
class _Pulls:
    recent: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    dossiers: set[str] = field(default_factory=set)
    evidence: list[int] = field(default_factory=list)
    score: float = 0.0


class DossierDetector(Detector):
    """Full histories: many collections about one person within minutes, person after person,
    even under a case (a seller padding his own case reads this way)."""

    name = "dossier_pull"
    description = "At least 4 collections about one person within 15 minutes, for 2 or more people."
    collections = 4
    window = 15 * 60.0

    def __init__(self) -> None:
        self._pulls: dict[str, _Pulls] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if event.subject is None or event.action != "read" or event.collection is None:
            return None
        pulls = self._pulls.setdefault(event.accessor, _Pulls())
        seen = pulls.recent.setdefault(event.subject, [])
        seen[:] = [(ts, c) for ts, c in seen if event.ts - ts <= self.window]
        seen.append((event.ts, event.collection))
        if len({c for _, c in seen}) < self.collections or event.subject in pulls.dossiers:
            return None
        pulls.dossiers.add(event.subject)
        pulls.evidence.append(event.index)
        if len(pulls.dossiers) < 2:
            return None
        score = min(1.0, 0.3 + 0.15 * len(pulls.dossiers))
        if score <= 0 or score < pulls.score:
            return None
        pulls.score = score
        return Finding(
            event.accessor,
            self.name,
            score,
            pulls.evidence,
            event.ts,
            f"pulled full histories ({self.collections}+ collections within minutes) of "
            f"{len(pulls.dossiers)} people",
        )


class DepartingDetector(Detector):
    """Accounts used after their holder left (or before they started), and surges in the
    last two weeks before leaving against the holder's own earlier days."""

    name = "departing_employee"
    description = (
        "Use of an account outside its active dates; in the 14 days before leaving, a day "
        "with 2.5x the holder's usual distinct people (and at least 20)."
    )
    notice = 14 * DAY
    surge = 2.5

    def __init__(self) -> None:
        self._days: dict[str, dict[int, set[str]]] = {}
        self._evidence: dict[str, list[int]] = {}
        self._score: dict[str, float] = {}

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        info = ctx.directory.accessors.get(event.accessor)
        if info is None or event.subject is None:
            return None
        if (info.active_to is not None and event.ts >= info.active_to) or (
            info.active_from is not None and event.ts < info.active_from
        ):
            return self._raise(event, 1.0, "used the account outside its holder's active dates")
        if info.active_to is None or event.ts < info.active_to - self.notice:
            days = self._days.setdefault(event.accessor, {})
            days.setdefault(int(event.ts // DAY), set()).add(event.subject)
            return None
        return self._surge(event)

    def _surge(self, event: Event) -> Finding | None:
        days = self._days.setdefault(event.accessor, {})
        day = int(event.ts // DAY)
        today = days.setdefault(day, set())
        today.add(event.subject or "")
        self._evidence.setdefault(event.accessor, []).append(event.index)
        before = [len(s) for d, s in days.items() if d < day and len(s) > 0]
        usual = median(before) if len(before) >= 3 else 5.0
        if len(today) < max(20, self.surge * usual):
            return None
        return self._raise(
            event,
            0.8,
            f"read {len(today)} people in one day shortly before leaving (usually {usual:.0f})",
        )

    def _raise(self, event: Event, score: float, reason: str) -> Finding | None:
        evidence = self._evidence.setdefault(event.accessor, [])
        if not evidence or evidence[-1] != event.index:
            evidence.append(event.index)
        if score < self._score.get(event.accessor, 0.0):
            return None
        self._score[event.accessor] = score
        return Finding(event.accessor, self.name, score, evidence, event.ts, reason)
