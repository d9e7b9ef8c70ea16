"""Decisions: each refusal names its missing condition; allows name the grant; break-glass flags."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError
from custodes.model import Access, Action, Case, Decision, Principal
from custodes.policy import Policy
from custodes.schema import Schema

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
SUBJ = b"\x01" * 32
OTHER = b"\x02" * 32
PSEUDO = "pseudonym-of-subject"
ORG = "police"
INV = Principal(accessor="inv1", org=ORG, role="investigator")
DUTY = Principal(accessor="duty1", org=ORG, role="duty_officer")
CI = "criminal_investigation"
WHY = "suspect seen boarding a flight with a hostage, minutes matter"
CASE = Case(
    case_id="C-1",
    org=ORG,
    purpose=CI,
    subjects=frozenset({SUBJ}),
    assigned=frozenset({"inv1"}),
    opened_by="inv1",
    opened_at=T0 - timedelta(days=1),
    expires_at=T0 + timedelta(days=7),
    approved_by="sup1",
    approver_role="supervisor",
    approved_at=T0 - timedelta(hours=20),
)


def access(
    principal: Principal = INV,
    purpose: str | None = CI,
    case: str | None = "C-1",
    *,
    break_glass: bool = False,
    justification: str | None = None,
) -> Access:
    return Access(
        principal=principal,
        purpose=purpose,
        case=case,
        break_glass=break_glass,
        justification=justification,
    )


def ask(
    policy: Policy,
    acc: Access,
    *,
    case: Case | None = CASE,
    action: Action = Action.GET,
    collection: str | None = "flights",
    fields: list[str] | None = None,
    subject_ref: bytes | None = SUBJ,
    subject: str | None = PSEUDO,
    now: datetime = T0,
    today: frozenset[str] = frozenset(),
) -> Decision:
    return policy.decide(
        access=acc,
        action=action,
        collection=collection,
        fields=fields,
        subject_ref=subject_ref,
        subject=subject,
        case=case,
        now=now,
        subjects_today=today,
    )


def refused(decision: Decision, code: str, reason: str) -> None:
    assert not decision.allowed
    assert decision.missing == (code,)
    assert decision.reason == reason
    assert not decision.break_glass


# -- allowed -------------------------------------------------------------------------------------


def test_allowed_names_the_grant_and_case_and_gives_the_grant_fields(
    policy: Policy, schema: Schema
) -> None:
    decision = ask(policy, access())
    assert decision.allowed and decision.missing == () and not decision.break_glass
    assert decision.reason == (
        "allowed: role 'investigator' may get 'flights' for 'criminal_investigation' "
        "under case 'C-1'"
    )
    assert decision.fields == tuple(schema.collection("flights").fields)


def test_allowed_returns_the_requested_fields_only(policy: Policy) -> None:
    decision = ask(policy, access(), fields=["seat", "airline", "seat"])
    assert decision.allowed and decision.fields == ("seat", "airline")


def test_minimal_field_set_is_the_grants_not_the_collections(policy: Policy) -> None:
    decision = ask(policy, access(DUTY, "identity_check", None), collection="identity")
    assert decision.allowed and decision.fields == ("name", "id_number", "birth_date")


def test_put_without_case(policy: Policy) -> None:
    registrar = Principal(accessor="hotel9", org="hotel", role="registrar")
    decision = ask(
        policy,
        access(registrar, "registration", None),
        action=Action.PUT,
        collection="identity",
        fields=["name", "id_number"],
    )
    assert decision.allowed
    assert decision.reason == "allowed: role 'registrar' may put 'identity' for 'registration'"


def test_find_names_no_subject_so_the_case_subject_check_is_skipped(policy: Policy) -> None:
    decision = ask(policy, access(), action=Action.FIND, subject_ref=None, subject=None)
    assert decision.allowed


# -- 1. purpose, 2. grant, 3. fields -------------------------------------------------------------


@pytest.mark.parametrize("purpose", [None, "", "   "])
def test_no_purpose(policy: Policy, purpose: str | None) -> None:
    decision = ask(policy, access(purpose=purpose))
    refused(decision, "purpose", "no purpose given: every access must name its purpose")


def test_undeclared_purpose(policy: Policy) -> None:
    decision = ask(policy, access(purpose="curiosity"))
    refused(decision, "purpose", "purpose 'curiosity' is not declared in the policy")


def test_no_grant_for_role(policy: Policy) -> None:
    clerk = Principal(accessor="c1", org=ORG, role="clerk")
    decision = ask(policy, access(clerk, "identity_check", None))
    refused(
        decision, "grant", "no grant lets role 'clerk' get 'flights' for purpose 'identity_check'"
    )


def test_no_grant_for_action(policy: Policy) -> None:
    decision = ask(policy, access(), action=Action.EXPORT)
    refused(
        decision,
        "grant",
        "no grant lets role 'investigator' export 'flights' for purpose 'criminal_investigation'",
    )


def test_no_grant_for_collection(policy: Policy) -> None:
    decision = ask(policy, access(), collection="hotel_stays")
    assert decision.missing == ("grant",)
    assert "'hotel_stays'" in decision.reason


@pytest.mark.parametrize("collection", [None, "cars"])
def test_unknown_or_missing_collection_is_refused(policy: Policy, collection: str | None) -> None:
    decision = ask(policy, access(), collection=collection)
    assert decision.missing == ("grant",) and not decision.allowed


def test_case_actions_are_not_grantable(policy: Policy) -> None:
    assert ask(policy, access(), action=Action.CASE_OPEN).missing == ("grant",)


def test_fields_outside_the_grant(policy: Policy) -> None:
    decision = ask(
        policy,
        access(DUTY, "identity_check", None),
        collection="identity",
        fields=["name", "phone", "address"],
    )
    refused(
        decision,
        "fields",
        "purpose 'identity_check' does not cover field(s) phone, address of 'identity'",
    )


# -- 4. case -------------------------------------------------------------------------------------


def test_case_required(policy: Policy) -> None:
    decision = ask(policy, access(case=None), case=None)
    refused(decision, "case", "purpose 'criminal_investigation' on 'flights' requires a case")


def test_case_unknown(policy: Policy) -> None:
    decision = ask(policy, access(case="C-9"), case=None)
    refused(decision, "case", "case 'C-9' does not exist")


def test_case_object_for_another_id_counts_as_unknown(policy: Policy) -> None:
    decision = ask(policy, access(case="C-9"), case=CASE)
    assert decision.missing == ("case",)


CASE_REFUSALS = [
    ({"org": "customs"}, "case.org", "case 'C-1' belongs to another organization"),
    (
        {"purpose": "identity_check"},
        "case.purpose",
        "case 'C-1' was opened for purpose 'identity_check', not 'criminal_investigation'",
    ),
    ({"closed_at": T0 - timedelta(hours=1)}, "case.open", "case 'C-1' is closed"),
    ({"closed_at": T0}, "case.open", "case 'C-1' is closed"),
    ({"expires_at": T0}, "case.open", "case 'C-1' has expired"),
    ({"subjects": frozenset({OTHER})}, "case.subject", "case 'C-1' does not name this subject"),
    (
        {"assigned": frozenset({"inv2"})},
        "case.assignment",
        "case 'C-1' is not assigned to the reader",
    ),
]
APPROVAL = "case 'C-1' is not approved by a 'supervisor' other than the reader"
APPROVAL_REFUSALS = [
    {"approved_by": None, "approver_role": None, "approved_at": None},
    {"approver_role": "director"},
    {"approved_by": "inv1", "opened_by": "inv0"},
    {"approved_by": "inv0", "opened_by": "inv0"},
]


@pytest.mark.parametrize(("changes", "code", "reason"), CASE_REFUSALS)
def test_case_conditions(
    policy: Policy, changes: dict[str, object], code: str, reason: str
) -> None:
    refused(ask(policy, access(), case=replace(CASE, **changes)), code, reason)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes", APPROVAL_REFUSALS, ids=["unapproved", "wrong-role", "by-reader", "by-opener"]
)
def test_case_approval(policy: Policy, changes: dict[str, object]) -> None:
    decision = ask(policy, access(), case=replace(CASE, **changes))  # type: ignore[arg-type]
    refused(decision, "case.approval", APPROVAL)


def test_case_approval_by_the_role_the_grant_names(policy: Policy) -> None:
    decision = ask(policy, access(), collection="bank_deposits")
    refused(
        decision,
        "case.approval",
        "case 'C-1' is not approved by a 'director' other than the reader",
    )
    by_director = replace(CASE, approved_by="dir1", approver_role="director")
    assert ask(policy, access(), collection="bank_deposits", case=by_director).allowed


def test_a_named_case_is_checked_even_where_the_grant_needs_none(policy: Policy) -> None:
    decision = ask(policy, access(DUTY, "identity_check", "C-9"), collection="identity", case=None)
    refused(decision, "case", "case 'C-9' does not exist")


def test_location_needs_a_time_boxed_case(policy: Policy) -> None:
    operator = Principal(accessor="op1", org=ORG, role="intercept_operator")
    warrant = replace(
        CASE,
        purpose="lawful_intercept",
        assigned=frozenset({"op1"}),
        approved_by="dir1",
        approver_role="director",
        expires_at=None,
    )
    acc = access(operator, "lawful_intercept")
    decision = ask(policy, acc, collection="phone_location", case=warrant)
    refused(
        decision,
        "case.expiry",
        "case 'C-1' has no expiry: location data is read only under a time-boxed case",
    )
    boxed = replace(warrant, expires_at=T0 + timedelta(hours=48))
    assert ask(policy, acc, collection="phone_location", case=boxed).allowed


# -- 5. hours ------------------------------------------------------------------------------------


def at_local(hour: int, minute: int = 0) -> datetime:
    """The UTC instant that is ``hour:minute`` on 2 March 2026 in Asia/Shanghai (UTC+8)."""
    return datetime(2026, 3, 2, 0, 0, tzinfo=UTC) + timedelta(hours=hour - 8, minutes=minute)


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [(8, 0, True), (12, 0, True), (19, 59, True), (20, 0, False), (7, 59, False), (23, 0, False)],
)
def test_day_window_in_policy_timezone(
    policy: Policy, hour: int, minute: int, inside: bool
) -> None:
    acc = access(DUTY, "identity_check", None)
    decision = ask(policy, acc, collection="identity", case=None, now=at_local(hour, minute))
    if inside:
        assert decision.allowed
    else:
        refused(decision, "hours", "outside permitted hours 08:00-20:00 (Asia/Shanghai)")


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [(22, 0, True), (23, 30, True), (0, 0, True), (5, 59, True), (6, 0, False), (12, 0, False)],
)
def test_overnight_window(policy: Policy, hour: int, minute: int, inside: bool) -> None:
    night = Principal(accessor="n1", org=ORG, role="night_officer")
    acc = access(night, "identity_check", None)
    decision = ask(policy, acc, collection="identity", case=None, now=at_local(hour, minute))
    assert decision.allowed is inside
    if not inside:
        assert decision.reason == "outside permitted hours 22:00-06:00 (Asia/Shanghai)"


def test_hours_are_read_in_the_policy_timezone_whatever_the_offset_of_now(policy: Policy) -> None:
    acc = access(DUTY, "identity_check", None)
    new_york = at_local(21).astimezone(timezone(timedelta(hours=-5)))
    assert new_york.hour == 8, "08:00 in New York is 21:00 in Shanghai"
    decision = ask(policy, acc, collection="identity", case=None, now=new_york)
    assert decision.missing == ("hours",)


def test_naive_time_is_refused(policy: Policy) -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        ask(policy, access(), now=datetime(2026, 3, 2, 12, 0))


# -- 6. quota ------------------------------------------------------------------------------------


def test_quota_boundary(policy: Policy) -> None:
    acc = access(DUTY, "identity_check", None)

    def read(subject: str | None, today: set[str]) -> Decision:
        return ask(
            policy, acc, collection="identity", case=None, subject=subject, today=frozenset(today)
        )

    assert read("a", set()).allowed
    assert read("b", {"a"}).allowed
    refused(read("c", {"a", "b"}), "quota", "daily limit of 2 subjects reached")
    assert read("a", {"a", "b"}).allowed, "a subject already read today does not count again"
    assert read(None, {"a", "b"}).allowed, "no subject (a find) is not a new subject"


# -- several grants ------------------------------------------------------------------------------

TWO_GRANTS = """
[purposes.p]
description = "A purpose."
[[grants]]
role = "r"
purpose = "p"
actions = ["get"]
collections = ["identity"]
fields = ["name"]
hours = "08:00-09:00"
[[grants]]
role = "r"
purpose = "p"
actions = ["get"]
collections = ["identity"]
fields = ["name"]
requires_case = true
"""


def test_any_matching_grant_allows_else_the_furthest_refusal(schema: Schema) -> None:
    policy = Policy.loads(TWO_GRANTS, schema=schema)
    acc = access(Principal(accessor="x", org=ORG, role="r"), "p", None)
    noon = ask(policy, acc, collection="identity", case=None, now=T0)
    refused(noon, "hours", "outside permitted hours 08:00-09:00 (UTC)")
    morning = T0.replace(hour=8, minute=30)
    assert ask(policy, acc, collection="identity", case=None, now=morning).allowed
    with_case = replace(CASE, case_id="C-1", purpose="p", assigned=frozenset({"x"}))
    assert ask(policy, access(acc.principal, "p", "C-1"), collection="identity", case=with_case)


# -- break-glass ---------------------------------------------------------------------------------


def test_break_glass_waives_case_and_is_flagged(policy: Policy) -> None:
    acc = access(case=None, break_glass=True, justification=WHY)
    decision = ask(policy, acc, case=None)
    assert decision.allowed and decision.break_glass
    assert decision.reason.startswith("break-glass:")
    assert "'investigator'" in decision.reason and "'flights'" in decision.reason


def test_break_glass_waives_an_unapproved_case(policy: Policy) -> None:
    unapproved = replace(CASE, approved_by=None, approver_role=None, approved_at=None)
    decision = ask(policy, access(break_glass=True, justification=WHY), case=unapproved)
    assert decision.allowed and decision.break_glass


@pytest.mark.parametrize(
    "justification",
    [None, "", "urgent", " u r g e n t " * 3, "a b c d e f g h i j k l m n o p q r s"],
)
def test_break_glass_needs_a_justification(policy: Policy, justification: str | None) -> None:
    acc = access(case=None, break_glass=True, justification=justification)
    refused(
        ask(policy, acc, case=None),
        "justification",
        "break-glass needs a justification of at least 20 characters",
    )


def test_break_glass_justification_of_exactly_twenty_characters(policy: Policy) -> None:
    acc = access(case=None, break_glass=True, justification=" 0123456789 abcdefghij ")
    assert ask(policy, acc, case=None).allowed


def test_break_glass_refused_where_the_grant_forbids(policy: Policy) -> None:
    acc = access(case=None, break_glass=True, justification=WHY)
    refused(
        ask(policy, acc, case=None, collection="bank_deposits"),
        "break_glass",
        "policy does not permit break-glass for role 'investigator' to get 'bank_deposits' "
        "for purpose 'criminal_investigation'",
    )


def test_break_glass_does_not_waive_hours_where_the_grant_forbids(policy: Policy) -> None:
    acc = access(DUTY, "identity_check", None, break_glass=True, justification=WHY)
    decision = ask(policy, acc, collection="identity", case=None, now=at_local(23))
    assert decision.missing == ("break_glass",)


def test_break_glass_still_counts_the_quota(policy: Policy) -> None:
    acc = access(case=None, break_glass=True, justification=WHY)
    decision = ask(policy, acc, case=None, today=frozenset({"a", "b", "c"}))
    refused(decision, "quota", "daily limit of 3 subjects reached")


def test_break_glass_still_limits_fields(policy: Policy) -> None:
    acc = access(DUTY, "identity_check", None, break_glass=True, justification=WHY)
    decision = ask(policy, acc, collection="identity", case=None, fields=["phone"])
    assert decision.missing == ("fields",)


def test_break_glass_still_needs_a_purpose(policy: Policy) -> None:
    acc = access(purpose=None, case=None, break_glass=True, justification=WHY)
    assert ask(policy, acc, case=None).missing == ("purpose",)


# -- reasons never carry personal data -----------------------------------------------------------

id_numbers = st.from_regex(r"[1-6][0-9]{16}[0-9X]", fullmatch=True)
ROLES = ["investigator", "duty_officer", "registrar", "night_officer", "intercept_operator"]
PURPOSES = [None, CI, "identity_check", "registration", "lawful_intercept"]
COLLECTIONS = ["identity", "flights", "bank_deposits", "phone_location", "hotel_stays"]


@settings(max_examples=300, deadline=None)
@given(
    secret=id_numbers,
    role=st.sampled_from(ROLES),
    purpose=st.sampled_from(PURPOSES),
    collection=st.sampled_from(COLLECTIONS),
    action=st.sampled_from(list(Action)),
    where=st.sampled_from(["purpose", "case", "field", "collection", "justification", "none"]),
    break_glass=st.booleans(),
    hour=st.integers(0, 23),
)
def test_reasons_never_contain_subject_data(
    policy: Policy,
    secret: str,
    role: str,
    purpose: str | None,
    collection: str,
    action: Action,
    where: str,
    break_glass: bool,
    hour: int,
) -> None:
    principal = Principal(accessor="a1", org=ORG, role=role)
    acc = Access(
        principal=principal,
        purpose=secret if where == "purpose" else purpose,
        case=secret if where == "case" else "C-1",
        justification=f"{secret} {WHY}",
        break_glass=break_glass,
    )
    decision = policy.decide(
        access=acc,
        action=action,
        collection=secret if where == "collection" else collection,
        fields=[secret, "name"] if where == "field" else None,
        subject_ref=secret.encode(),
        subject=f"ps-{secret}",
        case=replace(CASE, assigned=frozenset({"a1"})),
        now=at_local(hour),
        subjects_today=frozenset({f"ps-{secret}"[::-1]}),
    )
    assert secret not in decision.reason
    assert secret[:-1] not in decision.reason
    if decision.allowed:
        assert any(g.matches(role, acc.purpose or "", action, collection) for g in policy.grants), (
            "deny by default: every allow rests on a grant"
        )
