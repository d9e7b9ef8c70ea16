"""Case life cycle: opening, dual-control approval, closing, adding subjects; and the default
policy end to end through those functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custodes.errors import AccessDenied, InputError
from custodes.model import Access, Action, Case, Decision, Principal
from custodes.policy import (
    Policy,
    add_subjects,
    approve_case,
    close_case,
    new_case_id,
    open_case,
)
from custodes.schema import Schema

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
CI = "criminal_investigation"
A, B, C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32
INV = Principal(accessor="inv1", org="police", role="investigator")
INV2 = Principal(accessor="inv2", org="police", role="investigator")
SUP = Principal(accessor="sup1", org="police", role="supervisor")
DIR = Principal(accessor="dir1", org="police", role="director")


def opened(policy: Policy, **changes: object) -> Case:
    args: dict[str, object] = {
        "case_id": "C-1",
        "principal": INV,
        "purpose": CI,
        "subjects": [A],
        "assigned": [],
        "now": T0,
        "expires_at": T0 + timedelta(days=7),
        "policy": policy,
    }
    args.update(changes)
    return open_case(**args)  # type: ignore[arg-type]


def read(policy: Policy, under: Case, principal: Principal = INV, **kw: object) -> Decision:
    """Ask whether ``principal`` may get a record under case ``under``; ``kw`` overrides."""
    args: dict[str, object] = {
        "access": Access(principal=principal, purpose=under.purpose, case=under.case_id),
        "action": Action.GET,
        "collection": "flights",
        "fields": None,
        "subject_ref": A,
        "subject": "ps-a",
        "case": under,
        "now": T0 + timedelta(hours=1),
        "subjects_today": frozenset(),
    }
    args.update(kw)
    return policy.decide(**args)  # type: ignore[arg-type]


# -- new_case_id ---------------------------------------------------------------------------------


def test_case_ids_have_the_documented_shape_and_differ() -> None:
    ids = {new_case_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"C-[A-Z2-7]{10}", i) for i in ids)


def test_case_id_from_given_bytes_is_deterministic() -> None:
    assert new_case_id(bytes(7)) == "C-AAAAAAAAAA"
    assert new_case_id(b"\xff" * 8) == new_case_id(b"\xff" * 7) == "C-7777777777"


def test_case_id_needs_enough_random_bytes() -> None:
    with pytest.raises(InputError, match="at least 7 random bytes"):
        new_case_id(b"\x00" * 6)


# -- open_case -----------------------------------------------------------------------------------


def test_open_case_defaults(default_policy: Policy) -> None:
    case = opened(default_policy, subjects=[A, B, A])
    assert case.org == "police" and case.opened_by == "inv1" and case.opened_at == T0
    assert case.assigned == {"inv1"}, "the opener is assigned when nobody else is"
    assert case.subjects == {A, B}
    assert case.approved_by is None and case.closed_at is None and case.is_open(T0)


def test_open_case_with_a_team(default_policy: Policy) -> None:
    assert opened(default_policy, assigned=["inv2", "inv3"]).assigned == {"inv2", "inv3"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"purpose": "curiosity"}, "'curiosity' is not declared"),
        ({"subjects": []}, "at least one subject"),
        ({"expires_at": T0}, "expires_at must be after"),
        ({"expires_at": T0 - timedelta(seconds=1)}, "expires_at must be after"),
        ({"case_id": ""}, "needs a case id"),
    ],
)
def test_open_case_refuses_bad_input(
    default_policy: Policy, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        opened(default_policy, **changes)


# -- approve_case --------------------------------------------------------------------------------


def test_approval_records_approver_and_role(default_policy: Policy) -> None:
    case = approve_case(opened(default_policy), approver=SUP, now=T0, policy=default_policy)
    assert (case.approved_by, case.approver_role, case.approved_at) == ("sup1", "supervisor", T0)


def test_opener_cannot_approve_own_case(default_policy: Policy) -> None:
    opener_is_supervisor = Principal(accessor="sup1", org="police", role="supervisor")
    case = opened(default_policy, principal=opener_is_supervisor, assigned=["inv1"])
    with pytest.raises(AccessDenied) as caught:
        approve_case(case, approver=opener_is_supervisor, now=T0, policy=default_policy)
    assert caught.value.missing == ("case.approval",)
    assert "opener" in caught.value.reason


def test_assignee_cannot_approve(default_policy: Policy) -> None:
    case = opened(default_policy, assigned=["inv1", "sup1"])
    with pytest.raises(AccessDenied, match="opener or an assignee"):
        approve_case(case, approver=SUP, now=T0, policy=default_policy)


def test_approver_from_another_org_is_refused(default_policy: Policy) -> None:
    outsider = Principal(accessor="sup9", org="customs", role="supervisor")
    with pytest.raises(AccessDenied) as caught:
        approve_case(opened(default_policy), approver=outsider, now=T0, policy=default_policy)
    assert caught.value.missing == ("case.org",)


@pytest.mark.parametrize("role", ["investigator", "duty_officer", "teller", "custodian"])
def test_approver_without_an_approver_role_is_refused(default_policy: Policy, role: str) -> None:
    approver = Principal(accessor="x9", org="police", role=role)
    with pytest.raises(AccessDenied, match=f"role '{role}' may not approve cases"):
        approve_case(opened(default_policy), approver=approver, now=T0, policy=default_policy)


def test_approver_role_depends_on_the_purpose(default_policy: Policy) -> None:
    check = opened(default_policy, purpose="identity_check")
    with pytest.raises(AccessDenied, match=r"approver roles: none"):
        approve_case(check, approver=SUP, now=T0, policy=default_policy)


def test_closed_expired_or_approved_cases_cannot_be_approved(default_policy: Policy) -> None:
    case = opened(default_policy)
    closed = close_case(case, principal=INV, now=T0)
    with pytest.raises(AccessDenied, match="closed or expired"):
        approve_case(closed, approver=SUP, now=T0, policy=default_policy)
    late = T0 + timedelta(days=7)
    with pytest.raises(AccessDenied, match="closed or expired"):
        approve_case(case, approver=SUP, now=late, policy=default_policy)
    approved = approve_case(case, approver=SUP, now=T0, policy=default_policy)
    with pytest.raises(AccessDenied, match="already approved"):
        approve_case(approved, approver=DIR, now=T0, policy=default_policy)


# -- close_case ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [INV, INV2, SUP])
def test_opener_assignee_or_approver_may_close(default_policy: Policy, who: Principal) -> None:
    case = opened(default_policy, assigned=["inv1", "inv2"])
    case = approve_case(case, approver=SUP, now=T0, policy=default_policy)
    assert close_case(case, principal=who, now=T0).closed_at == T0


def test_others_may_not_close(default_policy: Policy) -> None:
    case = opened(default_policy)
    for outsider in (INV2, Principal(accessor="inv1", org="customs", role="investigator")):
        with pytest.raises(AccessDenied, match="may be closed only by"):
            close_case(case, principal=outsider, now=T0)


def test_closing_twice_is_an_input_error(default_policy: Policy) -> None:
    closed = close_case(opened(default_policy), principal=INV, now=T0)
    with pytest.raises(InputError, match="already closed"):
        close_case(closed, principal=INV, now=T0)


# -- add_subjects --------------------------------------------------------------------------------


def test_adding_subjects_resets_approval(default_policy: Policy) -> None:
    case = approve_case(opened(default_policy), approver=SUP, now=T0, policy=default_policy)
    grown = add_subjects(case, [B, C], principal=INV, now=T0)
    assert grown.subjects == {A, B, C}
    assert (grown.approved_by, grown.approver_role, grown.approved_at) == (None, None, None)
    assert read(default_policy, grown, subject_ref=A).missing == ("case.approval",)


def test_adding_known_subjects_changes_nothing(default_policy: Policy) -> None:
    case = approve_case(opened(default_policy), approver=SUP, now=T0, policy=default_policy)
    assert add_subjects(case, [A], principal=INV, now=T0) == case


def test_only_the_team_may_add_subjects(default_policy: Policy) -> None:
    case = opened(default_policy)
    with pytest.raises(AccessDenied, match="only the opener or an assignee"):
        add_subjects(case, [B], principal=SUP, now=T0)
    with pytest.raises(InputError, match="no subjects"):
        add_subjects(case, [], principal=INV, now=T0)
    closed = close_case(case, principal=INV, now=T0)
    with pytest.raises(AccessDenied, match="closed or expired"):
        add_subjects(closed, [B], principal=INV, now=T0)


# -- the default policy, end to end --------------------------------------------------------------


def test_investigation_needs_approval_then_reads_only_named_subjects(
    default_policy: Policy,
) -> None:
    case = opened(default_policy, subjects=[A])
    assert read(default_policy, case).missing == ("case.approval",)
    approved = approve_case(case, approver=SUP, now=T0, policy=default_policy)
    decision = read(default_policy, approved)
    assert decision.allowed and "under case 'C-1'" in decision.reason
    assert read(default_policy, approved, subject_ref=B).missing == ("case.subject",)
    assert read(default_policy, approved, principal=INV2).missing == ("case.assignment",)
    closed = close_case(approved, principal=INV, now=T0 + timedelta(minutes=30))
    assert read(default_policy, closed).reason == "case 'C-1' is closed"


def test_a_director_approval_does_not_stand_in_for_a_supervisor(default_policy: Policy) -> None:
    case = approve_case(opened(default_policy), approver=DIR, now=T0, policy=default_policy)
    assert read(default_policy, case, collection="bank_deposits").allowed
    assert read(default_policy, case, collection="flights").missing == ("case.approval",)


def test_default_duty_officer_sees_identity_fields_only(default_policy: Policy) -> None:
    duty = Principal(accessor="d1", org="police", role="duty_officer")
    access = Access(principal=duty, purpose="identity_check")
    common: dict[str, Any] = {"case": None, "access": access, "collection": "identity"}
    decision = read(default_policy, opened(default_policy), **common)
    assert decision.allowed and decision.fields == ("name", "id_number", "birth_date")
    assert read(default_policy, opened(default_policy), **common, fields=["phone"]).missing == (
        "fields",
    )
    flights = read(default_policy, opened(default_policy), **{**common, "collection": "flights"})
    assert flights.missing == ("grant",)


def test_default_registrar_cannot_read_back(default_policy: Policy) -> None:
    registrar = Principal(accessor="h1", org="hotel", role="registrar")
    access = Access(principal=registrar, purpose="registration")
    decision = read(default_policy, opened(default_policy), access=access, case=None)
    assert decision.missing == ("grant",)


def test_default_live_location_needs_director_and_expiry(default_policy: Policy) -> None:
    op = Principal(accessor="op1", org="police", role="intercept_operator")
    warrant = opened(default_policy, principal=op, purpose="lawful_intercept", expires_at=None)
    assert read(default_policy, warrant, op, collection="phone_location").missing == (
        "case.approval",
    )
    approved = approve_case(warrant, approver=DIR, now=T0, policy=default_policy)
    assert read(default_policy, approved, op, collection="phone_location").missing == (
        "case.expiry",
    )
    boxed = approve_case(
        opened(default_policy, principal=op, purpose="lawful_intercept"),
        approver=DIR,
        now=T0,
        policy=default_policy,
    )
    assert read(default_policy, boxed, op, collection="phone_location").allowed


def test_default_break_glass_is_not_available_for_bank_records(default_policy: Policy) -> None:
    access = Access(
        principal=INV,
        purpose=CI,
        break_glass=True,
        justification="armed suspect, bank account needed to trace the getaway",
    )
    common: dict[str, Any] = {"access": access, "case": None}
    assert read(default_policy, opened(default_policy), **common).break_glass
    bank = read(default_policy, opened(default_policy), **common, collection="bank_deposits")
    assert bank.missing == ("break_glass",)


def test_default_erasure_of_every_collection_needs_a_director_approved_case(
    default_policy: Policy,
) -> None:
    dpo = Principal(accessor="dpo1", org="police", role="custodian")
    case = opened(default_policy, principal=dpo, purpose="erasure")
    shred: dict[str, Any] = {"action": Action.SHRED, "collection": None, "fields": []}
    assert read(default_policy, case, dpo, **shred).missing == ("case.approval",)
    approved = approve_case(case, approver=DIR, now=T0, policy=default_policy)
    decision = read(default_policy, approved, dpo, **shred)
    assert decision.allowed and decision.fields == ()
    assert decision.reason == (
        "allowed: role 'custodian' may shred every collection for 'erasure' under case 'C-1'"
    )
    no_case = Access(principal=dpo, purpose="erasure")
    assert read(default_policy, approved, access=no_case, **shred).reason == (
        "purpose 'erasure' on every collection requires a case"
    )


def test_a_grant_for_some_collections_does_not_cover_every_collection(schema: Schema) -> None:
    text = """
[purposes.erasure]
description = "Erasure."
[[grants]]
role = "custodian"
purpose = "erasure"
actions = ["shred"]
collections = ["identity", "flights"]
fields = ["*"]
"""
    policy = Policy.loads(text, schema=schema)
    dpo = Principal(accessor="dpo1", org="police", role="custodian")
    access = Access(principal=dpo, purpose="erasure")
    decision = policy.decide(
        access=access,
        action=Action.SHRED,
        collection=None,
        fields=None,
        subject_ref=A,
        subject="ps-a",
        case=None,
        now=T0,
        subjects_today=frozenset(),
    )
    assert decision.missing == ("grant",)
    assert decision.reason == (
        "no grant lets role 'custodian' shred every collection for purpose 'erasure'"
    )
