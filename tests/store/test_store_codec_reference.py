"""The hot-path encoders against naive references: same output, same refusals.

``decode_fields`` (record bodies, read once per record) and the ``fields`` column of
``event_params`` are written for speed; each is checked here against the plain code it
replaced, on arbitrary input.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import StoreError
from custodes.model import AccessEvent
from custodes.store import encode_events, encode_like
from custodes.store._codec import decode_fields, encode_fields, event_columns, event_params


def _take(data: bytes, pos: int, prefix: struct.Struct, what: str) -> tuple[bytes, int]:
    if pos + prefix.size > len(data):
        raise StoreError(f"stored data is malformed: the length of a {what} is truncated")
    (length,) = prefix.unpack_from(data, pos)
    start = pos + prefix.size
    end = start + length
    if end > len(data):
        raise StoreError(f"stored data is malformed: a {what} is truncated")
    return bytes(data[start:end]), end


def reference_decode(body: bytes) -> dict[str, bytes]:
    """The record-body decoder as first written (one helper call per length prefix)."""
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < len(body):
        raw_name, pos = _take(body, pos, struct.Struct(">H"), "field name")
        value, pos = _take(body, pos, struct.Struct(">I"), "field value")
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError("stored record body is malformed: a field name is not UTF-8") from exc
        if name in fields:
            raise StoreError(f"stored record body is malformed: field '{name}' appears twice")
        fields[name] = value
    return fields


def _outcome(decode: object, body: bytes) -> object:
    try:
        return decode(body)  # type: ignore[operator]
    except StoreError as exc:
        return ("error", str(exc))


field_dicts = st.dictionaries(st.text(max_size=12), st.binary(max_size=40), max_size=6)


@settings(max_examples=300)
@given(field_dicts, st.data())
def test_decode_matches_the_reference_on_cut_and_spliced_bodies(
    fields: dict[str, bytes], data: st.DataObject
) -> None:
    body = encode_fields(fields)
    cut = data.draw(st.integers(min_value=0, max_value=len(body)))
    junk = data.draw(st.binary(max_size=8))
    for candidate in (body, body[:cut], body[:cut] + junk, body + body[:cut]):
        assert _outcome(decode_fields, candidate) == _outcome(reference_decode, candidate)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decode_matches_the_reference_on_random_bytes(body: bytes) -> None:
    assert _outcome(decode_fields, body) == _outcome(reference_decode, body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00", "the length of a field name is truncated"),
        (b"\x00\x05ab", "a field name is truncated"),
        (b"\x00\x01a\x00\x00", "the length of a field value is truncated"),
        (b"\x00\x01a\x00\x00\x00\x09xy", "a field value is truncated"),
        (b"\x00\x01\xff\x00\x00\x00\x00", "not UTF-8"),
        (b"\x00\x01a\x00\x00\x00\x00" * 2, "appears twice"),
    ],
)
def test_malformed_bodies_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        decode_fields(body)


def test_decode_takes_any_buffer_and_returns_bytes() -> None:
    body = encode_fields({"name": b"ciphertext", "phone": b""})
    for view in (bytearray(body), memoryview(body)):
        decoded = decode_fields(view)  # type: ignore[arg-type]
        assert decoded == {"name": b"ciphertext", "phone": b""}
        assert all(type(v) is bytes for v in decoded.values())


@given(st.lists(st.text(max_size=10), max_size=8))
def test_event_fields_column_is_the_json_of_the_names(names: list[str]) -> None:
    event = AccessEvent(
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        accessor="a",
        org="o",
        role="r",
        action="get",
        collection="identity",
        fields=tuple(names),
        subject=None,
        purpose="p",
        case=None,
        decision="allow",
        reason="why",
        count=0,
    )
    column = event_params(0, event)[7]
    assert column == json.dumps(names, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(column) == names


# A few shared objects, so that neighbouring events hold the very same ones (as a bulk write's
# do) or equal values of other types (1 and True), with subjects of every kind.
_MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_TEMPLATE = AccessEvent(
    ts=_MOMENT,
    accessor="loader",
    org="registry",
    role="registrar",
    action="put",
    collection="identity",
    fields=("id_number", "name"),
    subject="0" * 32,
    purpose="registration",
    case=None,
    decision="allow",
    reason="allowed by grant registrar/registration",
    count=1,
)
_CHANGES = st.sampled_from(
    [
        {},
        {},
        {},
        {"ts": datetime(2026, 3, 1, 12, 0, tzinfo=UTC)},  # equal, another object
        {"count": True},
        {"break_glass": 1},
        {"fields": ("id_number", 3)},
        {"fields": ["id_number", "name"]},
        {"justification": "sealed"},
        {"reason": 'quote " and ,"ts": inside'},
        {"case": "case-1"},
    ]
)
_SUBJECTS = st.none() | st.text(max_size=40) | st.sampled_from([7, 'x","ts":"y'])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_CHANGES, _SUBJECTS), max_size=12))
def test_encoded_events_are_each_events_own_encoding(
    changes: list[tuple[dict[str, object], object]],
) -> None:
    events = [replace(_TEMPLATE, subject=subject, **change) for change, subject in changes]  # type: ignore[arg-type]
    try:
        expected = [(event.canonical_halves(), event_columns(event)) for event in events]
    except (TypeError, UnicodeEncodeError):
        with pytest.raises((TypeError, UnicodeEncodeError)):
            encode_events(events)
        return
    encoded = encode_events(events)
    assert list(zip(encoded.halves, encoded.columns, strict=True)) == expected


@settings(max_examples=300, deadline=None)
@given(_CHANGES, st.lists(_SUBJECTS, max_size=12))
def test_events_encoded_like_a_template_are_encoded_as_each_event_alone(
    change: dict[str, object], subjects: list[object]
) -> None:
    """``encode_like`` (a bulk batch's events, never made) gives ``encode_events``' bytes for
    the events it stands for, whatever the template's values and the subjects' types."""
    template = replace(_TEMPLATE, **change)  # type: ignore[arg-type]
    events = [replace(template, subject=subject) for subject in subjects]  # type: ignore[arg-type]
    try:
        expected = encode_events(events)
    except (TypeError, UnicodeEncodeError):
        with pytest.raises((TypeError, UnicodeEncodeError)):
            encode_like(template, subjects)  # type: ignore[arg-type]
        return
    encoded = encode_like(template, subjects)  # type: ignore[arg-type]
    assert encoded.halves == expected.halves and encoded.columns == expected.columns
