"""Case life cycle as pure functions: each returns a new Case; the vault stores and ledgers it.

Approval is dual control: the approver must be a different person from the opener and from
everyone assigned to the case, in the same organization, holding a role the policy names as an
approver for the case's purpose.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from custodes.errors import AccessDenied, InputError
from custodes.model import Case, Principal
from custodes.policy._engine import Policy

__all__ = ["add_subjects", "approve_case", "close_case", "new_case_id", "open_case"]

_ID_BYTES = 7  # 56 random bits, of which the 10 base32 characters keep 50


def new_case_id(rng_bytes: bytes | None = None) -> str:
    """Return a fresh case id such as ``C-7QK2M4XZ3B`` (10 base32 characters, 50 random bits).

    Raises:
        InputError: ``rng_bytes`` is given but shorter than 7 bytes.
    """
    raw = os.urandom(_ID_BYTES) if rng_bytes is None else rng_bytes
    if len(raw) < _ID_BYTES:
        raise InputError(f"a case id needs at least {_ID_BYTES} random bytes")
    return "C-" + base64.b32encode(raw[:_ID_BYTES]).decode("ascii")[:10]


def open_case(
    *,
    case_id: str,
    principal: Principal,
    purpose: str,
    subjects: Iterable[bytes],
    assigned: Iterable[str],
    now: datetime,
    expires_at: datetime | None,
    policy: Policy,
) -> Case:
    """Return a new open case of ``principal``'s organization; assignees default to the opener.

    Raises:
        InputError: undeclared purpose, no subjects, empty case id, or expiry not after now.
    """
    if purpose not in policy.purposes:
        raise InputError(f"a case needs a declared purpose; '{purpose}' is not declared")
    refs = frozenset(subjects)
    if not refs:
        raise InputError("a case must name at least one subject")
    if not case_id:
        raise InputError("a case needs a case id")
    if expires_at is not None and expires_at <= now:
        raise InputError("expires_at must be after the time the case is opened")
    team = frozenset(assigned) or frozenset({principal.accessor})
    return Case(
        case_id=case_id,
        org=principal.org,
        purpose=purpose,
        subjects=refs,
        assigned=team,
        opened_by=principal.accessor,
        opened_at=now,
        expires_at=expires_at,
    )


def approve_case(case: Case, *, approver: Principal, now: datetime, policy: Policy) -> Case:
    """Return the case approved by ``approver`` (dual control).

    Raises:
        AccessDenied: the approver opened or is assigned to the case, is of another
            organization, lacks an approver role for its purpose; or the case is closed,
            expired or already approved.
    """
    label = f"case '{case.case_id}'"
    if approver.org != case.org:
        raise AccessDenied(f"{label} belongs to another organization", ("case.org",))
    if not case.is_open(now):
        raise AccessDenied(f"{label} is closed or expired", ("case.open",))
    if case.approved_by is not None:
        raise AccessDenied(f"{label} is already approved", ("case.approval",))
    if approver.accessor == case.opened_by or approver.accessor in case.assigned:
        raise AccessDenied(
            f"{label} cannot be approved by its opener or an assignee", ("case.approval",)
        )
    roles = policy.approver_roles(case.purpose)
    if approver.role not in roles:
        allowed = ", ".join(sorted(roles)) or "none"
        raise AccessDenied(
            f"role '{approver.role}' may not approve cases for purpose '{case.purpose}' "
            f"(approver roles: {allowed})",
            ("case.approval",),
        )
    return replace(
        case, approved_by=approver.accessor, approver_role=approver.role, approved_at=now
    )


def close_case(case: Case, *, principal: Principal, now: datetime) -> Case:
    """Return the case closed at ``now``; reads under it are refused from then on.

    Raises:
        AccessDenied: ``principal`` is not the opener, an assignee or the approver.
        InputError: the case is already closed.
    """
    involved = {case.opened_by, *case.assigned}
    if case.approved_by is not None:
        involved.add(case.approved_by)
    if principal.org != case.org or principal.accessor not in involved:
        raise AccessDenied(
            f"case '{case.case_id}' may be closed only by its opener, an assignee or its approver",
            ("case.assignment",),
        )
    if case.closed_at is not None:
        raise InputError(f"case '{case.case_id}' is already closed")
    return replace(case, closed_at=now)


def add_subjects(
    case: Case, subjects: Iterable[bytes], *, principal: Principal, now: datetime
) -> Case:
    """Return the case naming more subjects; any approval is withdrawn when the set grows.

    The approver approved reads of the subjects then named, not of these, so the case must be
    approved again.

    Raises:
        AccessDenied: ``principal`` is not the opener or an assignee, or the case is not open.
        InputError: no subjects given.
    """
    refs = frozenset(subjects)
    if not refs:
        raise InputError("no subjects to add to the case")
    if principal.org != case.org or principal.accessor not in {case.opened_by, *case.assigned}:
        raise AccessDenied(
            f"only the opener or an assignee may add subjects to case '{case.case_id}'",
            ("case.assignment",),
        )
    if not case.is_open(now):
        raise AccessDenied(f"case '{case.case_id}' is closed or expired", ("case.open",))
    if refs <= case.subjects:
        return case
    return replace(
        case,
        subjects=case.subjects | refs,
        approved_by=None,
        approver_role=None,
        approved_at=None,
    )
