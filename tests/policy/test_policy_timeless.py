"""Remembered decisions: only for accesses whose answer cannot depend on subject, case or time.

``Policy.timeless_decision`` lets the vault skip loading a case and today's subjects. It must
return exactly what ``decide`` would return for every subject, moment and history, and nothing
(``None``) whenever hours, a daily limit, a case or break-glass could change the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError
from custodes.model import Access, Action, Case, Decision, Principal
from custodes.policy import Policy
from custodes.schema import Schema

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
MIXED = """
timezone = "Asia/Shanghai"

[purposes.identity_check]
description = "Checking who someone is."
[purposes.registration]
description = "Registering reports."

[[grants]]
role = "clerk"
purpose = "identity_check"
actions = ["get"]
collections = ["identity"]
fields = ["name"]

[[grants]]
role = "clerk"
purpose = "identity_check"
actions = ["get"]
collections = ["identity"]
fields = ["*"]
hours = "08:00-20:00"

[[grants]]
role = "clerk"
purpose = "registration"
actions = ["get"]
collections = ["identity"]
fields = ["*"]
"""


def _case(principal: Principal, purpose: str) -> Case:
    return Case(
        case_id="C-1",
        org=principal.org,
        purpose=purpose,
        subjects=frozenset({b"\x01" * 32}),
        assigned=frozenset({principal.accessor}),
        opened_by=principal.accessor,
        opened_at=T0 - timedelta(days=1),
    )


def _decide(
    policy: Policy,
    acc: Access,
    action: Action,
    collection: str | None,
    fields: list[str] | None,
    *,
    now: datetime = T0,
    subject: bytes | None = None,
    today: frozenset[str] = frozenset(),
    case: Case | None = None,
) -> Decision:
    return policy.decide(
        access=acc,
        action=action,
        collection=collection,
        fields=fields,
        subject_ref=subject,
        subject=None if subject is None else subject.hex(),
        case=case,
        now=now,
        subjects_today=today,
    )


@st.composite
def requests(
    draw: st.DrawFn, policy: Policy
) -> tuple[Access, Action, str | None, list[str] | None]:
    schema = policy.schema
    role = draw(st.sampled_from(sorted(policy.roles | {"nobody"})))
    purpose = draw(st.sampled_from([*sorted(policy.purposes), None, "undeclared", " "]))
    collection = draw(st.sampled_from([*schema.collections, None, "no_such"]))
    known = list(schema.collections[collection].fields) if collection in schema.collections else []
    fields = draw(st.none() | st.lists(st.sampled_from([*known, "bogus"]), max_size=3))
    action = draw(st.sampled_from(list(Action)))
    principal = Principal(accessor="a-1", org="org-1", role=role)
    return Access(principal, purpose), action, collection, fields


def _agrees_everywhere(policy: Policy, data: st.DataObject) -> None:
    acc, action, collection, fields = data.draw(requests(policy))
    remembered = policy.timeless_decision(
        access=acc, action=action, collection=collection, fields=fields, now=T0
    )
    if remembered is None:
        return
    # Any subject, any moment (night and day in the policy's zone), any history, a stray case
    # object: decide gives the remembered answer.
    for hours in (0, 7, 13, 19):
        for today in (frozenset(), frozenset(f"s{i}" for i in range(1000))):
            for subject in (None, b"\x01" * 32, b"\x02" * 32):
                decision = _decide(
                    policy,
                    acc,
                    action,
                    collection,
                    fields,
                    now=T0 + timedelta(hours=hours),
                    subject=subject,
                    today=today,
                    case=_case(acc.principal, acc.purpose or "x"),
                )
                assert decision == remembered


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_remembered_decisions_equal_decide_for_the_test_policy(
    policy: Policy, data: st.DataObject
) -> None:
    _agrees_everywhere(policy, data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_remembered_decisions_equal_decide_for_the_default_policy(
    default_policy: Policy, data: st.DataObject
) -> None:
    _agrees_everywhere(default_policy, data)


def test_a_grant_without_conditions_is_remembered(schema: Schema) -> None:
    policy = Policy.loads(MIXED, schema=schema)
    clerk = Access(Principal("c-1", "org", "clerk"), "registration")
    first = policy.timeless_decision(
        access=clerk, action=Action.GET, collection="identity", fields=None, now=T0
    )
    assert first is not None and first.allowed
    assert first.fields == tuple(schema.collection("identity").fields)
    again = policy.timeless_decision(
        access=clerk, action=Action.GET, collection="identity", fields=None, now=T0
    )
    assert again is first


def test_hours_on_any_applicable_grant_make_the_decision_not_timeless(schema: Schema) -> None:
    # The unconditional grant refuses the phone field; the second grant allows it by day only.
    policy = Policy.loads(MIXED, schema=schema)
    clerk = Access(Principal("c-1", "org", "clerk"), "identity_check")
    ask = {"access": clerk, "action": Action.GET, "collection": "identity", "fields": ["phone"]}
    assert policy.timeless_decision(**ask, now=T0) is None  # type: ignore[arg-type]
    day = _decide(policy, clerk, Action.GET, "identity", ["phone"], now=T0)  # 12:00 local
    night = _decide(policy, clerk, Action.GET, "identity", ["phone"], now=T0 + timedelta(hours=12))
    assert day.allowed
    assert not night.allowed and night.missing == ("hours",)
    assert policy.timeless_decision(**ask, now=T0) is None  # type: ignore[arg-type]


def test_daily_limits_are_never_remembered(policy: Policy) -> None:
    duty = Access(Principal("d-1", "police", "duty_officer"), "identity_check")
    ask = {"access": duty, "action": Action.GET, "collection": "identity", "fields": ["name"]}
    assert policy.timeless_decision(**ask, now=T0) is None  # type: ignore[arg-type]
    full = frozenset({"a", "b"})
    refused = _decide(
        policy, duty, Action.GET, "identity", ["name"], subject=b"\x09" * 32, today=full
    )
    assert refused.missing == ("quota",)


def test_named_cases_and_break_glass_are_never_remembered(schema: Schema) -> None:
    policy = Policy.loads(MIXED, schema=schema)
    principal = Principal("c-1", "org", "clerk")
    for acc in (
        Access(principal, "registration", case="C-1"),
        Access(principal, "registration", justification="x" * 30, break_glass=True),
    ):
        found = policy.timeless_decision(
            access=acc, action=Action.GET, collection="identity", fields=None, now=T0
        )
        assert found is None


def test_naive_time_is_refused_on_the_fast_path_too(policy: Policy) -> None:
    reg = Access(Principal("r-1", "hotel", "registrar"), "registration")
    with pytest.raises(InputError, match="timezone-aware"):
        policy.timeless_decision(
            access=reg,
            action=Action.PUT,
            collection="identity",
            fields=None,
            now=datetime(2026, 1, 1),
        )


def test_the_memory_of_decisions_is_bounded(schema: Schema) -> None:
    policy = Policy.loads(MIXED, schema=schema)
    clerk = Principal("c-1", "org", "clerk")
    for i in range(3000):  # caller-chosen purposes: each a distinct, remembered refusal
        decision = policy.timeless_decision(
            access=Access(clerk, f"p{i}"),
            action=Action.GET,
            collection="identity",
            fields=None,
            now=T0,
        )
        assert decision is not None and decision.missing == ("purpose",)
    assert len(policy._timeless) <= 1024
    kept = policy.timeless_decision(
        access=Access(clerk, "registration"),
        action=Action.GET,
        collection="identity",
        fields=None,
        now=T0,
    )
    assert kept is not None and kept.allowed
