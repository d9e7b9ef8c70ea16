"""Canonical forms of field values: one spelling per value, so blind indexes match exactly.

Each normalizer takes text and returns its canonical form, or raises :class:`NormalizeError` with a
phrase saying what is wrong (never the value itself: it may be personal data). The public
wrappers and :class:`~custodes.schema.Field` turn a ``NormalizeError`` into an ``InputError``.
Every normalizer is idempotent: normalizing a canonical form returns it unchanged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum import numdb
from stdnum.cn import ric

from custodes.errors import InputError

__all__ = [
    "NormalizeError",
    "check_text",
    "date_value",
    "datetime_value",
    "decimal_value",
    "geo_value",
    "id_number",
    "integer_value",
    "name_value",
    "normalize_id_number",
    "normalize_phone",
    "phone",
    "string_value",
]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"([+-]?)([0-9]+)")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_COORDINATE = re.compile(r"[+-]?[0-9]{1,3}(?:\.[0-9]+)?")
# Bidirectional embedding, override and isolate marks can make a stored value display as
# something else (the "Trojan Source" trick), so they are refused like control characters.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ID_PROBLEMS: dict[type[Exception], str] = {
    stdnum_errors.InvalidLength: "not 18 characters",
    stdnum_errors.InvalidFormat: "contains characters other than digits and a final X",
    stdnum_errors.InvalidChecksum: "checksum digit is wrong",
    stdnum_errors.InvalidComponent: "birth date or region part is invalid",
}


class NormalizeError(ValueError):
    """A value has no canonical form; the message says why without quoting the value."""


def check_text(value: str) -> None:
    """Refuse control characters, lone surrogates and bidi overrides.

    Raises:
        NormalizeError: the text holds one of them.
    """
    if value.isprintable():  # no Cc, Cs or Cf (bidi marks are Cf): nothing to refuse
        return
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs":
            raise NormalizeError("not valid Unicode text (lone surrogate)")
        if category == "Cc" or char in _BIDI_CONTROLS:
            raise NormalizeError(f"contains a control character (U+{ord(char):04X})")


def string_value(value: str) -> str:
    """Return NFC text without surrounding white space.

    Raises:
        NormalizeError: control characters, or nothing left.
    """
    check_text(value)
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise NormalizeError("empty value")
    return text


def name_value(value: str) -> str:
    """Return an NFC name with runs of white space collapsed to one space.

    Raises:
        NormalizeError: control characters, or nothing left.
    """
    check_text(value)
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise NormalizeError("empty value")
    return text


# Validation (stdnum's region database) dominates an audited read; the result for a given
# string never changes, so recent ones are memoized (bounded; invalid inputs are not cached).
@functools.lru_cache(maxsize=65_536)
def id_number(value: str) -> str:
    """Return an 18-character Chinese resident ID number, upper-case, without spaces.

    Raises:
        NormalizeError: wrong length, characters, checksum, birth date or region.
    """
    number = "".join(value.split()).upper()
    if len(number) != 18:
        raise NormalizeError(_ID_PROBLEMS[stdnum_errors.InvalidLength])
    # stdnum reports a bad final character as a wrong checksum; it is really a format error.
    if not number[:17].isascii() or not number[:17].isdigit() or number[17] not in "0123456789X":
        raise NormalizeError(_ID_PROBLEMS[stdnum_errors.InvalidFormat])
    # The steps of stdnum's ric.validate, in its order, with its functions; only the region
    # lookup is memoized, keyed on exactly what it reads (region code and birth year).
    try:
        if number[-1] != ric.calc_check_digit(number):
            raise stdnum_errors.InvalidChecksum
        born = ric.get_birth_date(number)
        _check_region(number[:6], born.year)
    except stdnum_errors.ValidationError as exc:
        raise NormalizeError(_ID_PROBLEMS.get(type(exc), "not a valid ID number")) from exc
    return number


def _region_valid(region: str, year: int) -> bool:
    """stdnum's verdict on a birth place: some county of the region prefix was assigned in
    the birth year (``ric.get_birth_place``, which reads only ``number[:6]`` and the year)."""
    return any(
        (start is None or start <= year) and (end is None or year <= end)
        for start, end in _region_windows(region)
    )


@functools.lru_cache(maxsize=8192)
def _region_windows(region: str) -> tuple[tuple[int | None, int | None], ...]:
    """The years in which each county of a region prefix was assigned, read as
    ``ric.get_birth_place`` reads stdnum's ``cn/loc`` database: a county written
    ``[start-end]name`` (either bound may be empty) from start to end, any other county always.
    No windows (never valid) for a prefix it knows no county of.

    Memoized per region: the lookup scans the database (~170 us), and a population has far
    fewer regions than (region, birth year) pairs (the synthetic one: 46 against 1,830).
    tests/schema/test_schema_id_fastpath.py checks every dated prefix against stdnum.
    """
    found = {k: v for _, props in numdb.get("cn/loc").info(region) for k, v in props.items()}
    if "county" not in found:  # unknown, or a province or city with no county
        return ()
    windows: list[tuple[int | None, int | None]] = []
    for county in found["county"].split(","):
        if not county.startswith("["):
            windows.append((None, None))
            continue
        start, end = county[1:].split("]")[0].split("-")
        windows.append((int(start) if start else None, int(end) if end else None))
    return tuple(windows)


def _check_region(region: str, year: int) -> None:
    if not _region_valid(region, year):
        raise stdnum_errors.InvalidComponent


# A Chinese mobile number already in E.164 form ("+86", then 11 digits starting with 1), the
# form bulk loads carry. For it, phonenumbers.parse (~11 us) always returns country code 86 and
# the 11 digits as the national number, whatever the default region: "+" makes 86 the country
# code, there is no extension or leading zero, and CN's national prefix for parsing
# ("1[12]dd" or "179dd") would leave 6 digits, a local-only length for CN, so parse keeps the
# number unstripped. The number is then checked by the library's own is_valid_number.
# tests/schema/test_schema_phone_fastpath.py checks these verdicts against parse +
# is_valid_number, and the CN metadata this relies on.
_CN_MOBILE_E164 = re.compile(r"\+861[0-9]{10}")


# The verdict for a given number never changes and the library's check (~20 us: a regular
# expression per number type) dominates a phone field; a bulk load meets each subject's number
# in several records. Bounded, like the ID-number memo.
@functools.lru_cache(maxsize=65_536)
def _cn_mobile_valid(value: str) -> bool:
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(value[3:]))
    return bool(phonenumbers.is_valid_number(number))


def phone(value: str, region: str = "CN") -> str:
    """Return a valid phone number in E.164 form, such as ``+8613812345678``.

    Raises:
        NormalizeError: the text is not a phone number, or not a valid one.
    """
    if _CN_MOBILE_E164.fullmatch(value):
        if not _cn_mobile_valid(value):
            raise NormalizeError("not a valid phone number")
        return value
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise NormalizeError("not a valid phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise NormalizeError("not a valid phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def date_value(value: str) -> str:
    """Return a calendar date as ``YYYY-MM-DD``.

    Raises:
        NormalizeError: another form, or no such date.
    """
    text = value.strip()
    if not _DATE.fullmatch(text):
        raise NormalizeError("not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise NormalizeError("not a real calendar date") from exc


def datetime_value(value: str) -> str:
    """Return an ISO 8601 instant converted to UTC, e.g. ``2026-03-01T12:00:00+00:00``.

    Raises:
        NormalizeError: not ISO 8601, or no UTC offset (a naive time is ambiguous).
    """
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise NormalizeError("not an ISO 8601 date and time") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NormalizeError("no UTC offset (write e.g. 2026-03-01T20:00:00+08:00)")
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError as exc:
        raise NormalizeError("outside the representable range of times") from exc


def integer_value(value: str) -> str:
    """Return a whole number without leading zeros or a plus sign.

    Raises:
        NormalizeError: anything but an optional sign and ASCII digits.
    """
    match = _INTEGER.fullmatch(value.strip())
    if match is None:
        raise NormalizeError("not a whole number")
    sign, digits = match.groups()
    # Done on the text: int() would accept '1_000' and refuse more than 4300 digits.
    digits = digits.lstrip("0") or "0"
    return "-" + digits if sign == "-" and digits != "0" else digits


def decimal_value(value: str) -> str:
    """Return a decimal number in plain notation, keeping its scale (``1234.50``).

    Raises:
        NormalizeError: exponents, NaN, infinity, or not a number.
    """
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        raise NormalizeError("not a decimal number in plain notation (e.g. 1234.50)")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise NormalizeError("not a decimal number") from exc
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")


def geo_value(value: str) -> str:
    """Return ``lat,lon`` in degrees with six decimals (about 0.1 m).

    Raises:
        NormalizeError: not two numbers, or latitude/longitude out of range.
    """
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not all(_COORDINATE.fullmatch(part) for part in parts):
        raise NormalizeError("not a position in the form 'latitude,longitude'")
    # Rounding first, and adding 0.0, turns -0.0000001 into 0.0 so the output is idempotent.
    lat, lon = (round(float(part), 6) + 0.0 for part in parts)
    if not -90 <= lat <= 90:
        raise NormalizeError("latitude outside -90..90")
    if not -180 <= lon <= 180:
        raise NormalizeError("longitude outside -180..180")
    return f"{lat:.6f},{lon:.6f}"


def normalize_id_number(value: str) -> str:
    """Return the canonical form of a Chinese resident ID number.

    Raises:
        InputError: the number is malformed; the message names the problem, not the value.
    """
    try:
        return id_number(_text(value, "ID number"))
    except NormalizeError as exc:
        raise InputError(f"ID number: {exc}") from exc


def normalize_phone(value: str, region: str = "CN") -> str:
    """Return the E.164 form of a phone number, read as dialled in ``region``.

    Raises:
        InputError: the text is not a valid phone number.
    """
    try:
        return phone(_text(value, "phone number"), region)
    except NormalizeError as exc:
        raise InputError(f"phone number: {exc}") from exc


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be text")
    return value
