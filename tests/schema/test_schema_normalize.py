"""Normalization: one canonical spelling per value, specific errors that never quote the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from custodes.errors import InputError
from custodes.schema import (
    DataClass,
    Field,
    FieldType,
    Schema,
    normalize_id_number,
    normalize_phone,
)
from custodes.sim import generate_people

GOOD_ID = "110101199003071233"  # a valid checksum for Dongcheng, Beijing, 1990-03-07
# The same digits in their full-width forms, as a Chinese input method may type them.
FULLWIDTH_ID = "".join(chr(ord(c) + 0xFEE0) for c in GOOD_ID)


def with_check(body: str) -> str:
    """An 18-character ID number with the correct check character for ``body`` (17 chars)."""
    return body + ric.calc_check_digit(body + "0")


def field(kind: FieldType, max_length: int = 64) -> Field:
    return Field(kind.value, DataClass.OTHER, kind, False, False, max_length)


# -- ID numbers -------------------------------------------------------------------------------


def test_valid_id_number_is_compacted_and_upper_cased() -> None:
    body = "11010519491231002"
    number = with_check(body)
    spaced = f" {number[:6]} {number[6:14]} {number[14:].lower()} "
    assert normalize_id_number(spaced) == number
    assert Schema.default().normalize_subject(spaced) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1101011990030712", "not 18 characters"),
        ("1101011990030712345", "not 18 characters"),
        ("11010119900307123Y", "contains characters other than digits and a final X"),
        ("1101011990O3071233", "contains characters other than digits and a final X"),
        (FULLWIDTH_ID, "contains characters other than digits"),
        ("110101199003071234", "checksum digit is wrong"),
        (with_check("11010119901307123"), "birth date or region part is invalid"),  # month 13
        (with_check("99010119900307123"), "birth date or region part is invalid"),  # no region
        (with_check("31011519800101123"), "birth date or region part is invalid"),  # before 1992
    ],
)
def test_each_invalid_id_kind_has_its_own_message(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        Schema.default().normalize_subject(value)
    assert str(info.value).startswith("field 'id_number': ")
    assert value.strip() not in str(info.value) and value[:10] not in str(info.value)
    with pytest.raises(InputError, match=message):
        normalize_id_number(value)


@pytest.mark.parametrize("value", [None, 110101199003071233, b"110101199003071233"])
def test_id_number_must_be_text(value: object) -> None:
    with pytest.raises(InputError, match="field 'id_number' must be text"):
        Schema.default().normalize_subject(value)
    with pytest.raises(InputError, match="ID number must be text"):
        normalize_id_number(value)  # type: ignore[arg-type]


# -- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["13812345678", "138 1234 5678", "+86 138-1234-5678", "0086 13812345678"]
)
def test_phone_spellings_share_one_e164_form(value: str) -> None:
    assert normalize_phone(value) == "+8613812345678"


def test_landline_and_foreign_numbers_are_accepted_in_e164() -> None:
    assert normalize_phone("010 6512 3456") == "+861065123456"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"


@pytest.mark.parametrize("value", ["12345", "138123456789", "not a phone", "", "+86"])
def test_invalid_phone_is_refused_without_quoting_it(value: str) -> None:
    with pytest.raises(InputError, match="not a valid phone number") as info:
        field(FieldType.PHONE).normalize(value)
    assert str(info.value) == "field 'phone': not a valid phone number"
    with pytest.raises(InputError, match="not a valid phone number"):
        normalize_phone(value)


# -- dates and times --------------------------------------------------------------------------


def test_date_must_be_strict_iso() -> None:
    date_field = field(FieldType.DATE)
    assert date_field.normalize(" 2024-02-29 ") == "2024-02-29"
    for bad in ["2023-02-29", "03/07/1990", "1990-3-7", "19900307", "2024-02-29T00:00"]:
        with pytest.raises(InputError, match="field 'date': not a"):
            date_field.normalize(bad)


def test_datetime_is_converted_to_utc() -> None:
    moment = field(FieldType.DATETIME)
    assert moment.normalize("2026-03-01T20:00:00+08:00") == "2026-03-01T12:00:00+00:00"
    assert moment.normalize("2026-03-01T12:00:00Z") == "2026-03-01T12:00:00+00:00"
    assert moment.normalize("2026-03-01 07:00:00.5-05:00") == "2026-03-01T12:00:00.500000+00:00"


@pytest.mark.parametrize("value", ["2026-03-01T20:00:00", "2026-03-01", "2026-03-01 20:00"])
def test_naive_datetime_is_refused(value: str) -> None:
    with pytest.raises(InputError, match="field 'datetime': no UTC offset"):
        field(FieldType.DATETIME).normalize(value)


def test_garbage_datetime_is_refused() -> None:
    with pytest.raises(InputError, match="not an ISO 8601 date and time"):
        field(FieldType.DATETIME).normalize("yesterday at noon")


# -- numbers and positions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("007", "7"), ("+5", "5"), ("-0", "0"), ("-12", "-12"), (42, "42"), (-3, "-3")],
)
def test_integer_forms(value: object, expected: str) -> None:
    assert field(FieldType.INTEGER).normalize(value) == expected


@pytest.mark.parametrize("value", ["1_000", "1.5", "٣", "1e3", "", " ", "0x10", True, 1.0])
def test_integer_refuses_other_forms(value: object) -> None:
    with pytest.raises(InputError, match="field 'integer'"):
        field(FieldType.INTEGER).normalize(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1234.50", "1234.50"), (".5", "0.5"), ("5.", "5"), ("-0.00", "0.00"), (12, "12")],
)
def test_decimal_keeps_scale_in_plain_notation(value: object, expected: str) -> None:
    assert field(FieldType.DECIMAL).normalize(value) == expected


@pytest.mark.parametrize("value", ["1e999999", "NaN", "Infinity", "1,000.00", "12.3.4", False])
def test_decimal_refuses_exponents_and_non_finite(value: object) -> None:
    with pytest.raises(InputError, match="field 'decimal'"):
        field(FieldType.DECIMAL).normalize(value)


def test_geo_is_rounded_to_six_decimals() -> None:
    geo = field(FieldType.GEO)
    assert geo.normalize(" 31.2304 , 121.4737 ") == "31.230400,121.473700"
    assert geo.normalize("-0.0000001,0") == "0.000000,0.000000"
    for bad, problem in [
        ("91,0", "latitude outside"),
        ("0,180.5", "longitude outside"),
        ("31.2", "not a position"),
        ("nan,inf", "not a position"),
        ("1e1,2", "not a position"),
    ]:
        with pytest.raises(InputError, match=problem):
            geo.normalize(bad)


# -- text -------------------------------------------------------------------------------------


def test_names_are_nfc_with_collapsed_spaces() -> None:
    name = field(FieldType.NAME)
    assert name.normalize("  Zoe\u0301   Li \u3000") == "Zoé Li"
    assert name.normalize("王伟") == "王伟"


@pytest.mark.parametrize("kind", [FieldType.NAME, FieldType.STRING])
@pytest.mark.parametrize(
    "value", ["a\x00b", "line\nbreak", "tab\tbed", "\x1b[31mred", "abc\u202egnp.exe", "\x7f"]
)
def test_control_characters_are_refused(kind: FieldType, value: str) -> None:
    with pytest.raises(InputError, match="contains a control character"):
        field(kind).normalize(value)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InputError, match="not valid Unicode text"):
        field(FieldType.STRING).normalize("ab\ud800")


@pytest.mark.parametrize("kind", [FieldType.NAME, FieldType.STRING])
@pytest.mark.parametrize("value", ["", "   ", "\u3000"])
def test_empty_text_is_refused(kind: FieldType, value: str) -> None:
    with pytest.raises(InputError, match="empty value"):
        field(kind).normalize(value)


@pytest.mark.parametrize("value", [None, 42, 4.2, b"bytes", ["a"]])
def test_text_fields_refuse_non_text(value: object) -> None:
    with pytest.raises(InputError, match=r"^field 'string' must be text$"):
        field(FieldType.STRING).normalize(value)


def test_oversized_value_names_size_and_limit() -> None:
    with pytest.raises(InputError, match=r"^field 'name' is 15 bytes; the limit is 12$"):
        field(FieldType.NAME, max_length=12).normalize("张" * 5)
    assert field(FieldType.NAME, max_length=12).normalize("张" * 4) == "张" * 4
    with pytest.raises(InputError, match="is 12 bytes; the limit is 9"):
        field(FieldType.NAME, max_length=12).normalize("张" * 4, max_value_bytes=9)


# -- idempotence ------------------------------------------------------------------------------

_PEOPLE = generate_people(200, seed=11)
_SPACE = st.sampled_from([" ", "  ", "\u3000", "\u00a0"])
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CHARS = st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=_BIDI)
_TEXT = st.text(_CHARS, min_size=1, max_size=40)
_ZONE = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))

VALUES: dict[FieldType, st.SearchStrategy[object]] = {
    FieldType.STRING: _TEXT,
    FieldType.NAME: st.lists(_TEXT, min_size=1, max_size=3).flatmap(
        lambda parts: _SPACE.map(lambda space: space.join(parts))
    ),
    FieldType.ID_NUMBER: st.sampled_from(_PEOPLE).map(lambda p: p.id_number.lower()),
    FieldType.PHONE: st.sampled_from(_PEOPLE).map(lambda p: p.phone[3:6] + " " + p.phone[6:]),
    FieldType.DATE: st.dates().map(lambda d: d.isoformat()),
    FieldType.DATETIME: st.builds(
        lambda naive, zone: naive.replace(tzinfo=zone).isoformat(),
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
        _ZONE,
    ),
    FieldType.INTEGER: st.integers() | st.from_regex(r"\A[+-]?[0-9]{1,19}\Z"),
    FieldType.DECIMAL: st.decimals(allow_nan=False, allow_infinity=False, places=4).map(
        lambda d: format(d, "f")
    ),
    FieldType.GEO: st.builds(
        lambda lat, lon: f"{lat},{lon}",
        st.floats(-90, 90).map(lambda x: f"{x:.9f}"),
        st.floats(-180, 180).map(lambda x: f"{x:.9f}"),
    ),
}


@pytest.mark.parametrize("kind", list(FieldType))
@given(data=st.data())
def test_normalize_is_idempotent(kind: FieldType, data: st.DataObject) -> None:
    target = field(kind, max_length=4096)
    value = data.draw(VALUES[kind])
    try:
        once = target.normalize(value)
    except InputError:
        # Only text that strips down to nothing may fail; everything else drawn is valid.
        assert kind in (FieldType.STRING, FieldType.NAME)
        assert isinstance(value, str) and not value.split()
        return
    assert target.normalize(once) == once


def test_datetime_normal_form_is_the_same_instant() -> None:
    text = field(FieldType.DATETIME).normalize("2026-03-01T20:00:00+08:00")
    assert datetime.fromisoformat(text) == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_normalized_phone_is_valid_e164() -> None:
    number = phonenumbers.parse(normalize_phone("13812345678"))
    assert phonenumbers.is_valid_number(number)
