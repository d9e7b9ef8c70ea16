"""The representation watermark on its own (no store): every spelling it writes is the same
value to the vault's normalizers, it reads back what it wrote, and its statistics do not accuse
a file that did not come from the export more often than they say."""

from __future__ import annotations

import random

import pytest

from custodes.forensics._anchors import anchor_text
from custodes.forensics._watermark import (
    agreement,
    binomial_tail,
    column_carrier,
    mark_value,
    observe,
    spelling_bit,
)
from custodes.schema import Schema
from custodes.sim import generate_people, sample_records

FIELDS = {
    "datetime": Schema.default().collection("hotel_stays").field("check_in"),
    "phone": Schema.default().collection("identity").field("phone"),
    "id_number": Schema.default().collection("identity").field("id_number"),
    "geo": Schema.default().collection("phone_location").field("position"),
}


def _values(kind: str, n: int) -> list[str]:
    people = generate_people(n, seed=5)
    rng = random.Random(5)
    spec = FIELDS[kind]
    if kind == "phone":
        raw = [p.phone for p in people]
    elif kind == "id_number":
        raw = [p.id_number for p in people]
    elif kind == "datetime":
        raw = [sample_records(p, rng)["hotel_stays"] for p in people]
        raw = [r[0]["check_in"] for r in raw if r]
    else:
        raw = [f"{rng.uniform(-80, 80):.6f},{rng.uniform(-170, 170):.6f}" for _ in people]
    return [spec.normalize(v) for v in raw]


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_every_spelling_is_the_same_value_and_reads_back(kind: str) -> None:
    spec = FIELDS[kind]
    values = _values(kind, 400)
    marked_any = False
    for number, value in enumerate(values):
        key = number.to_bytes(4, "big") * 4
        spelled, carries = mark_value(key, spec.type, value)
        # Never a different value: the vault's own normalizer maps the spelling back.
        assert spec.normalize(spelled) == value
        assert anchor_text(spelled) == anchor_text(value) == value
        if not carries:
            assert spelled == value
            continue
        marked_any = True
        carrier = column_carrier([spelled])
        assert carrier is not None
        read = observe(carrier, spelled)
        assert read is not None
        assert read[1] == value
        assert read[2] == spelling_bit(key, read[0], value)
    assert marked_any


def test_both_spellings_occur_about_equally() -> None:
    spec = FIELDS["phone"]
    key = b"k" * 16
    spellings = [mark_value(key, spec.type, v)[0] for v in _values("phone", 400)]
    spaced = sum(" " in s for s in spellings)
    assert 140 < spaced < 260


def test_binomial_tail_known_values() -> None:
    assert binomial_tail(0, 10) == 1.0
    assert binomial_tail(11, 10) == 0.0
    assert binomial_tail(1, 1) == pytest.approx(0.5)
    assert binomial_tail(20, 20) == pytest.approx(2.0**-20)
    assert binomial_tail(3, 4) == pytest.approx(5 / 16)
    assert binomial_tail(4000, 4096) < 1e-300 or binomial_tail(4000, 4096) == 0.0


def test_unrelated_keys_are_accused_no_more_often_than_the_tail_says() -> None:
    """A leak marked under one key, tested against 2000 other keys: the tail probability is a
    valid p-value (at most about 1% of keys get p <= 0.01), and none comes near certainty."""
    spec = FIELDS["datetime"]
    values = _values("datetime", 300)
    leak_key = b"L" * 16
    observed = []
    for value in values:
        spelled, _ = mark_value(leak_key, spec.type, value)
        read = observe("dt", spelled)
        assert read is not None
        observed.append(read)
    assert agreement(leak_key, observed) == (len(observed), len(observed))
    p_values = []
    for number in range(2000):
        agree, total = agreement(number.to_bytes(16, "big"), observed)
        p_values.append(binomial_tail(agree, total))
    assert sum(p <= 0.01 for p in p_values) <= 35
    assert min(p_values) > 1e-6


def test_a_column_of_plain_text_carries_nothing() -> None:
    assert column_carrier(["北京", "上海", "广州"]) is None
    assert column_carrier(["2026-03-01", "2026-03-02"]) is None  # dates have one spelling
    assert column_carrier([]) is None
