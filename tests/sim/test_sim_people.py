"""The synthetic population: valid, consistent, deterministic, and fast enough for benchmarks."""

# Seeded, reproducible randomness is the point of the simulator; nothing here is a secret.

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

import custodes.sim
from custodes.schema import Schema
from custodes.sim import Person, generate_people, sample_records

PEOPLE = generate_people(3_000, seed=2026)


def test_public_names_are_pinned() -> None:
    # The full list is pinned in test_sim_world.py.
    assert {"Person", "generate_people", "sample_records"} <= set(custodes.sim.__all__)


def test_every_id_number_is_valid_and_matches_the_person() -> None:
    for person in PEOPLE:
        assert ric.validate(person.id_number) == person.id_number
        assert ric.get_birth_date(person.id_number) == person.birth_date
        assert int(person.id_number[16]) % 2 == (1 if person.sex == "M" else 0)
        assert ric.get_birth_place(person.id_number)["province"]


def test_every_phone_is_a_valid_chinese_mobile_in_e164() -> None:
    for person in PEOPLE:
        number = phonenumbers.parse(person.phone)
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.region_code_for_number(number) == "CN"
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == (
            person.phone
        )


def test_identity_values_pass_the_default_schema_unchanged() -> None:
    identity = Schema.default().collection("identity")
    for person in PEOPLE[:500]:
        values = sample_records(person, random.Random(0))["identity"]
        assert len(values) == 1
        assert identity.validate(values[0]) == values[0]


def test_people_look_like_chinese_residents() -> None:
    surnames = Counter(p.name[0] for p in PEOPLE)
    assert surnames.most_common(1)[0][0] in "王李张"
    assert len(surnames) > 40
    assert all(2 <= len(p.name) <= 4 for p in PEOPLE)
    assert all(p.address.endswith("室") and "号" in p.address for p in PEOPLE)
    assert all(p.birth_place.endswith("市") for p in PEOPLE)
    sexes = Counter(p.sex for p in PEOPLE)
    assert set(sexes) == {"F", "M"} and abs(sexes["F"] - sexes["M"]) < 300


def test_ids_and_phones_are_unique_within_a_call() -> None:
    assert len({p.id_number for p in PEOPLE}) == len(PEOPLE)
    assert len({p.phone for p in PEOPLE}) == len(PEOPLE)


def test_about_thirty_percent_live_in_a_household() -> None:
    households = Counter((p.address, p.name[0]) for p in PEOPLE)
    shared = sum(1 for p in PEOPLE if households[(p.address, p.name[0])] > 1)
    assert 0.22 < shared / len(PEOPLE) < 0.38


def test_same_seed_same_people_different_seed_different_people() -> None:
    assert generate_people(200, seed=2026) == PEOPLE[:200]
    other = generate_people(200, seed=2027)
    assert other != PEOPLE[:200]
    assert not {p.id_number for p in other} & {p.id_number for p in PEOPLE[:200]}


def test_generation_does_not_touch_the_global_random() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    generate_people(50, seed=1)
    sample_records(PEOPLE[0], random.Random(1))
    assert random.random() == expected


def test_zero_and_negative_counts() -> None:
    assert generate_people(0, seed=1) == []
    with pytest.raises(ValueError, match="n must be zero or more"):
        generate_people(-1, seed=1)


def test_a_hundred_thousand_people_in_a_few_seconds() -> None:
    start = time.perf_counter()
    people = generate_people(100_000, seed=9)
    elapsed = time.perf_counter() - start
    assert len({p.id_number for p in people}) == 100_000
    assert len({p.phone for p in people}) == 100_000
    assert elapsed < 6, f"generating 100,000 people took {elapsed:.1f} s"


# -- sample records ---------------------------------------------------------------------------


def test_sample_records_cover_every_collection_and_validate() -> None:
    schema = Schema.default()
    rng = random.Random(4)
    seen: Counter[str] = Counter()
    for person in PEOPLE[:1_000]:
        records = sample_records(person, rng)
        assert list(records) == list(schema.collections)
        assert len(records["identity"]) == 1
        for name, values in records.items():
            assert len(values) <= 3
            seen[name] += len(values)
            for record in values:
                schema.collection(name).validate(record)
    assert all(seen[name] > 50 for name in schema.collections), seen


def test_sample_records_are_deterministic_and_personal() -> None:
    person = PEOPLE[0]
    assert sample_records(person, random.Random(3)) == sample_records(person, random.Random(3))
    records = [sample_records(person, random.Random(seed)) for seed in range(40)]
    accounts = {r["account_number"] for rs in records for r in rs["bank_deposits"]}
    assert 1 <= len(accounts) <= 2, "a person keeps the same bank accounts"
    phones = {r["phone"] for rs in records for r in rs["phone_location"]}
    assert phones == {person.phone}


def test_sample_values_look_real() -> None:
    rng = random.Random(8)
    flights = [f for p in PEOPLE[:300] for f in sample_records(p, rng)["flights"]]
    assert flights
    for flight in flights:
        assert flight["flight_number"][:2].isalnum() and flight["flight_number"][2:].isdigit()
        assert flight["origin"] != flight["destination"]
        assert datetime.fromisoformat(flight["departs_at"]).utcoffset() is not None
    positions = [
        r["position"] for p in PEOPLE[:300] for r in sample_records(p, rng)["phone_location"]
    ]
    for position in positions:
        lat, lon = (float(x) for x in position.split(","))
        assert 18 < lat < 54 and 73 < lon < 135, "inside China"


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 30))
def test_any_seed_gives_valid_unique_people(seed: int, n: int) -> None:
    people = generate_people(n, seed=seed)
    assert len({p.id_number for p in people}) == n
    for person in people:
        assert isinstance(person, Person)
        assert ric.is_valid(person.id_number)
        schema = Schema.default()
        for name, values in sample_records(person, random.Random(seed)).items():
            for record in values:
                schema.collection(name).validate(record)
