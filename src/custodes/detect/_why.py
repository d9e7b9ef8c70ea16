"""Detectors of *why*: accesses nothing explains, purposes used for what they do not cover,
and requests refused again and again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from custodes.detect._base import Detector, surprise_score
from custodes.detect._context import Context, Explanation, peer_group
from custodes.detect._model import Event, Finding

__all__ = ["DenialDetector", "PurposeMisuseDetector", "UnexplainedDetector"]

_MIN_VOLUME = 50  # the expected count never assumes fewer accesses than this


@dataclass
class _Count:
    volume: int = 0
    hits: int = 0
    subjects: set[str] = field(default_factory=set)
    keys: Counter[object] = field(default_factory=Counter)
    evidence: list[int] = field(default_factory=list)
    score: float = 0.0


class _RateDetector(Detector):
    """Counts a signal per accessor and scores it against the peer group's rate of it."""

    signal = ""  # the Baseline stat of the signal
    per = ""  # the Baseline stat it is a rate of

    def __init__(self) -> None:
        self._counts: dict[str, _Count] = {}

    def _count(self, accessor: str) -> _Count:
        count = self._counts.get(accessor)
        if count is None:
            count = self._counts[accessor] = _Count()
        return count

    def _judge(self, event: Event, count: _Count, observed: int, ctx: Context) -> Finding | None:
        group = peer_group(event.org, event.role)
        rate = ctx.baseline.peer_rate(event.accessor, group, self.signal, self.per)
        mean = max(count.volume, _MIN_VOLUME) * rate
        score = surprise_score(observed, mean)
        if score <= 0 or score < count.score:
            return None
        count.score = score
        return Finding(
            event.accessor,
            self.name,
            score,
            count.evidence,
            event.ts,
            self.sentence(count, observed, mean),
        )

    def sentence(self, count: _Count, observed: int, mean: float) -> str:
        raise NotImplementedError


class UnexplainedDetector(_RateDetector):
    """Explanation-based auditing: people read with no case, relationship or duty behind it."""

    name = "unexplained_access"
    description = (
        "Reads no approved case, customer relationship or routine duty of the peer group "
        "explains (break-glass included), against the peer group's rate."
    )
    signal, per = "unexplained", "reads"

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if not event.allowed or event.subject is None:
            return None
        count = self._count(event.accessor)
        count.volume += 1
        if why != Explanation.NONE:
            return None
        count.evidence.append(event.index)
        if event.subject in count.subjects:
            return None
        count.subjects.add(event.subject)
        return self._judge(event, count, len(count.subjects), ctx)

    def sentence(self, count: _Count, observed: int, mean: float) -> str:
        return (
            f"read the records of {observed} people that no case, relationship or duty explains "
            f"({mean:.2f} expected from the peer group)"
        )


class PurposeMisuseDetector(_RateDetector):
    """Requests for collections the stated purpose never covers for the peer group."""

    name = "purpose_misuse"
    description = (
        "Refused requests for collections the stated purpose never gives the peer group "
        "(asking an identity check for travel history), against the peer group's rate."
    )
    signal, per = "misfit", "attempts"

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        count = self._count(event.accessor)
        count.volume += 1
        if event.allowed or ctx.baseline.in_scope(event):
            return None
        count.hits += 1
        count.keys[(event.purpose, event.collection)] += 1
        count.evidence.append(event.index)
        return self._judge(event, count, count.hits, ctx)

    def sentence(self, count: _Count, observed: int, mean: float) -> str:
        return (
            f"asked {observed} times for data its purpose never covers "
            f"({len(count.keys)} purpose/collection pairs; {mean:.2f} expected from the peers)"
        )


class DenialDetector(_RateDetector):
    """Repeated refusals: probing what the vault will give, or insisting on one person."""

    name = "repeated_denials"
    description = "Refused requests far above the peer group's rate of refusals."
    signal, per = "denied", "attempts"

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        count = self._count(event.accessor)
        count.volume += 1
        if event.allowed:
            return None
        count.hits += 1
        count.keys[event.purpose] += 1
        if event.subject is not None:
            count.subjects.add(event.subject)
        count.evidence.append(event.index)
        return self._judge(event, count, count.hits, ctx)

    def sentence(self, count: _Count, observed: int, mean: float) -> str:
        return (
            f"was refused {observed} times under {len(count.keys)} purpose(s) about "
            f"{len(count.subjects)} people ({mean:.2f} refusals expected from the peers)"
        )
