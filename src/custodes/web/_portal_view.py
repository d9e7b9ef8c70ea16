"""What the portal page shows: a subject's entries as rows, the filters, the timeline chart.

Rows are rendered here from the store's events projection so the page is readable at once;
``static/portal.js`` then re-renders every row from the ledger entry bytes it verified, with the
same labels (``ACTION_LABELS`` has a twin in ``static/portal.js``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from custodes.model import AccessEvent

__all__ = ["ACTION_LABELS", "Filters", "Timeline", "options", "row", "timeline"]

ACTION_LABELS = {
    "get": "read",
    "find": "search",
    "put": "write",
    "export": "export",
    "shred": "erase",
    "case_open": "case opened",
    "case_approve": "case approved",
    "case_close": "case closed",
}
_CHART_WIDTH = 720
_CHART_HEIGHT = 120
_MAX_DAYS = 400  # a longer range shows its newest 400 days
_MAX_BAR = 36.0  # a few days' bars stay bars, not blocks


def when(ts: datetime) -> str:
    """The time of an access as the page shows it (UTC, to the minute)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's filters, from query parameters; empty ones match everything. Dates are
    inclusive days in UTC; a malformed date is ignored (and named in ``ignored``)."""

    org: str = ""
    purpose: str = ""
    action: str = ""
    collection: str = ""
    decision: str = ""
    start: date | None = None
    end: date | None = None
    ignored: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        """Build the filters from a query string's parameters (unknown ones are ignored)."""
        start, end = _parse_day(query.get("from")), _parse_day(query.get("to"))
        ignored = tuple(
            name for name, day in (("from", start), ("to", end)) if query.get(name) and day is None
        )
        return cls(
            org=query.get("org", ""),
            purpose=query.get("purpose", ""),
            action=query.get("action", ""),
            collection=query.get("collection", ""),
            decision=query.get("decision", ""),
            start=start,
            end=end,
            ignored=ignored,
        )

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        values = (self.org, self.purpose, self.action, self.collection, self.decision)
        return any(values) or self.start is not None or self.end is not None

    def matches(self, event: AccessEvent) -> bool:
        """Whether an event passes every filter."""
        pairs = (
            (self.org, event.org),
            (self.purpose, event.purpose or ""),
            (self.action, event.action),
            (self.collection, event.collection or ""),
            (self.decision, event.decision),
        )
        if any(want and want != have for want, have in pairs):
            return False
        day = _day(event.ts)
        return not ((self.start and day < self.start) or (self.end and day > self.end))


def row(seq: int, event: AccessEvent) -> dict[str, Any]:
    """One table row's values."""
    return {
        "seq": seq,
        "when": when(event.ts),
        "org": event.org,
        "accessor": event.accessor,
        "role": event.role,
        "action": ACTION_LABELS.get(event.action, event.action),
        "collection": event.collection or "",
        "fields": ", ".join(event.fields),
        "purpose": event.purpose or "—",
        "case": event.case or "—",
        "decision": "allowed" if event.decision == "allow" else "denied",
        "reason": event.reason,
        "break_glass": event.break_glass,
    }


def options(events: Sequence[tuple[int, AccessEvent]]) -> dict[str, list[str]]:
    """The values each filter can take, from all of the subject's entries."""
    return {
        "org": sorted({e.org for _, e in events}),
        "purpose": sorted({e.purpose for _, e in events if e.purpose}),
        "action": sorted({e.action for _, e in events}),
        "collection": sorted({e.collection for _, e in events if e.collection}),
    }


@dataclass(frozen=True, slots=True)
class Timeline:
    """Accesses per day as SVG bars: each bar is (x, width, allowed height, denied height,
    label); ``ticks`` (x of the day's centre, label) name the first day, the last and every
    month start between."""

    width: int
    height: int
    bars: list[tuple[float, float, float, float, str]]
    ticks: list[tuple[float, str]]
    peak: int


def timeline(events: Sequence[tuple[int, AccessEvent]]) -> Timeline | None:
    """The chart of accesses per day over the days the events span, or ``None`` if none."""
    if not events:
        return None
    allowed = Counter(_day(e.ts) for _, e in events if e.decision == "allow")
    denied = Counter(_day(e.ts) for _, e in events if e.decision != "allow")
    last = max(_day(e.ts) for _, e in events)
    first = max(min(_day(e.ts) for _, e in events), last - timedelta(days=_MAX_DAYS - 1))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    peak = max(allowed[d] + denied[d] for d in days) or 1
    step = _CHART_WIDTH / len(days)
    scale = (_CHART_HEIGHT - 4) / peak
    width = min(max(step * 0.8, 1.0), _MAX_BAR)
    bars = [
        (
            round(i * step + (step - width) / 2, 2),
            round(width, 2),
            round(allowed[d] * scale, 2),
            round(denied[d] * scale, 2),
            f"{d.isoformat()}: {allowed[d]} allowed, {denied[d]} denied",
        )
        for i, d in enumerate(days)
        if allowed[d] or denied[d]
    ]
    ticks = [
        (round(i * step + step / 2, 2), d.isoformat())
        for i, d in enumerate(days)
        if i == 0 or i == len(days) - 1 or d.day == 1
    ]
    return Timeline(_CHART_WIDTH, _CHART_HEIGHT, bars, ticks, peak)
