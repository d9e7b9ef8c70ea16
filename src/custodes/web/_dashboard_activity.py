"""What the dashboard's charts count: one pass over the ledger's events, extended as it grows.

The first look at the dashboard counts every event once, in the database (one row per quarter
hour and kind of event comes back, not one per event; the pass still starts in the background
when the sign-in page is shown); afterwards each look counts only the events appended since, so
the counts are keyed by ledger size and never recomputed. What is counted:

- **accesses**: allowed record disclosures (``get``, ``find``, ``export``) per local day of the
  policy's time zone, by organization and by purpose (writes are data arriving, not access);
- **denials**: refused events of any action, per day;
- **canary touches**: every event about a subject flagged ``canary`` in
  ``<home>/detect/subjects.jsonl`` but the writes that planted it, allowed or refused (when
  that file changes, the pass starts over);
- **break-glass** accesses per day.

Totals cover the whole ledger; the per-day series the last :data:`CHART_DAYS` days with counts.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from custodes.detect import read_subjects
from custodes.errors import CustodesError
from custodes.model import AccessEvent, Action

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = ["CHART_DAYS", "DISCLOSURES", "Activity", "ActivityCounter"]

DISCLOSURES = frozenset({Action.GET.value, Action.FIND.value, Action.EXPORT.value})
"""The actions that disclose records: what "access volume" counts."""

CHART_DAYS = 92
"""The charts show at most this many days, ending with the last day anything was counted."""

_MAX_TOUCHES = 500  # canary touches kept for the table (newest); the per-day counts keep all
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Activity:
    """The counts at one ledger size; series are aligned with ``days`` (oldest first)."""

    size: int
    days: tuple[date, ...]
    by_org: Mapping[str, tuple[int, ...]]
    by_purpose: Mapping[str, tuple[int, ...]]
    denials: tuple[int, ...]
    break_glass: tuple[int, ...]
    canary: tuple[int, ...]
    touches: tuple[tuple[int, AccessEvent], ...]  # newest first
    totals: Mapping[str, int]


class ActivityCounter:
    """Counts a vault's events for the dashboard; safe to share between threads."""

    def __init__(self, *, vault: Vault) -> None:
        self._vault = vault
        self._zone = ZoneInfo(vault.policy.timezone)
        self._subjects = vault.settings.home / "detect" / "subjects.jsonl"
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        self._reset(None)

    def _reset(self, subjects_key: tuple[int, int] | None) -> None:
        self._subjects_key = subjects_key
        self._canaries = _canaries(self._subjects) if subjects_key is not None else frozenset()
        self._size = 0
        self._by_org: Counter[tuple[date, str]] = Counter()
        self._by_purpose: Counter[tuple[date, str]] = Counter()
        self._denials: Counter[date] = Counter()
        self._glass: Counter[date] = Counter()
        self._canary: Counter[date] = Counter()
        self._touches: list[tuple[int, AccessEvent]] = []
        self._days: set[date] = set()

    @property
    def canaries(self) -> frozenset[str]:
        """The pseudonyms flagged canary in ``subjects.jsonl`` (as of the last count)."""
        return self._canaries

    def warm(self) -> None:
        """Start bringing the counts up to date in a background thread (once)."""
        with self._lock:
            if self._warming is not None:
                return
            self._warming = threading.Thread(
                target=self._warm, name="custodes-dashboard-warm", daemon=True
            )
        self._warming.start()

    def _warm(self) -> None:
        try:
            self.current()
        except CustodesError:
            _log.exception("counting the ledger for the dashboard failed; pages will retry")

    def current(self) -> Activity:
        """Count the events appended since the last call; return the counts.

        Raises:
            StoreError: the store could not be read.
        """
        with self._lock:
            key = _file_key(self._subjects)
            if key != self._subjects_key:
                self._reset(key)
            size = self._vault.store.event_count()
            if size > self._size:
                self._count(self._size, size)
            return self._snapshot()

    def _count(self, start: int, stop: int) -> None:
        # Counted in the database (a row per quarter hour and kind of event, not per event);
        # only the events about canaries are read one by one, for the table of touches.
        days: dict[datetime, date] = {}
        for row in self._vault.store.event_counts(start, stop):
            day = days.get(row.quarter)
            if day is None:
                day = days[row.quarter] = row.quarter.astimezone(self._zone).date()
            counted = True
            if row.decision != "allow":
                self._denials[day] += row.count
            elif row.action in DISCLOSURES:
                self._by_org[day, row.org] += row.count
                self._by_purpose[day, row.purpose or "(none)"] += row.count
            else:
                counted = False
            if row.break_glass:
                self._glass[day] += row.count
            if counted:  # writes, case changes and acknowledgements do not widen the charts
                self._days.add(day)
        if self._canaries:
            for seq, event in self._vault.store.events_about(sorted(self._canaries), start, stop):
                if event.action == Action.PUT:  # the planting
                    continue
                day = event.ts.astimezone(self._zone).date()
                self._canary[day] += 1
                self._touches.append((seq, event))
                self._days.add(day)
        del self._touches[:-_MAX_TOUCHES]
        self._size = max(self._size, stop)

    def _snapshot(self) -> Activity:
        days = _span(self._days)
        return Activity(
            size=self._size,
            days=days,
            by_org=_series(self._by_org, days),
            by_purpose=_series(self._by_purpose, days),
            denials=tuple(self._denials[d] for d in days),
            break_glass=tuple(self._glass[d] for d in days),
            canary=tuple(self._canary[d] for d in days),
            touches=tuple(reversed(self._touches)),
            totals={
                "events": self._size,
                "accesses": sum(self._by_org.values()),
                "denials": sum(self._denials.values()),
                "break_glass": sum(self._glass.values()),
                "canary_touches": sum(self._canary.values()),
            },
        )


def _span(days: set[date]) -> tuple[date, ...]:
    """Every day from the first one counted to the last (quiet days as zeros), at most the
    last :data:`CHART_DAYS`."""
    if not days:
        return ()
    last = max(days)
    first = max(min(days), last - timedelta(days=CHART_DAYS - 1))
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def _series(
    counts: Counter[tuple[date, str]], days: tuple[date, ...]
) -> dict[str, tuple[int, ...]]:
    """Per name, its count on each day; names ordered by total, largest first."""
    totals: Counter[str] = Counter()
    for (_, name), n in counts.items():
        totals[name] += n
    return {name: tuple(counts[d, name] for d in days) for name, _ in totals.most_common()}


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _canaries(path: Path) -> frozenset[str]:
    try:
        return frozenset(s.subject for s in read_subjects(path).values() if s.canary)
    except CustodesError:
        _log.exception("%s cannot be read; no canary is marked on the dashboard", path)
        return frozenset()
