"""Phone validation skips phonenumbers.parse for "+86" mobile E.164 text; verdicts must not move.

The reference is the library's whole path: ``parse`` (with the caller's default region), then
``is_valid_number``, then E.164 formatting. Our ``phone`` must accept exactly what it accepts
and return the same text, on valid numbers and on mutated ones on both sides of the fast path.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata

from custodes.schema._normalize import NormalizeError, phone
from custodes.sim import generate_people

VALID = [p.phone for p in generate_people(300, seed=23)]
REGIONS = st.sampled_from(["CN", "GB", "US", "HK"])


def _library(value: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _ours(value: str, region: str) -> str | None:
    try:
        return phone(value, region)
    except NormalizeError:
        return None


def test_sample_numbers_take_the_fast_path_and_are_valid() -> None:
    assert all(v.startswith("+861") and len(v) == 14 for v in VALID)
    for value in VALID:
        assert _ours(value, "CN") == _library(value, "CN") == value


@settings(max_examples=600, deadline=None)
@given(digits=st.text("0123456789", min_size=10, max_size=10), region=REGIONS)
def test_agrees_on_every_cn_mobile_shaped_number(digits: str, region: str) -> None:
    # Every "+861" + 10 digits: valid and invalid ranges, and the 11xx/12xx/179xx prefixes
    # CN's national-prefix rule matches.
    value = "+861" + digits
    assert _ours(value, region) == _library(value, region), value


@settings(max_examples=600, deadline=None)
@given(digits=st.text("0123456789", min_size=9, max_size=12), region=REGIONS)
def test_agrees_on_any_digits_after_86(digits: str, region: str) -> None:
    # Beside the fast path's shape: a leading 0 (CN's trunk prefix), other lengths.
    value = "+86" + digits
    assert _ours(value, region) == _library(value, region), value


@settings(max_examples=600, deadline=None)
@given(
    prefix=st.sampled_from(["+8611", "+8612", "+86179", "+8617951", "+8611234", "+86125"]),
    rest=st.text("0123456789", min_size=0, max_size=9),
    region=REGIONS,
)
def test_agrees_on_national_prefix_lookalikes(prefix: str, rest: str, region: str) -> None:
    value = (prefix + rest)[:14]
    assert _ours(value, region) == _library(value, region), value


_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete"]),
        st.integers(0, 14),
        st.sampled_from(list("0123456789+ -()x")),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=800, deadline=None)
@given(base=st.sampled_from(VALID), edits=_EDITS, region=REGIONS)
def test_agrees_on_mutated_valid_numbers(
    base: str, edits: list[tuple[str, int, str]], region: str
) -> None:
    chars = list(base)
    for op, pos, ch in edits:
        pos = min(pos, len(chars))
        if op == "set" and pos < len(chars):
            chars[pos] = ch
        elif op == "insert":
            chars.insert(pos, ch)
        elif op == "delete" and pos < len(chars):
            del chars[pos]
    value = "".join(chars)
    assert _ours(value, region) == _library(value, region), value


@pytest.mark.parametrize(
    "value",
    [
        "+8613812345678\n",
        " +8613812345678",
        "+86 138 1234 5678",
        "+8613812345678;ext=12",
        "+86138123456789",
        "+861381234567",
        "\uff0b8613812345678",  # full-width plus
        "+86\uff113812345678",  # full-width digit
        "8613812345678",
        "+8612345678901",
        "+8611012345678",
        "+8617951234567",
        "+8601065123456",  # trunk 0 + a Beijing landline: parse strips the 0
        "+86010651234567",
    ],
)
def test_agrees_on_edge_spellings(value: str) -> None:
    assert _ours(value, "CN") == _library(value, "CN")


def test_cn_metadata_still_supports_the_fast_path() -> None:
    # If a phonenumbers upgrade changes these, the fast path's reasoning must be redone.
    meta = PhoneMetadata.metadata_for_region("CN")
    assert meta is not None
    assert meta.country_code == 86
    assert meta.national_prefix_for_parsing == "(1(?:[12]\\d|79)\\d\\d)|0"
    assert meta.national_prefix_transform_rule is None
    assert 6 in meta.general_desc.possible_length_local_only
    assert 6 not in meta.general_desc.possible_length
    assert phonenumbers.COUNTRY_CODE_TO_REGION_CODE[86] == ("CN",)


def test_remembered_verdicts_stay_what_the_library_says() -> None:
    # The fast path memoizes each number's verdict: asking again, in any order, after other
    # numbers, must give the library's answer every time, refusals included.
    numbers = VALID[:20] + [number[:-4] + "0000" for number in VALID[:20]] + ["+8610000000000"]
    for _ in range(3):
        for number in numbers:
            assert _ours(number, "CN") == _library(number, "CN")
    assert _ours("+8610000000000", "CN") is None
