"""One pipeline for every detector: feed events one at a time, read alerts at any moment.

Each access is explained once (case, relationship, duty or nothing) and shown to every
detector; findings are combined per accessor into one alert whose score is
``1 - prod(1 - finding score)`` over the strongest finding of each kind, so several weak signals
about the same person (a colleague looked up *and* a purpose stretched) add up, while one weak
signal alone stays below the alert threshold. Batch detection learns the peer baselines from the
log first, then feeds it; streaming detection would learn them from history and feed live events.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custodes.detect._base import MAX_EVIDENCE, Detector
from custodes.detect._context import Baseline, Context, Directory
from custodes.detect._how import (
    BulkRateDetector,
    DepartingDetector,
    DossierDetector,
    EnumerationDetector,
    LowAndSlowDetector,
)
from custodes.detect._model import (
    READ_ACTIONS,
    Alert,
    Event,
    Finding,
    read_accessors,
    read_cases,
    read_events,
    read_subjects,
)
from custodes.detect._whom import (
    CanaryDetector,
    CoworkerDetector,
    FamilyDetector,
    NeighbourDetector,
    OfficialDetector,
    ProtectedDetector,
)
from custodes.detect._why import DenialDetector, PurposeMisuseDetector, UnexplainedDetector

__all__ = [
    "ALERT_THRESHOLD",
    "DetectionReport",
    "Pipeline",
    "default_detectors",
    "detect",
    "detect_files",
]

ALERT_THRESHOLD = 0.5
"""The combined score from which an accessor is alerted on."""

# Kinds that say *that* something is wrong rather than *what*: on a tie, name the other one.
_GENERIC = frozenset({"unexplained_access", "repeated_denials", "purpose_misuse"})


def default_detectors() -> list[Detector]:
    """A fresh instance of every detector, in the order they are consulted."""
    return [
        CanaryDetector(),
        UnexplainedDetector(),
        PurposeMisuseDetector(),
        DenialDetector(),
        ProtectedDetector(),
        OfficialDetector(),
        CoworkerDetector(),
        FamilyDetector(),
        NeighbourDetector(),
        BulkRateDetector(),
        EnumerationDetector(),
        LowAndSlowDetector(),
        DossierDetector(),
        DepartingDetector(),
    ]


@dataclass
class _Case:
    """The findings about one accessor and when they first added up to an alert."""

    findings: dict[str, Finding] = field(default_factory=dict)
    raised: float | None = None

    def score(self) -> float:
        return 1.0 - math.prod(1.0 - f.score for f in self.findings.values())


class Pipeline:
    """Detectors over a stream of events, with per-accessor state."""

    def __init__(
        self,
        context: Context,
        detectors: Sequence[Detector] | None = None,
        *,
        threshold: float = ALERT_THRESHOLD,
    ) -> None:
        self.context = context
        self.detectors = list(detectors) if detectors is not None else default_detectors()
        self.threshold = threshold
        self._cases: dict[str, _Case] = {}
        self._times = array("d")
        self._everyone = [d for d in self.detectors if not d.notable_only]
        self._notable = set(context.directory.notable)

    def observe(self, event: Event) -> Alert | None:
        """Show one event to every detector; return the accessor's alert if this event
        raised it (its first crossing of the threshold), else None."""
        times = self._times
        if event.index == len(times):
            times.append(event.ts)
        else:
            if event.index > len(times):
                times.extend([math.nan] * (event.index + 1 - len(times)))
            times[event.index] = event.ts
        if event.action not in READ_ACTIONS:
            return None
        why = self.context.explain(event) if event.allowed else ""
        subject = event.subject
        detectors = self._everyone
        if subject is not None:
            reach = self.context.reach.get(event.accessor)
            if reach is None:
                reach = self.context.reach[event.accessor] = set()
            reach.add((subject, int(event.ts // 86400.0)))
            if subject in self._notable:
                detectors = self.detectors
        raised = False
        for detector in detectors:
            finding = detector.observe(event, why, self.context)
            if finding is not None:
                raised = self._record(finding) or raised
        return self._alert(event.accessor) if raised else None

    def watch_canaries(self, pseudonyms: Iterable[str]) -> None:
        """Treat these subjects as canaries from the next event on (planted while running)."""
        chosen = set(pseudonyms)
        self.context.directory.add_canaries(chosen)
        self._notable.update(chosen)

    def feed(self, events: Iterable[Event]) -> None:
        """Observe every event in order."""
        for event in events:
            self.observe(event)

    def alerts(self) -> list[Alert]:
        """Every alert so far, highest score first."""
        alerts = [self._alert(accessor) for accessor, case in self._cases.items() if case.raised]
        return sorted(alerts, key=lambda a: (-a.score, a.raised, a.accessor))

    def findings(self, accessor: str) -> list[Finding]:
        """Every finding about one accessor (alerted or not), strongest first."""
        case = self._cases.get(accessor)
        if case is None:
            return []
        return sorted(case.findings.values(), key=lambda f: -f.score)

    def _record(self, finding: Finding) -> bool:
        case = self._cases.setdefault(finding.accessor, _Case())
        case.findings[finding.kind] = finding
        if case.raised is None and case.score() >= self.threshold:
            case.raised = finding.raised
            return True
        return False

    def _alert(self, accessor: str) -> Alert:
        case = self._cases[accessor]
        findings = sorted(case.findings.values(), key=lambda f: (-f.score, f.kind in _GENERIC))
        evidence = sorted({i for f in findings for i in f.evidence})[:MAX_EVIDENCE]
        stamps = [self._times[i] for i in evidence if i < len(self._times)]
        top = findings[0]
        info = self.context.directory.accessors.get(accessor)
        who = f"{accessor} ({info.role} at {info.org})" if info else accessor
        others = [f.kind for f in findings[1:]]
        also = f"; also {', '.join(others)}" if others else ""
        return Alert(
            accessor=accessor,
            kind=top.kind,
            first_ts=min(stamps, default=top.raised),
            last_ts=max(stamps, default=top.raised),
            score=case.score(),
            evidence=evidence,
            explanation=f"{who} {top.reason}{also}.",
            raised=case.raised if case.raised is not None else top.raised,
            kinds=[f.kind for f in findings],
        )


def detect(events: Sequence[Event], directory: Directory) -> list[Alert]:
    """Learn the peer baselines from ``events``, then run every detector over them."""
    pipeline = Pipeline(Context(directory, Baseline.learn(events, directory)))
    pipeline.feed(events)
    return pipeline.alerts()


@dataclass(frozen=True)
class DetectionReport:
    """The alerts of one batch run and what it processed."""

    alerts: list[Alert]
    events: int
    accessors: int
    seconds: float


def detect_files(*, events: Path, accessors: Path, subjects: Path, cases: Path) -> DetectionReport:
    """Run detection over the four interchange files of DESIGN.md §6.

    Raises:
        InputError: a file is missing, unreadable or malformed (naming the file and line).
    """
    began = time.perf_counter()
    directory = Directory(read_accessors(accessors), read_subjects(subjects), read_cases(cases))
    log = list(read_events(events))
    alerts = detect(log, directory)
    return DetectionReport(
        alerts=alerts,
        events=len(log),
        accessors=len({e.accessor for e in log}),
        seconds=time.perf_counter() - began,
    )
