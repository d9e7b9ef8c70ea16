"""LocalDays: the start of a moment's local day, remembered for the day last asked about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.clock import LocalDays

# Zones with daylight saving time, some of them switching at midnight (Havana, Santiago,
# Beirut), one by half an hour (Lord Howe), and the policy's default zone and UTC.
ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/Havana",
    "America/Santiago",
    "Asia/Beirut",
    "Australia/Lord_Howe",
]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _changes(zone: str) -> list[datetime]:
    """Noon (UTC) of each day on which ``zone``'s offset changes, 2000-2040."""
    tz = ZoneInfo(zone)
    found, day = [], EPOCH + timedelta(hours=12)
    offset = day.astimezone(tz).utcoffset()
    for _ in range(40 * 366):
        day += timedelta(days=1)
        now = day.astimezone(tz).utcoffset()
        if now != offset:
            found.append(day - timedelta(days=1))
            offset = now
    return found or [day]


CHANGES = {zone: _changes(zone) for zone in ZONES}


def _reference(moment: datetime, zone: ZoneInfo) -> datetime:
    """What the vault computed for every read before LocalDays remembered anything."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    change=st.integers(0, 10_000),
    offset=st.integers(-36, 36),
    # Steps forward and back of up to a day and a half (hours, minutes): moments cross local
    # midnights on the days a zone's offset changes, and around them.
    steps=st.lists(st.tuples(st.integers(-36, 36), st.integers(0, 59)), min_size=1, max_size=40),
)
def test_the_remembered_day_gives_what_the_conversion_gives(
    zone: str, change: int, offset: int, steps: list[tuple[int, int]]
) -> None:
    tz = ZoneInfo(zone)
    days = LocalDays(tz)
    changes = CHANGES[zone]
    moment = changes[change % len(changes)] + timedelta(hours=offset)
    for hours, minutes in steps:
        moment += timedelta(hours=hours, minutes=minutes)
        assert days.start(moment) == _reference(moment, tz), moment


def test_a_short_day_ends_at_the_next_local_midnight() -> None:
    days = LocalDays(ZoneInfo("Europe/Berlin"))  # 2026-03-29 has 23 hours there
    noon = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert days.start(noon) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    after_midnight = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # 00:30 on the 30th
    assert days.start(after_midnight) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


def test_a_new_local_day_begins_at_local_midnight() -> None:
    days = LocalDays(ZoneInfo("Asia/Shanghai"))
    ten = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    midnight = datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert days.start(ten) == midnight
    assert days.start(midnight + timedelta(days=1) - timedelta(microseconds=1)) == midnight
    assert days.start(midnight + timedelta(days=1)) == midnight + timedelta(days=1)
    assert days.start(midnight - timedelta(microseconds=1)) == midnight - timedelta(days=1)
