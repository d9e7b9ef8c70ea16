"""Ledger entry bytes: ``AccessEvent.canonical`` is the documented JSON, on any input.

The encoder writes the entry directly for speed; it is checked here against ``json.dumps`` of
the body docs/ledger.md defines (sorted keys, no white space, UTF-8, microsecond timestamps).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custodes.model import AccessEvent

texts = st.text(max_size=16)
maybe = st.none() | texts
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9000, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)
events = st.builds(
    AccessEvent,
    ts=moments,
    accessor=texts,
    org=texts,
    role=texts,
    action=texts,
    collection=maybe,
    fields=st.lists(texts, max_size=6).map(tuple),
    subject=maybe,
    purpose=maybe,
    case=maybe,
    decision=st.sampled_from(["allow", "deny"]),
    reason=texts,
    count=st.integers(min_value=0, max_value=2**70),
    break_glass=st.booleans(),
    justification=maybe,
)


PLAIN = AccessEvent(
    ts=datetime(2026, 1, 1, tzinfo=UTC),
    accessor="a",
    org="o",
    role="r",
    action="get",
    collection=None,
    fields=(),
    subject=None,
    purpose="p",
    case=None,
    decision="allow",
    reason="why",
    count=1,
)


def reference(event: AccessEvent, seq: int | None) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "ts": event.ts.isoformat(timespec="microseconds"),
        "accessor": event.accessor,
        "org": event.org,
        "role": event.role,
        "action": event.action,
        "collection": event.collection,
        "fields": list(event.fields),
        "subject": event.subject,
        "purpose": event.purpose,
        "case": event.case,
        "decision": event.decision,
        "reason": event.reason,
        "count": event.count,
        "break_glass": event.break_glass,
        "justification": event.justification,
    }
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(events, st.none() | st.integers(min_value=0, max_value=2**63))
def test_canonical_is_the_documented_json(event: AccessEvent, seq: int | None) -> None:
    assert event._halves_fast() is not None  # the fast path, not the fallback
    assert event.canonical(seq) == reference(event, seq)


@given(events, st.integers(min_value=0, max_value=2**63))
def test_the_halves_join_around_any_position_into_the_entry(event: AccessEvent, seq: int) -> None:
    # What a store encodes before its write lock, then completes with the position it is given.
    head, tail = event.canonical_halves()
    assert head + b'"seq":%d,' % seq + tail == reference(event, seq)
    assert head + tail == reference(event, None)


@pytest.mark.parametrize("seq", [True, 1.0, "3", None.__class__])
def test_a_position_that_is_not_an_int_is_refused(seq: object) -> None:
    with pytest.raises(TypeError, match="seq must be an int"):
        PLAIN.canonical(seq)  # type: ignore[arg-type]


@given(events)
def test_strings_that_need_escaping_are_escaped_as_json_does(event: AccessEvent) -> None:
    tricky = replace(event, reason='quote " backslash \\ newline \n tab \t nul \x00 \u2028 张')
    assert tricky.canonical(3) == reference(tricky, 3)
    assert json.loads(tricky.canonical(3))["reason"] == tricky.reason


@pytest.mark.parametrize(
    "odd",
    [
        {"count": True},
        {"count": 2.5},
        {"break_glass": 1},
        {"fields": ("name", 3)},
        {"subject": 12},
    ],
)
def test_values_of_undeclared_types_still_encode_as_json_does(odd: dict[str, object]) -> None:
    odd_event = replace(PLAIN, **{"fields": ("name",), **odd})  # type: ignore[arg-type]
    assert odd_event._halves_fast() is None  # the general path
    assert odd_event.canonical(7) == reference(odd_event, 7)
    assert odd_event.canonical() == reference(odd_event, None)
    head, tail = odd_event.canonical_halves()
    assert head + b'"seq":7,' + tail == reference(odd_event, 7)


def test_lone_surrogates_are_refused_as_before() -> None:
    event = replace(PLAIN, accessor="\ud800", purpose=None, decision="deny", count=0)
    with pytest.raises(UnicodeEncodeError):
        reference(event, 0)
    with pytest.raises(UnicodeEncodeError):
        event.canonical(0)
