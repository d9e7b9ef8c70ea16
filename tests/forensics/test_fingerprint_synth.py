"""Canary rows for a collection the simulator does not know: a donor row lends its shape; the
row is valid, keeps the donor's time spacing and text, and holds fresh person fields and
identifiers (no store needed)."""

from __future__ import annotations

import random
from datetime import datetime

from custodes.forensics._anchors import anchor_weight
from custodes.forensics._synth import canary_record, synthetic_person
from custodes.schema import Schema

SCHEMA = Schema.loads(
    """
[collections.identity.fields.name]
class = "identifier"
type = "name"
required = true
[collections.identity.fields.id_number]
class = "identifier"
type = "id_number"
indexed = true
required = true

[collections.clinic_visits.fields.patient]
class = "identifier"
type = "name"
[collections.clinic_visits.fields.phone]
class = "contact"
type = "phone"
[collections.clinic_visits.fields.arrived_at]
class = "special"
type = "datetime"
[collections.clinic_visits.fields.left_at]
class = "special"
type = "datetime"
[collections.clinic_visits.fields.clinic]
class = "other"
type = "string"
[collections.clinic_visits.fields.ticket]
class = "other"
type = "string"
indexed = true
[collections.clinic_visits.fields.fee]
class = "financial"
type = "decimal"
[collections.clinic_visits.fields.visits]
class = "other"
type = "integer"
[collections.clinic_visits.fields.position]
class = "location"
type = "geo"
[collections.clinic_visits.fields.seen_on]
class = "other"
type = "date"
"""
)
DONOR = {
    "patient": "王芳",
    "phone": "+8613800138000",
    "arrived_at": "2025-06-01T01:15:00+00:00",
    "left_at": "2025-06-01T03:45:00+00:00",
    "clinic": "协和医院门诊部",
    "ticket": "QX-20250601-0042",
    "fee": "235.50",
    "visits": "3",
    "position": "39.912345,116.412345",
    "seen_on": "2025-06-01",
}


def test_a_donor_shaped_canary_row_is_valid_fresh_and_consistent() -> None:
    coll = SCHEMA.collection("clinic_visits")
    assert coll.validate(DONOR) == DONOR
    for seed in range(30):
        rng = random.Random(seed)
        person = synthetic_person(rng)
        row = canary_record(coll, DONOR, person, rng)
        assert set(row) == set(DONOR)
        assert coll.validate(row) == row
        assert (row["patient"], row["phone"]) == (person.name, person.phone)
        assert row["clinic"] == DONOR["clinic"]  # text is the donor's: no new fact
        spacing = datetime.fromisoformat(row["left_at"]) - datetime.fromisoformat(row["arrived_at"])
        assert spacing.total_seconds() == 2.5 * 3600  # times move together
        assert row["ticket"] != DONOR["ticket"] and row["ticket"][2] == "-"
        assert [c.isdigit() for c in row["ticket"]] == [c.isdigit() for c in DONOR["ticket"]]
        assert len(row["fee"].split(".")[1]) == 2  # same scale
        assert row["position"] != DONOR["position"]


def test_the_anchor_weights_follow_the_field_types() -> None:
    coll = SCHEMA.collection("clinic_visits")
    weights = {name: anchor_weight(spec) for name, spec in coll.fields.items()}
    assert weights == {
        "patient": 2,
        "phone": 9,
        "arrived_at": 6,
        "left_at": 6,
        "clinic": 1,
        "ticket": 8,
        "fee": 3,
        "visits": 2,
        "position": 8,
        "seen_on": 0,
    }
