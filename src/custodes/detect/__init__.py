"""Misuse detection over access events: explanations, detectors, alerts with evidence.

Every access is asked *what explains it* (an approved case naming the subject and assigned to
the reader, a relationship with the reader's organization, a routine duty of the reader's peer
group); detectors then look at what nothing explains, at whom accesses touch (canaries,
protected persons, officials of other organizations, colleagues, family, neighbours) and at how
they move (bursts, night, enumeration, slow accumulation, dossiers, leaving). Findings combine
per accessor into one :class:`Alert` with a score, evidence (event indexes) and one sentence.
An :class:`AlertBook` files a vault's alerts for review: stable ids, severities, evidence events
and acknowledgements (ledgered).

:func:`detect_files` runs the batch over the interchange files of DESIGN.md §6; a
:class:`Pipeline` takes events one at a time (``observe``) for streaming use, and a
:class:`Monitor` runs one inside a vault, scoring ledger events as they are committed.
"""

from __future__ import annotations

from custodes.detect._base import Detector, poisson_tail, surprise_score
from custodes.detect._book import (
    SEVERITIES,
    STRONG_SCORE,
    Acknowledgement,
    AlertBook,
    FiledAlert,
    alert_id,
    events_at,
    severity_of,
)
from custodes.detect._context import Baseline, Context, Directory, Explanation, peer_group
from custodes.detect._model import (
    AccessorInfo,
    Alert,
    CaseInfo,
    Event,
    Finding,
    SubjectInfo,
    read_accessors,
    read_cases,
    read_events,
    read_subjects,
)
from custodes.detect._pipeline import (
    ALERT_THRESHOLD,
    DetectionReport,
    Pipeline,
    default_detectors,
    detect,
    detect_files,
)
from custodes.detect._stream import ALERTS_FILE, HISTORY_DAYS, PAUSE, Monitor, read_alerts

__all__ = [
    "ALERTS_FILE",
    "ALERT_THRESHOLD",
    "HISTORY_DAYS",
    "PAUSE",
    "SEVERITIES",
    "STRONG_SCORE",
    "AccessorInfo",
    "Acknowledgement",
    "Alert",
    "AlertBook",
    "Baseline",
    "CaseInfo",
    "Context",
    "DetectionReport",
    "Detector",
    "Directory",
    "Event",
    "Explanation",
    "FiledAlert",
    "Finding",
    "Monitor",
    "Pipeline",
    "SubjectInfo",
    "alert_id",
    "default_detectors",
    "detect",
    "detect_files",
    "events_at",
    "peer_group",
    "poisson_tail",
    "read_accessors",
    "read_alerts",
    "read_cases",
    "read_events",
    "read_subjects",
    "severity_of",
    "surprise_score",
]
