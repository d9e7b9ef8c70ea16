"""Schema files and collections: loading, strict checking, and validation of records."""

from __future__ import annotations

from pathlib import Path

import pytest

import custodes.schema
from custodes.errors import ConfigError, InputError
from custodes.schema import Collection, DataClass, Field, FieldType, Schema

GOOD_ID = "110101199003071233"

MINIMAL = """
[collections.identity.fields.id_number]
class = "identifier"
type = "id_number"
indexed = true
required = true
"""


def test_public_names_are_pinned() -> None:
    assert set(custodes.schema.__all__) == {
        "Collection",
        "DataClass",
        "Field",
        "FieldType",
        "Schema",
        "normalize_id_number",
        "normalize_phone",
    }


def test_default_schema_declares_the_reported_collections() -> None:
    schema = Schema.default()
    assert list(schema.collections) == [
        "identity",
        "hotel_stays",
        "flights",
        "border_crossings",
        "rentals",
        "bank_deposits",
        "phone_location",
        "police_incidents",
    ]
    identity = schema.collection("identity")
    assert identity.indexed_fields == ("id_number", "phone")
    assert identity.field("id_number").required and identity.field("name").required
    assert schema.collection("police_incidents").field("summary").max_length == 2000


def test_only_phone_location_holds_location_class_fields() -> None:
    location = [
        (c.name, f.name)
        for c in Schema.default().collections.values()
        for f in c.fields.values()
        if f.data_class is DataClass.LOCATION
    ]
    assert location == [("phone_location", "cell_id"), ("phone_location", "position")]


def test_defaults_per_type_and_flags() -> None:
    schema = Schema.loads(
        MINIMAL + '[collections.identity.fields.note]\nclass="other"\ntype="string"'
    )
    note = schema.collection("identity").field("note")
    assert note == Field("note", DataClass.OTHER, FieldType.STRING, False, False, 256)
    assert schema.collection("identity").field("id_number").max_length == 18


def test_load_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "schema.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert Schema.load(path).collection("identity").indexed_fields == ("id_number",)
    path.write_text(MINIMAL.replace('"id_number"\nindexed', '"idnumber"\nindexed'), "utf-8")
    with pytest.raises(ConfigError, match=f"^{path}: collections.identity.fields.id_number.type"):
        Schema.load(path)
    with pytest.raises(ConfigError, match="cannot read the schema file"):
        Schema.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[collections.identity\n", "schema.toml: not valid TOML"),
        (
            MINIMAL + "[collections.flights.fields.seat]\nclass='other'\ntype='strng'",
            "schema.toml: collections.flights.fields.seat.type: unknown type 'strng' "
            "(types: string, name, id_number, phone, date, datetime, integer, decimal, geo)",
        ),
        (
            MINIMAL + "[collections.flights.fields.seat]\nclass='secret'\ntype='string'",
            "collections.flights.fields.seat.class: unknown class 'secret' (classes: identifier",
        ),
        (
            MINIMAL + "[collections.flights.fields.seat]\nclass='other'\ntype='string'\nindex=1",
            "collections.flights.fields.seat.index: unknown key",
        ),
        (
            MINIMAL + "[collections.flights.fields.seat]\ntype='string'",
            "collections.flights.fields.seat.class: missing",
        ),
        (
            MINIMAL + "[collections.flights]\ndescrption='typo'\nfields={}",
            "collections.flights.descrption: unknown key",
        ),
        ("version = 2\n" + MINIMAL, "schema.toml: version: unknown key"),
        (
            MINIMAL + "[collections.flights.fields.seat]\nclass='other'\ntype='string'\n"
            "indexed='yes'",
            "collections.flights.fields.seat.indexed: must be true or false",
        ),
        (
            MINIMAL + "[collections.flights.fields.seat]\nclass='other'\ntype='string'\n"
            "max_length=0",
            "collections.flights.fields.seat.max_length: must be a positive whole number",
        ),
        (
            MINIMAL + "[collections.flights.fields.Seat]\nclass='other'\ntype='string'",
            "collections.flights.fields.Seat: names must be lower-case",
        ),
        (MINIMAL + "[collections.flights]\n", "collections.flights.fields: missing"),
        ("", "schema.toml: collections: missing"),
        (
            "[collections.people.fields.id_number]\nclass='identifier'\ntype='id_number'",
            "collections: the 'identity' collection is required",
        ),
        (
            "[collections.identity.fields.name]\nclass='identifier'\ntype='name'",
            "collections.identity.fields: the 'id_number' field is required",
        ),
        (
            "[collections.identity.fields.id_number]\nclass='identifier'\ntype='string'",
            "collections.identity.fields.id_number.type: must be 'id_number'",
        ),
        ("collections = 3", "schema.toml: collections: must be a table"),
    ],
)
def test_invalid_schema_names_source_and_key_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Schema.loads(text, source="schema.toml")
    assert message in str(info.value)


def test_unknown_collection_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"^unknown collection 'nosuch' \(collections: identity, "):
        Schema.default().collection("nosuch")


def test_unknown_field_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        Schema.default().collection("identity").field("shoe_size")
    assert str(info.value) == (
        "collection 'identity' has no field 'shoe_size' "
        "(fields: name, id_number, birth_date, birth_place, address, phone)"
    )


def identity() -> Collection:
    return Schema.default().collection("identity")


def test_validate_normalizes_in_schema_order() -> None:
    values = {"phone": "138 1234 5678", "name": " 张  三 ", "id_number": GOOD_ID[:-1] + "3"}
    assert list(identity().validate(values).items()) == [
        ("name", "张 三"),
        ("id_number", GOOD_ID),
        ("phone", "+8613812345678"),
    ]


def test_validate_refuses_unknown_fields_naming_them() -> None:
    values = {"id_number": GOOD_ID, "name": "张三", "shoe_size": "42", "hat": "L"}
    with pytest.raises(InputError, match="has no fields 'shoe_size', 'hat' \\(fields: name, "):
        identity().validate(values)


def test_validate_refuses_missing_required_fields() -> None:
    with pytest.raises(InputError, match="'identity' is missing required field\\(s\\): id_number"):
        identity().validate({"name": "张三"})


def test_validate_refuses_empty_values() -> None:
    with pytest.raises(InputError, match=r"^field 'address': empty value$"):
        identity().validate({"id_number": GOOD_ID, "name": "张三", "address": " "})


def test_validate_error_never_quotes_the_bad_value() -> None:
    with pytest.raises(InputError) as info:
        identity().validate({"id_number": GOOD_ID, "name": "张三", "phone": "13812345"})
    assert "13812345" not in str(info.value)
    assert str(info.value) == "field 'phone': not a valid phone number"


def test_validate_enforces_the_vault_limit_too() -> None:
    hotel = Schema.default().collection("hotel_stays")
    values = {"hotel": "酒" * 60, "check_in": "2026-02-11T21:30:00+08:00"}
    assert hotel.validate(values)["hotel"] == "酒" * 60
    with pytest.raises(InputError, match=r"^field 'hotel' is 180 bytes; the limit is 100$"):
        hotel.validate(values, max_value_bytes=100)
    summary = Schema.default().collection("police_incidents").field("summary")
    assert summary.normalize("案" * 600) == "案" * 600
    with pytest.raises(InputError, match="is 1800 bytes; the limit is 1024"):
        summary.normalize("案" * 600, max_value_bytes=1024)


def test_validate_refuses_a_non_mapping() -> None:
    with pytest.raises(InputError, match="must be a mapping"):
        identity().validate([("name", "张三")])  # type: ignore[arg-type]


def test_hostile_field_names_are_shown_safely() -> None:
    with pytest.raises(InputError) as info:
        identity().validate({"id_number": GOOD_ID, "name": "张三", "x\n" * 50: "1"})
    message = str(info.value)
    assert "\n" not in message and len(message) < 200


def test_schema_is_read_only() -> None:
    schema = Schema.default()
    with pytest.raises(TypeError):
        schema.collections["evil"] = schema.collection("identity")  # type: ignore[index]
    with pytest.raises(TypeError):
        schema.collection("identity").fields["x"] = schema.collection("identity").field("name")  # type: ignore[index]
    assert Schema.default() is schema
