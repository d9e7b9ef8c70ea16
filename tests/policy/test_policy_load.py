"""Loading policy files: the packaged default, expansion of '*', and every validation error."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import custodes.policy
from custodes.errors import ConfigError
from custodes.model import Action
from custodes.policy import Hours, Policy
from custodes.schema import DataClass, Schema

HEAD = """
[purposes.p]
description = "A purpose."
"""


def grant(**keys: object) -> str:
    """Return a policy with one grant; keys override a harmless default grant."""
    body: dict[str, object] = {
        "role": '"r"',
        "purpose": '"p"',
        "actions": '["get"]',
        "collections": '["identity"]',
        "fields": '["name"]',
    }
    body.update(keys)
    lines = "\n".join(f"{key} = {value}" for key, value in body.items() if value is not None)
    return f"{HEAD}\n[[grants]]\n{lines}\n"


def test_public_names_are_pinned() -> None:
    assert sorted(custodes.policy.__all__) == [
        "GRANT_ACTIONS",
        "Grant",
        "Hours",
        "Policy",
        "add_subjects",
        "approve_case",
        "close_case",
        "new_case_id",
        "open_case",
    ]


def test_default_policy_loads_against_default_schema(default_policy: Policy) -> None:
    roles = {
        "registrar",
        "duty_officer",
        "investigator",
        "supervisor",
        "intercept_operator",
        "teller",
        "border_officer",
        "clerk",
        "analyst",
        "director",
        "custodian",
    }
    assert roles <= default_policy.roles
    assert default_policy.approver_roles("criminal_investigation") == {"supervisor", "director"}
    assert default_policy.approver_roles("lawful_intercept") == {"director"}
    assert default_policy.approver_roles("identity_check") == frozenset()
    assert all(default_policy.purposes.values()), "every purpose is described"
    assert default_policy.timezone == "Asia/Shanghai"


def test_default_policy_never_lets_location_be_read_without_a_warrant(
    default_policy: Policy, schema: Schema
) -> None:
    reads = {Action.GET, Action.FIND, Action.EXPORT}
    for g in default_policy.grants:
        for collection, fields in g.fields.items():
            classes = {schema.collection(collection).fields[f].data_class for f in fields}
            if DataClass.LOCATION in classes and g.actions & reads:
                assert g.requires_case and g.requires_approval and not g.break_glass


def test_default_registrar_cannot_read(default_policy: Policy) -> None:
    registrar = [g for g in default_policy.grants if g.role == "registrar"]
    assert registrar and all(g.actions == {Action.PUT} for g in registrar)


def test_star_expands_to_every_collection_and_field_in_schema_order(schema: Schema) -> None:
    text = grant(actions='["put"]', collections='["*"]', fields='["*"]')
    (only,) = Policy.loads(text, schema=schema).grants
    assert only.collections == tuple(schema.collections)
    assert only.fields["flights"] == tuple(schema.collection("flights").fields)


def test_named_fields_are_kept_in_schema_order(schema: Schema) -> None:
    text = grant(fields='["birth_date", "name"]')
    (only,) = Policy.loads(text, schema=schema).grants
    assert only.fields == {"identity": ("name", "birth_date")}


def test_defaults_of_a_grant(schema: Schema) -> None:
    policy = Policy.loads(grant(), schema=schema)
    (only,) = policy.grants
    assert (only.requires_case, only.requires_approval, only.break_glass) == (False, None, False)
    assert only.requires_assignment
    assert only.max_subjects_per_day == 0 and only.hours is None
    assert policy.timezone == "UTC"


def test_load_reads_a_file(tmp_path: Path, schema: Schema) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(grant(), encoding="utf-8")
    assert Policy.load(path, schema=schema).purposes == {"p": "A purpose."}


def test_load_names_a_missing_file(tmp_path: Path, schema: Schema) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml: cannot read"):
        Policy.load(path, schema=schema)


def test_errors_name_the_source(schema: Schema) -> None:
    with pytest.raises(ConfigError, match=r"^site\.toml: grants\[0\]\.purpose: "):
        Policy.loads(grant(purpose='"q"'), schema=schema, source="site.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[grants]\n", "not valid TOML"),
        (HEAD + "colour = 1\n", "colour: unknown key"),
        (HEAD.replace("description", "descr"), r"purposes\.p\.descr: unknown key"),
        (grant(requires_cases="true"), r"grants\[0\]\.requires_cases: unknown key"),
        (grant(purpose='"q"'), r"grants\[0\]\.purpose: purpose 'q' is not declared"),
        (grant(role=None), r"grants\[0\]\.role: missing"),
        (grant(actions='["read"]'), r"grants\[0\]\.actions: unknown action 'read'"),
        (grant(actions='["case_open"]'), r"unknown action 'case_open'"),
        (grant(actions="[]"), r"grants\[0\]\.actions: must be a non-empty list"),
        (grant(collections='["cars"]'), r"grants\[0\]\.collections: unknown collection\(s\) cars"),
        (grant(collections='["*", "identity"]'), r"'\*' must stand alone"),
        (
            grant(collections='["identity", "hotel_stays"]', fields='["name"]'),
            r"grants\[0\]\.fields: collection 'hotel_stays' has no field\(s\) name",
        ),
        (grant(fields='["nmae"]'), r"collection 'identity' has no field\(s\) nmae"),
        (grant(hours='"8-20"'), r"grants\[0\]\.hours: '8-20' is not a window"),
        (grant(hours='"25:00-26:00"'), r"grants\[0\]\.hours: '25:00-26:00' is not a window"),
        (grant(hours='"08:00-08:00"'), r"grants\[0\]\.hours: an empty window"),
        ('timezone = "Mars/Olympus"\n' + HEAD, r"timezone: unknown time zone 'Mars/Olympus'"),
        ('timezone = "../etc/passwd"\n' + HEAD, r"timezone: unknown time zone"),
        (
            grant(requires_approval='"supervisor"'),
            r"grants\[0\]\.requires_approval: needs requires_case = true",
        ),
        (grant(requires_case='"yes"'), r"grants\[0\]\.requires_case: must be true or false"),
        (
            grant(requires_assignment="false"),
            r"grants\[0\]\.requires_assignment: needs requires_case = true",
        ),
        (
            grant(requires_case="true", requires_assignment='"no"'),
            r"grants\[0\]\.requires_assignment: must be true or false",
        ),
        (grant(max_subjects_per_day="-1"), r"max_subjects_per_day: must be a whole number"),
        (grant(max_subjects_per_day="true"), r"max_subjects_per_day: must be a whole number"),
        ('grants = "all"\n' + HEAD, r"grants: must be an array of tables"),
    ],
)
def test_invalid_policies_are_refused_naming_the_key_path(
    schema: Schema, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.loads(text, schema=schema, source="p.toml")


LOCATION = {"collections": '["phone_location"]', "fields": '["*"]'}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"requires_case": "true"},
        {"actions": '["find"]', "requires_case": "true"},
        {"actions": '["export"]'},
    ],
    ids=["no-case", "case-without-approval", "find", "export"],
)
def test_reading_location_without_dual_control_is_refused_at_load(
    schema: Schema, extra: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=r"grants\[0\]: reading location data \(phone_location\)"):
        Policy.loads(grant(**{**LOCATION, **extra}), schema=schema)


def test_location_through_star_collections_is_caught(schema: Schema) -> None:
    with pytest.raises(ConfigError, match="reading location data"):
        Policy.loads(grant(collections='["*"]', fields='["*"]'), schema=schema)


def test_location_field_named_explicitly_is_caught(schema: Schema) -> None:
    with pytest.raises(ConfigError, match="reading location data"):
        Policy.loads(grant(collections='["phone_location"]', fields='["position"]'), schema=schema)


def test_location_break_glass_is_refused_at_load(schema: Schema) -> None:
    text = grant(
        **LOCATION,
        requires_case="true",
        requires_approval='"director"',
        break_glass="true",
    )
    with pytest.raises(ConfigError, match=r"grants\[0\]\.break_glass: break-glass may not waive"):
        Policy.loads(text, schema=schema)


def test_location_is_accepted_under_a_warrant_and_for_writes(schema: Schema) -> None:
    warrant = grant(**LOCATION, requires_case="true", requires_approval='"director"')
    (only,) = Policy.loads(warrant, schema=schema).grants
    assert only.location == {"phone_location"}
    write = grant(**LOCATION, actions='["put"]')
    assert Policy.loads(write, schema=schema).grants[0].actions == {Action.PUT}


def test_non_location_fields_of_a_location_collection_need_no_warrant(schema: Schema) -> None:
    text = grant(collections='["phone_location"]', fields='["observed_at"]')
    assert Policy.loads(text, schema=schema).grants[0].location == frozenset()


def test_policy_without_grants_allows_nothing_but_loads(schema: Schema) -> None:
    policy = Policy.loads(HEAD, schema=schema)
    assert policy.grants == () and policy.roles == frozenset()


times = st.times().map(lambda t: t.replace(microsecond=0))
minutes = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@given(a=minutes, b=minutes, moment=times)
def test_a_window_and_its_reverse_partition_the_day(a: time, b: time, moment: time) -> None:
    if a == b:
        return
    forward = Hours(start=a, end=b, text="")
    reverse = Hours(start=b, end=a, text="")
    assert forward.contains(moment) != reverse.contains(moment)
