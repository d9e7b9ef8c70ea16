"""The binary encodings the backends share: exact round trips, malformed input refused."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custodes.errors import StoreError
from custodes.model import AccessEvent
from custodes.store._codec import (
    as_utc,
    decode_fields,
    decode_refs,
    encode_fields,
    encode_refs,
    event_from_row,
    event_params,
    since_bound,
)

names = st.text(min_size=0, max_size=20)
field_dicts = st.dictionaries(names, st.binary(max_size=64), max_size=8)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=offsets
)


@given(field_dicts)
def test_fields_round_trip(fields: dict[str, bytes]) -> None:
    assert decode_fields(encode_fields(fields)) == fields


@given(field_dicts)
def test_field_encoding_ignores_insertion_order(fields: dict[str, bytes]) -> None:
    reversed_order = dict(reversed(list(fields.items())))
    assert encode_fields(reversed_order) == encode_fields(fields)


@given(st.frozensets(st.binary(max_size=40), max_size=10))
def test_refs_round_trip(refs: frozenset[bytes]) -> None:
    assert decode_refs(encode_refs(refs)) == refs


@given(field_dicts.filter(bool), st.data())
def test_truncated_body_is_a_store_error(fields: dict[str, bytes], data: st.DataObject) -> None:
    body = encode_fields(fields)
    cut = data.draw(st.integers(min_value=1, max_value=len(body) - 1)) if len(body) > 1 else 0
    if cut == 0:
        return
    try:
        decoded = decode_fields(body[:cut])
    except StoreError:
        return
    # A cut exactly on an item boundary is a shorter valid body: it must then lose a field.
    assert decoded != fields


def test_malformed_bodies_are_store_errors_without_values() -> None:
    secret = b"110101199003077777"
    item = struct.pack(">H", 1) + b"a" + struct.pack(">I", len(secret)) + secret
    bad = {
        "truncated length": b"\x00",
        "truncated value": item[:-1],
        "repeated field": item + item,
        "non-utf8 name": struct.pack(">H", 1) + b"\xff" + struct.pack(">I", 0),
    }
    for label, body in bad.items():
        with pytest.raises(StoreError) as caught:
            decode_fields(body)
        assert secret.decode() not in str(caught.value), label


@given(moments, st.tuples(st.text(max_size=5)), st.booleans())
def test_event_row_round_trip_keeps_canonical_bytes(
    ts: datetime, fields: tuple[str], glass: bool
) -> None:
    event = AccessEvent(
        ts, "a", "o", "r", "get", None, fields, None, None, None, "deny", "why", 0, glass, None
    )
    seq, back = event_from_row(event_params(7, event))
    assert seq == 7
    assert back.canonical() == event.canonical()


@given(moments, moments)
def test_since_bound_never_excludes_a_later_event(since: datetime, ts: datetime) -> None:
    if ts >= since:
        assert ts.isoformat() >= since_bound(since)


@given(moments)
def test_since_bound_reads_no_more_than_a_day_before(since: datetime) -> None:
    # A UTC-stamped event a day and a second before ``since`` is below the bound.
    older = as_utc(since) - timedelta(days=1, seconds=1)
    assert older.isoformat() < since_bound(since)


def test_since_bound_of_naive_time_is_taken_as_utc() -> None:
    assert since_bound(datetime(2024, 3, 2, 0, 0)) == since_bound(datetime(2024, 3, 2, tzinfo=UTC))
