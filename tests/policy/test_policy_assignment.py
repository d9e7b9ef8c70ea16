"""``requires_assignment = false``: an intercept operator may execute any approved warrant of its
organization, and that is the only case condition it waives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custodes.model import Access, Action, Case, Decision, Principal
from custodes.policy import Policy, approve_case, close_case, open_case
from custodes.schema import Schema

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
LI = "lawful_intercept"
A, B = b"\x0a" * 32, b"\x0b" * 32
OP1 = Principal(accessor="op1", org="telecom", role="intercept_operator")
OP2 = Principal(accessor="op2", org="telecom", role="intercept_operator")
OTHER_OP = Principal(accessor="op9", org="telecom-2", role="intercept_operator")
INV = Principal(accessor="inv1", org="telecom", role="investigator")


def warrant(policy: Policy, *, approved: bool = True, **changes: object) -> Case:
    args: dict[str, object] = {
        "case_id": "W-1",
        "principal": OP1,
        "purpose": LI,
        "subjects": [A],
        "assigned": [],
        "now": T0,
        "expires_at": T0 + timedelta(hours=48),
        "policy": policy,
    }
    args.update(changes)
    case = open_case(**args)  # type: ignore[arg-type]
    director = Principal(accessor="dir-x", org=case.org, role="director")
    return approve_case(case, approver=director, now=T0, policy=policy) if approved else case


def locate(policy: Policy, case: Case | None, reader: Principal = OP2, **kw: object) -> Decision:
    args: dict[str, object] = {
        "access": Access(principal=reader, purpose=LI, case="W-1"),
        "action": Action.GET,
        "collection": "phone_location",
        "fields": None,
        "subject_ref": A,
        "subject": "ps-a",
        "case": case,
        "now": T0 + timedelta(hours=1),
        "subjects_today": frozenset(),
    }
    args.update(kw)
    return policy.decide(**args)  # type: ignore[arg-type]


def test_an_operator_not_assigned_to_the_warrant_may_execute_it(default_policy: Policy) -> None:
    case = warrant(default_policy)
    assert case.assigned == {"op1"}
    decision = locate(default_policy, case, OP2)
    assert decision.allowed, decision.reason
    assert "under case 'W-1'" in decision.reason
    assert locate(default_policy, case, OP1).allowed


@pytest.mark.parametrize(
    ("setup", "missing"),
    [
        ({"approved": False}, "case.approval"),
        ({"expires_at": None}, "case.expiry"),
        ({"subjects": [B]}, "case.subject"),
        ({"principal": OTHER_OP}, "case.org"),
    ],
    ids=["unapproved", "no-expiry", "other-subject", "other-org"],
)
def test_every_other_warrant_condition_still_holds_for_an_unassigned_operator(
    default_policy: Policy, setup: dict[str, object], missing: str
) -> None:
    assigned = ["op9"] if setup.get("principal") is OTHER_OP else []
    case = warrant(default_policy, **{"assigned": assigned, **setup})
    decision = locate(default_policy, case, OP2)
    assert not decision.allowed
    assert decision.missing == (missing,)


def test_unassigned_operator_refused_on_closed_expired_missing_or_wrong_purpose_warrants(
    default_policy: Policy,
) -> None:
    case = warrant(default_policy)
    closed = close_case(case, principal=OP1, now=T0 + timedelta(minutes=30))
    assert locate(default_policy, closed).missing == ("case.open",)
    later = T0 + timedelta(hours=49)
    assert locate(default_policy, case, now=later).missing == ("case.open",)
    assert locate(default_policy, None).missing == ("case",)
    investigation = warrant(default_policy, purpose="criminal_investigation", approved=False)
    assert locate(default_policy, investigation).missing == ("case.purpose",)
    no_case = Access(principal=OP2, purpose=LI)
    assert locate(default_policy, None, access=no_case).missing == ("case",)


def test_other_roles_of_the_organization_gain_nothing(default_policy: Policy) -> None:
    case = warrant(default_policy)
    refused = locate(
        default_policy, case, INV, access=Access(principal=INV, purpose=LI, case="W-1")
    )
    assert refused.missing == ("grant",)


def test_assignment_still_binds_where_the_grant_does_not_waive_it(
    default_policy: Policy,
) -> None:
    inv1 = Principal(accessor="i1", org="police", role="investigator")
    inv2 = Principal(accessor="i2", org="police", role="investigator")
    sup = Principal(accessor="s1", org="police", role="supervisor")
    case = open_case(
        case_id="C-1",
        principal=inv1,
        purpose="criminal_investigation",
        subjects=[A],
        assigned=[],
        now=T0,
        expires_at=None,
        policy=default_policy,
    )
    case = approve_case(case, approver=sup, now=T0, policy=default_policy)
    access = Access(principal=inv2, purpose="criminal_investigation", case="C-1")
    decision = locate(default_policy, case, access=access, collection="flights")
    assert decision.missing == ("case.assignment",)


def test_a_waiving_grant_is_never_remembered_as_timeless(default_policy: Policy) -> None:
    unnamed = default_policy.timeless_decision(
        access=Access(principal=OP2, purpose=LI),
        action=Action.GET,
        collection="phone_location",
        fields=None,
        now=T0,
    )
    # Without a case the refusal is the same for everyone; with one, nothing is remembered.
    assert unnamed is not None and unnamed.missing == ("case",)
    named = default_policy.timeless_decision(
        access=Access(principal=OP2, purpose=LI, case="W-1"),
        action=Action.GET,
        collection="phone_location",
        fields=None,
        now=T0,
    )
    assert named is None


def test_the_option_defaults_to_true_and_is_off_only_for_intercept(schema: Schema) -> None:
    policy = Policy.default(schema)
    waived = {(g.role, g.purpose) for g in policy.grants if not g.requires_assignment}
    assert waived == {("intercept_operator", LI)}
