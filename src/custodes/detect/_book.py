"""Alert bookkeeping: a vault's alerts with stable ids, severities, evidence and acknowledgements.

The alerts are the lines of ``<home>/detect/alerts.jsonl`` (streaming detection and ``custodes
demo`` write them; :func:`~custodes.detect.read_alerts` reads them). The book adds to each:

- an **id**: the first 24 hex digits of SHA-256 over accessor, kind, first event time and
  evidence, so the same alert has the same id in every process and after every restart, and a
  line written twice is one alert;
- a **severity** (:func:`severity_of`): the gravest band among the alert's kinds, one band lower
  when its score is under :data:`STRONG_SCORE`;
- its **evidence** as access events, read from the store by ledger index;
- its **acknowledgements**, derived from the ledger alone: every allowed ``alert_ack`` entry
  (:meth:`custodes.vault.Vault.acknowledge_alert`) whose author holds an oversight role of the
  policy names the alert in its reason. Nothing else holds this state, so it survives restarts
  and nobody can change it without the ledger showing it. An acknowledgement by someone who has
  since lost their oversight role no longer counts: their alerts show up as open again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodes.detect._stream import ALERTS_FILE, read_alerts
from custodes.errors import CryptoError, InputError, NotFound, StoreError
from custodes.model import Access, AccessEvent, Action

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = [
    "SEVERITIES",
    "STRONG_SCORE",
    "Acknowledgement",
    "AlertBook",
    "FiledAlert",
    "alert_id",
    "events_at",
    "severity_of",
]

SEVERITIES = ("critical", "high", "medium", "low")
"""Severity bands, gravest first."""

STRONG_SCORE = 0.8
"""Alerts scoring under this (they all score at least the alert threshold, 0.5) rest on weaker
evidence and are shown one band lower than their kind."""

# Why a kind is in its band: critical kinds are the signatures of data leaving the organization
# (a canary, a trap record nobody has a reason to open; mass extraction; enumeration; complete
# dossiers, the seller's pattern); high kinds target particular people (officials, protected
# persons, colleagues, family, neighbours). Everything else (unexplained reads, stretched
# purposes, refusals, slow accumulation, leavers) is medium until the evidence is weak.
_KIND_BAND = {
    "canary_touch": 0,
    "bulk_exfiltration": 0,
    "enumeration": 0,
    "dossier_pull": 0,
    "official_targeting": 1,
    "vip_snooping": 1,
    "coworker_lookup": 1,
    "family_lookup": 1,
    "neighbour_lookup": 1,
}
_DEFAULT_BAND = 2
_ACK_REASON = re.compile(r"alert ([0-9a-f]{8,64}) acknowledged")
_ACK_SCAN = 100_000  # newest events read per oversight accessor (they have little else)
_EVIDENCE_GAP = 32  # evidence indexes closer than this are read in one range query
_log = logging.getLogger(__name__)


def severity_of(kinds: Sequence[str], score: float) -> str:
    """Return the severity band of an alert with these finding kinds and combined score."""
    band = min((_KIND_BAND.get(kind, _DEFAULT_BAND) for kind in kinds), default=_DEFAULT_BAND)
    if score < STRONG_SCORE:
        band = min(band + 1, len(SEVERITIES) - 1)
    return SEVERITIES[band]


def alert_id(accessor: str, kind: str, first_ts: str, evidence: Sequence[int]) -> str:
    """Return the stable id of an alert (24 hex digits; fields as ``alerts.jsonl`` holds them)."""
    text = "\n".join((accessor, kind, first_ts, ",".join(map(str, evidence))))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """One ledgered acknowledgement: which entry, by whom, when, with the auditor's note
    (``None`` if the sealed note could not be opened)."""

    alert_id: str
    seq: int
    accessor: str
    org: str
    role: str
    at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class FiledAlert:
    """An alert as the book files it; ``evidence`` holds ledger indexes, oldest first."""

    alert_id: str
    accessor: str
    kind: str
    kinds: tuple[str, ...]
    severity: str
    score: float
    first_ts: datetime
    last_ts: datetime
    raised_at: datetime | None
    explanation: str
    evidence: tuple[int, ...]
    live: bool
    acknowledgements: tuple[Acknowledgement, ...] = ()

    @property
    def acknowledged(self) -> bool:
        """Whether an oversight accessor has acknowledged this alert."""
        return bool(self.acknowledgements)


class AlertBook:
    """The alerts of one vault, with their evidence and acknowledgement state.

    Safe to share between threads. The alerts file is re-read when it changes, and the
    acknowledgements when the ledger grows or the set of oversight accessors changes; both
    reads are cheap (a small file; an indexed query per oversight accessor).
    """

    def __init__(self, *, vault: Vault) -> None:
        self._vault = vault
        self._home = vault.settings.home
        self._lock = threading.Lock()
        self._file_key: tuple[int, int] | None = None
        self._filed: list[FiledAlert] = []
        self._acks_key: tuple[int, tuple[str, ...]] | None = None
        self._acks: dict[str, tuple[Acknowledgement, ...]] = {}

    @property
    def path(self) -> Path:
        """The alerts file the book reads."""
        return self._home / "detect" / ALERTS_FILE

    def alerts(
        self,
        *,
        severity: str | None = None,
        kind: str | None = None,
        accessor: str | None = None,
        acknowledged: bool | None = None,
    ) -> list[FiledAlert]:
        """Return the alerts, gravest first; within a band open before acknowledged, then
        newest first. Filters: severity, kind (any of an alert's kinds), accessor and
        acknowledgement state.

        Raises:
            StoreError: the alerts file is damaged, or the store could not be read.
        """
        filed, acks = self._current()
        found = []
        for alert in filed:
            entry = _with_acks(alert, acks)
            if severity is not None and entry.severity != severity:
                continue
            if kind is not None and kind not in entry.kinds:
                continue
            if accessor is not None and entry.accessor != accessor:
                continue
            if acknowledged is not None and entry.acknowledged != acknowledged:
                continue
            found.append(entry)
        # Stable: the file order (newest first within a band) stays within each group.
        found.sort(key=lambda a: (SEVERITIES.index(a.severity), a.acknowledged))
        return found

    def alert(self, alert_id: str) -> FiledAlert:
        """Return one alert by id.

        Raises:
            NotFound: no alert has this id.
            StoreError: the alerts file is damaged, or the store could not be read.
        """
        filed, acks = self._current()
        for alert in filed:
            if alert.alert_id == alert_id:
                return _with_acks(alert, acks)
        raise NotFound(f"no alert '{alert_id}'")

    def evidence(
        self, alert: FiledAlert, *, limit: int | None = None
    ) -> list[tuple[int, AccessEvent]]:
        """Return the alert's evidence events ``(seq, event)``, oldest first (the first
        ``limit`` of them if given). Indexes the store does not hold are left out.

        Raises:
            StoreError: the store could not be read.
        """
        wanted = alert.evidence if limit is None else alert.evidence[:limit]
        return list(events_at(self._vault, wanted))

    def acknowledge(self, access: Access, alert_id: str, note: str) -> Acknowledgement:
        """Acknowledge an alert with a note; the acknowledgement is a ledger entry.

        A caller without an oversight role is refused before the alert is even looked up, and
        the refusal is recorded (see :meth:`custodes.vault.Vault.acknowledge_alert`).

        Raises:
            AccessDenied: the caller's role is not an oversight role (recorded).
            NotFound: no alert has this id.
            InputError: an empty, overlong or unprintable note.
            AuditFailure: the entry could not be committed.
        """
        vault = self._vault
        if access.principal.role in vault.policy.oversight_roles:
            self.alert(alert_id)  # unknown ids are refused before anything is recorded
        seq = vault.acknowledge_alert(access, alert_id, note)
        for found_seq, event in events_at(vault, [seq]):
            if found_seq == seq:
                return _acknowledgement(vault, alert_id, seq, event)
        raise StoreError(f"the acknowledgement was committed as entry {seq} but cannot be read")

    def acknowledgements(self) -> dict[str, tuple[Acknowledgement, ...]]:
        """Return every counted acknowledgement by alert id, oldest first.

        Raises:
            StoreError: the store could not be read.
        """
        return dict(self._current()[1])

    # -- caches --------------------------------------------------------------------------------

    def _current(self) -> tuple[list[FiledAlert], dict[str, tuple[Acknowledgement, ...]]]:
        with self._lock:
            self._refresh_file()
            # Acknowledgements change when the ledger grows or someone's oversight role does.
            key = (self._vault.store.event_count(), _oversight(self._vault))
            if key != self._acks_key:
                self._acks = _read_acks(self._vault, key[1])
                self._acks_key = key
            return self._filed, self._acks

    def _refresh_file(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._file_key, self._filed = None, []
            return
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read ({exc.strerror or exc})") from exc
        key = (stat.st_mtime_ns, stat.st_size)
        if key == self._file_key:
            return
        try:
            rows = read_alerts(self._home)
        except InputError as exc:
            raise StoreError(f"the alerts file is damaged: {exc.diagnostics()}") from exc
        self._filed = _file(rows)
        self._file_key = key


def _file(rows: Iterable[dict[str, Any]]) -> list[FiledAlert]:
    """File the alerts-file rows: skip malformed ones (logged), collapse repeats, sort."""
    filed: dict[str, FiledAlert] = {}
    for number, row in enumerate(rows, 1):
        try:
            alert = _filed(row)
        except (KeyError, TypeError, ValueError) as exc:
            _log.warning("alerts file line %d is not an alert (%s); skipped", number, exc)
            continue
        filed.setdefault(alert.alert_id, alert)
    return sorted(filed.values(), key=_order)


def _order(alert: FiledAlert) -> tuple[int, float, float, str]:
    raised = alert.raised_at or alert.last_ts
    return (SEVERITIES.index(alert.severity), -raised.timestamp(), -alert.score, alert.accessor)


def _filed(row: dict[str, Any]) -> FiledAlert:
    """Build a filed alert from one alerts-file row.

    Raises:
        KeyError, TypeError, ValueError: the row lacks a field or has one of the wrong type.
    """
    accessor, kind, first = _text(row, "accessor"), _text(row, "kind"), _text(row, "first_ts")
    score = row["score"]
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise TypeError("'score' must be a number")
    evidence = row["evidence"]
    if not isinstance(evidence, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in evidence
    ):
        raise TypeError("'evidence' must be a list of ledger indexes")
    kinds = row.get("kinds") or [kind]
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise TypeError("'kinds' must be a list of strings")
    raised = row.get("raised_at")
    return FiledAlert(
        alert_id=alert_id(accessor, kind, first, evidence),
        accessor=accessor,
        kind=kind,
        kinds=tuple(kinds),
        severity=severity_of(kinds, float(score)),
        score=float(score),
        first_ts=_moment(first),
        last_ts=_moment(_text(row, "last_ts")),
        raised_at=_moment(raised) if isinstance(raised, str) else None,
        explanation=str(row.get("explanation") or ""),
        evidence=tuple(sorted(set(evidence))),
        live=row.get("live") is True,
    )


def _text(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"'{key}' must be a non-empty string")
    return value


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def _with_acks(alert: FiledAlert, acks: dict[str, tuple[Acknowledgement, ...]]) -> FiledAlert:
    found = acks.get(alert.alert_id, ())
    if not found:
        return alert
    return replace(alert, acknowledgements=found)


def _oversight(vault: Vault) -> tuple[str, ...]:
    """The registered accessors who hold an oversight role now."""
    roles = vault.policy.oversight_roles
    return tuple(a.accessor for a in vault.store.accessors() if a.role in roles)


def _read_acks(vault: Vault, authors: Sequence[str]) -> dict[str, tuple[Acknowledgement, ...]]:
    """Collect the acknowledgements the ledger holds by these (oversight) accessors."""
    roles = vault.policy.oversight_roles
    found: list[Acknowledgement] = []
    for author in authors:
        for seq, event in vault.store.accessor_events(author, _ACK_SCAN):
            if event.action != Action.ALERT_ACK or event.decision != "allow":
                continue
            match = _ACK_REASON.fullmatch(event.reason)
            if match is not None and event.role in roles:
                found.append(_acknowledgement(vault, match.group(1), seq, event))
    by_alert: dict[str, list[Acknowledgement]] = {}
    for ack in sorted(found, key=lambda a: a.seq):
        by_alert.setdefault(ack.alert_id, []).append(ack)
    return {key: tuple(acks) for key, acks in by_alert.items()}


def _acknowledgement(vault: Vault, alert: str, seq: int, event: AccessEvent) -> Acknowledgement:
    try:
        note = vault.audit_note(event)
    except CryptoError:
        _log.warning("the note of acknowledgement %d failed authentication: altered?", seq)
        note = None
    return Acknowledgement(alert, seq, event.accessor, event.org, event.role, event.ts, note)


def events_at(vault: Vault, seqs: Iterable[int]) -> Iterator[tuple[int, AccessEvent]]:
    """Yield the events at these ledger indexes ``(seq, event)`` in index order, reading
    nearby indexes in one range query. Indexes the store does not hold are left out.

    Raises:
        StoreError: the store could not be read.
    """
    keep = set(seqs)
    for start, stop in _runs(sorted(keep)):
        for seq, event in vault.store.events(start, stop):
            if seq in keep:
                yield seq, event


def _runs(seqs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Group sorted indexes into ranges ``[start, stop)`` with gaps under _EVIDENCE_GAP."""
    if not seqs:
        return
    start = last = seqs[0]
    for seq in seqs[1:]:
        if seq - last >= _EVIDENCE_GAP:
            yield start, last + 1
            start = seq
        last = seq
    yield start, last + 1
