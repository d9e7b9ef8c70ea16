"""Store.event_counts and Store.events_about: what the dashboard counts in the database must
equal counting the events one by one, on both backends, for every local day of any time zone."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from custodes.model import AccessEvent
from custodes.store import Store

ORGS = ("police-1", "hotel-2", "bank-3")
PURPOSES = ("identity_check", "registration", None)
ACTIONS = ("get", "find", "put", "export", "case_open")
OFFSETS = (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=5, minutes=45)))
ZONES = ("Asia/Shanghai", "Asia/Kathmandu", "America/St_Johns", "UTC")
T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def _event(rng: random.Random, i: int) -> AccessEvent:
    # Times cluster around local midnights and quarter-hour edges, where a bucket could go
    # to the wrong day.
    ts = T0 + timedelta(minutes=rng.choice((0, 14, 15, 29, 44, 45, 59, 60)) + 97 * i)
    return AccessEvent(
        ts=ts.astimezone(rng.choice(OFFSETS)).replace(microsecond=rng.choice((0, 123456))),
        accessor=f"acc-{i % 5}",
        org=rng.choice(ORGS),
        role="duty_officer",
        action=rng.choice(ACTIONS),
        collection="identity",
        fields=("name",),
        subject=f"subject-{rng.randrange(12)}",
        purpose=rng.choice(PURPOSES),
        case=None,
        decision=rng.choice(("allow", "allow", "deny")),
        reason="r",
        count=1,
        break_glass=rng.random() < 0.1,
    )


@pytest.fixture
def written(store: Store) -> list[AccessEvent]:
    rng = random.Random(5)
    events = [_event(rng, i) for i in range(600)]
    for first in range(0, len(events), 97):
        with store.transaction() as tx:
            tx.append_events(events[first : first + 97])
    return events


@pytest.mark.parametrize("zone", ZONES)
def test_counts_in_the_database_equal_counting_each_event(
    store: Store, written: list[AccessEvent], zone: str
) -> None:
    tz = ZoneInfo(zone)
    expected: Counter[tuple[object, ...]] = Counter(
        (e.ts.astimezone(tz).date(), e.org, e.purpose, e.action, e.decision, e.break_glass)
        for e in written[100:550]
    )
    counted: Counter[tuple[object, ...]] = Counter()
    for row in store.event_counts(100, 550):
        day = row.quarter.astimezone(tz).date()
        counted[day, row.org, row.purpose, row.action, row.decision, row.break_glass] += row.count
    assert counted == expected
    assert sum(row.count for row in store.event_counts()) == len(written)
    assert store.event_counts(600, 700) == []


def test_quarters_start_on_the_quarter_hour_in_the_written_offset(
    store: Store, written: list[AccessEvent]
) -> None:
    for row in store.event_counts():
        assert row.quarter.minute % 15 == 0 and row.quarter.second == 0
        assert row.quarter.utcoffset() in {o.utcoffset(None) for o in OFFSETS}


def test_events_about_subjects_in_a_range(store: Store, written: list[AccessEvent]) -> None:
    wanted = ["subject-3", "subject-7", "nobody"]
    found = store.events_about(wanted, 50, 400)
    expected = [(seq, e) for seq, e in enumerate(written) if 50 <= seq < 400]
    assert [seq for seq, _ in found] == [seq for seq, e in expected if e.subject in wanted]
    assert all(event == written[seq] for seq, event in found)
    assert store.events_about([], 0, 600) == []
