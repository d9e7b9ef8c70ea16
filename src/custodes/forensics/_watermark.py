"""The representation watermark: keyed choices among equal spellings of the same value.

Some values can be written in more than one way that the vault's own normalizer maps to the
same canonical form (``Field.normalize`` of every spelling returns the stored value):

========  ================================  ====================================
carrier   spelling 0 (canonical)            spelling 1
========  ================================  ====================================
``dt``    ``2026-03-01T12:00:00+00:00``     ``2026-03-01T12:00:00Z``
``tel``   ``+8613812345678``                ``+86 138 1234 5678``
``idx``   ``11010519491231002X``            ``11010519491231002x``
``geo``   ``39.904200,116.407400``          ``39.904200, 116.407400``
========  ================================  ====================================

An export writes each such value with the spelling chosen by one bit of a keyed hash
(BLAKE2b keyed with the export key, a pseudo-random function) of carrier and canonical value:
never a different value, only a different spelling of the same one. The bit depends on the
value alone, not on its row or column, so it survives row subsetting and shuffling, column
renaming, reordering and dropping, and conversion between text formats that keep strings as
they are (CSV, TSV, JSON).

Detection reads every carrier cell of a leaked file, keeps each distinct (carrier, canonical
value) once (a repeated value is one coin, not many), and counts how many observed spellings
equal the spelling a candidate export's key chooses. For a file that did not come from that
export the count is Binomial(n, 1/2) (the keys are independent); :func:`binomial_tail` gives
the chance of a count at least as high, which is the false-accusation probability. This is the
keyed, pseudo-random mark selection of Agrawal & Kiernan (VLDB 2002), moved from low-order
bits (which would alter real values) to the choice of spelling, with the mark bit derived from
the value itself instead of a primary key, which a leaked file need not keep.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import phonenumbers

from custodes.schema import FieldType

__all__ = [
    "CARRIERS",
    "Observation",
    "agreement",
    "binomial_tail",
    "column_carrier",
    "mark_value",
    "observe",
    "spelling_bit",
]

CARRIERS = ("dt", "tel", "idx", "geo")

# What each carrier's cells look like in a leaked file, in either spelling.
_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "dt": re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?)(Z|\+00:00)"),
    "tel": re.compile(r"\+\d[\d -]{5,22}\d"),
    "idx": re.compile(r"\d{17}[Xx]"),
    "geo": re.compile(r"(-?\d{1,3}\.\d{6}),( ?)(-?\d{1,3}\.\d{6})"),
}
_SAMPLE = 40  # values of a column looked at to decide which carrier it holds
_CN_MOBILE = re.compile(r"\+861\d{10}")
_NOT_DIGIT = re.compile(r"\D")

Observation = tuple[str, str, int]
"""One carrier cell read from a leak: (carrier, canonical value, observed spelling bit)."""


def spelling_bit(key: bytes, carrier: str, canonical: str) -> int:
    """The spelling an export with ``key`` gives this value: 0 canonical, 1 the alternative."""
    message = carrier.encode() + b"\x00" + canonical.encode()
    return hashlib.blake2b(message, key=key, digest_size=16).digest()[0] & 1


def mark_value(key: bytes, ftype: FieldType, value: str) -> tuple[str, bool]:
    """Return the spelling of a canonical ``value`` of type ``ftype`` that the export key
    chooses, and whether the value carries a bit at all."""
    carrier = _carrier_of(ftype, value)
    if carrier is None:
        return value, False
    if not spelling_bit(key, carrier, value):
        return value, True
    return _alternative(carrier, value), True


def _carrier_of(ftype: FieldType, value: str) -> str | None:
    if ftype is FieldType.DATETIME and value.endswith("+00:00"):
        return "dt"
    if ftype is FieldType.PHONE and value.startswith("+"):
        return "tel"
    if ftype is FieldType.ID_NUMBER and value.endswith("X"):
        return "idx"
    if ftype is FieldType.GEO and "," in value:
        return "geo"
    return None


def _alternative(carrier: str, value: str) -> str:
    if carrier == "dt":
        return value[:-6] + "Z"
    if carrier == "idx":
        return value[:-1] + "x"
    if carrier == "geo":
        return value.replace(",", ", ", 1)
    return _grouped_phone(value)


def _grouped_phone(value: str) -> str:
    """The international spelling with spaces (``+86 138 1234 5678``) of an E.164 number."""
    if _CN_MOBILE.fullmatch(value):
        return f"+86 {value[3:6]} {value[6:10]} {value[10:]}"
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:  # pragma: no cover - stored numbers parse
        return value
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def column_carrier(values: Sequence[str]) -> str | None:
    """Which carrier a leaked column holds, judged by its first non-empty values (most of them
    must read as that carrier's cells), or None."""
    sample = [v.strip() for v in values if v and v.strip()][:_SAMPLE]
    if not sample:
        return None
    for carrier in CARRIERS:
        hits = sum(1 for v in sample if _PATTERNS[carrier].fullmatch(v))
        # ID numbers end in X only one time in eleven: any such cell makes it an ID column.
        if hits and (carrier == "idx" or hits * 2 > len(sample)):
            return carrier
    return None


def observe(carrier: str, text: str) -> Observation | None:
    """Read one cell of a carrier column: its canonical value and spelling bit, or None if it
    is not in either spelling."""
    cell = text.strip()
    match = _PATTERNS[carrier].fullmatch(cell)
    if match is None:
        return None
    if carrier == "dt":
        return carrier, match.group(1) + "+00:00", int(match.group(2) == "Z")
    if carrier == "idx":
        return carrier, cell.upper(), int(cell[-1] == "x")
    if carrier == "geo":
        return carrier, f"{match.group(1)},{match.group(3)}", int(match.group(2) == " ")
    digits = "+" + _NOT_DIGIT.sub("", cell)  # the pattern allowed only digits, ' ' and '-'
    return carrier, digits, int(cell != digits)


def binomial_tail(matches: int, trials: int) -> float:
    """P(X >= matches) for X ~ Binomial(trials, 1/2): the chance that an unrelated key agrees
    with at least ``matches`` of ``trials`` observed spellings."""
    if matches <= 0:
        return 1.0
    if matches > trials:
        return 0.0
    log_half = trials * math.log(0.5)
    logs = [_log_choose(trials, i) + log_half for i in range(matches, trials + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(x - top) for x in logs))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def agreement(key: bytes, observations: Iterable[Observation]) -> tuple[int, int]:
    """Return (agreeing, total) spellings of ``observations`` under an export key."""
    agree = total = 0
    for carrier, canonical, bit in observations:
        total += 1
        agree += spelling_bit(key, carrier, canonical) == bit
    return agree, total
