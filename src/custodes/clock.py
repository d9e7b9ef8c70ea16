"""Time as a collaborator, so that tests control it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["Clock", "LocalDays", "ManualClock", "system_clock"]

Clock = Callable[[], datetime]
"""A clock returns the current time as an aware datetime."""


def system_clock() -> datetime:
    """Return the current UTC time."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (for tests and simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.now += delta


class LocalDays:
    """When the local day (in ``zone``) holding a moment began, in UTC.

    The answer is local midnight of the moment's local date, as ``astimezone`` and ``replace``
    give it. The last day asked about is remembered as a [start, end) span in UTC, so a moment
    inside it costs two comparisons instead of two time-zone conversions (a vault asks once
    per read, for its daily limits).
    """

    def __init__(self, zone: tzinfo) -> None:
        self._zone = zone
        self._last: tuple[datetime, datetime] | None = None

    def start(self, moment: datetime) -> datetime:
        """Local midnight of ``moment``'s local date, in UTC (``moment`` must be aware)."""
        last = self._last
        if last is not None and last[0] <= moment < last[1]:
            return last[0]
        midnight = moment.astimezone(self._zone).replace(hour=0, minute=0, second=0, microsecond=0)
        following = datetime.combine(midnight.date() + timedelta(days=1), midnight.timetz())
        span = (midnight.astimezone(UTC), following.astimezone(UTC))
        self._last = span if span[0] < span[1] else None  # a zone's oddity: do not remember
        return span[0]
