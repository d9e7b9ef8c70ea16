"""ID-number validation memoizes stdnum's region lookup; its verdicts must be stdnum's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from custodes.schema._normalize import NormalizeError, id_number
from custodes.sim import generate_people

VALID = [p.id_number for p in generate_people(300, seed=17)]


def _stdnum_accepts(number: str) -> bool:
    try:
        ric.validate(number)
    except (ValidationError, KeyError):  # stdnum raises KeyError for county-less prefixes
        return False
    return True


def _ours_accepts(number: str) -> bool:
    id_number.cache_clear()
    try:
        id_number(number)
    except NormalizeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(VALID),
    edits=st.lists(
        st.tuples(st.integers(0, 17), st.sampled_from("0123456789X")), min_size=1, max_size=3
    ),
)
def test_agrees_with_stdnum_on_edited_numbers(base: str, edits: list[tuple[int, str]]) -> None:
    chars = list(base)
    for pos, ch in edits:
        chars[pos] = ch
    number = "".join(chars)
    assert _ours_accepts(number) == _stdnum_accepts(number), number


@settings(max_examples=300, deadline=None)
@given(region=st.integers(100000, 999999), year=st.integers(1900, 2025))
def test_agrees_with_stdnum_on_any_region_and_year(region: int, year: int) -> None:
    body = f"{region}{year}0615123"
    number = body + ric.calc_check_digit(body + "0")
    assert _ours_accepts(number) == _stdnum_accepts(number), number


@pytest.mark.parametrize("number", VALID[:20])
def test_valid_numbers_come_back_unchanged(number: str) -> None:
    assert id_number(number.lower()) == number


def test_a_region_stdnum_cannot_look_up_is_a_clear_error_not_a_crash() -> None:
    body = "11000119900615123"  # a prefix stdnum knows only without a county
    number = body + ric.calc_check_digit(body + "0")
    with pytest.raises(NormalizeError, match=r"region|place|birth"):
        id_number(number)


def _regions() -> list[tuple[str, str]]:
    """Every six-digit region prefix of stdnum's ``cn/loc`` database and its county text."""
    out: list[tuple[str, str]] = []

    def walk(prefixes: list[Any], head: str) -> None:
        for length, low, high, props, children in prefixes:
            for value in range(int(low), int(high) + 1):
                code = head + f"{value:0{length}d}"
                if len(code) == 6:
                    out.append((code, props.get("county", "")))
                walk(children, code)

    walk(numdb.get("cn/loc").prefixes, "")
    return out


def test_agrees_with_stdnum_on_every_region_at_the_edges_of_its_years() -> None:
    """The region verdict is memoized per prefix, with the years of its counties read from
    stdnum's database: for every prefix, at and beside every year a county began or ended
    (and far before and after), the verdict is stdnum's."""
    regions = _regions()
    assert len(regions) > 6000 and sum("[" in county for _, county in regions) > 6000
    checked = 0
    for region, county in regions:
        edges = {int(y) for y in re.findall(r"\d{4}", county)} | {1900, 2025}
        for year in sorted({e + d for e in edges for d in (-1, 0, 1)}):
            if not 1900 <= year <= 2025:
                continue
            body = f"{region}{year}0615123"
            number = body + ric.calc_check_digit(body + "0")
            assert _ours_accepts(number) == _stdnum_accepts(number), number
            checked += 1
    assert checked > 50_000
