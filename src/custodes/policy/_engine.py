"""The policy object and its decisions: deny by default, and say which condition was missing.

A decision runs two checks that do not depend on a grant (a declared purpose; some grant for the
role, purpose, action and collection), then, for each matching grant, the ordered grant checks
below. The first grant that passes them all allows; if none does, the refusal is the one from the
grant that got furthest, since that is the one the accessor was most plausibly relying on.

Reasons are written into the public-facing ledger, so they only ever name roles, purposes,
collections, fields and case ids, never a value, and caller-supplied names are shown only when
they have the shape of a name (an ID number typed into the wrong argument is not echoed).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from custodes.errors import ConfigError, InputError
from custodes.model import Access, Action, Case, Decision
from custodes.policy._model import READ_ACTIONS, Grant, parse_policy
from custodes.schema import Schema

__all__ = ["Policy"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Case ids start with a letter, so a resident ID number (all digits) is never echoed as one.
_CASE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MIN_JUSTIFICATION = 20
_TIMELESS_CACHE = 1024
_TimelessKey = tuple[object, ...]


def _q(name: object) -> str:
    """Quote a caller-supplied name for a reason, or stand in for it if it is not name-shaped."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return f"'{name}'"
    return "(an invalid name)"


def _qcase(case_id: object) -> str:
    if isinstance(case_id, str) and _CASE_ID.fullmatch(case_id):
        return f"'{case_id}'"
    return "(an invalid case id)"


def _target(collection: str | None) -> str:
    return "every collection" if collection is None else _q(collection)


def _deny(code: str, reason: str) -> Decision:
    return Decision(allowed=False, reason=reason, missing=(code,))


@dataclass(frozen=True, slots=True)
class _Request:
    """One question put to the policy, with everything the grant checks need."""

    access: Access
    action: Action
    collection: str | None  # None: every collection at once (a subject's erasure)
    fields: tuple[str, ...] | None
    subject_ref: bytes | None
    subject: str | None
    case: Case | None
    now: datetime
    subjects_today: AbstractSet[str]
    timezone: ZoneInfo

    @property
    def purpose(self) -> str:
        return self.access.purpose or ""

    @property
    def case_label(self) -> str:
        return _qcase(self.access.case)

    @property
    def target(self) -> str:
        return _target(self.collection)

    def covered(self, grant: Grant) -> tuple[str, ...]:
        # Across every collection there is no field-level access, only the records as a whole.
        return () if self.collection is None else grant.fields[self.collection]


_Check = Callable[[_Request, Grant], Decision | None]


def _check_fields(req: _Request, grant: Grant) -> Decision | None:
    if req.fields is None:
        return None
    covered = req.covered(grant)
    outside = [name for name in req.fields if name not in covered]
    if not outside:
        return None
    named = ", ".join(n if _NAME.fullmatch(n) else "(an invalid name)" for n in outside)
    return _deny(
        "fields",
        f"purpose {_q(req.purpose)} does not cover field(s) {named} of {req.target}",
    )


def _check_break_glass(req: _Request, grant: Grant) -> Decision | None:
    if not req.access.break_glass:
        return None
    if not grant.break_glass:
        return _deny(
            "break_glass",
            f"policy does not permit break-glass for role {_q(grant.role)} to "
            f"{req.action} {req.target} for purpose {_q(req.purpose)}",
        )
    text = req.access.justification or ""
    if len("".join(text.split())) < _MIN_JUSTIFICATION:
        return _deny(
            "justification",
            f"break-glass needs a justification of at least {_MIN_JUSTIFICATION} characters",
        )
    return None


def _check_case_named(req: _Request, grant: Grant) -> Decision | None:
    if grant.requires_case and req.access.case is None:
        return _deny("case", f"purpose {_q(req.purpose)} on {req.target} requires a case")
    return None


def _check_case_exists(req: _Request, grant: Grant) -> Decision | None:
    if req.access.case is None:
        return None
    if req.case is None or req.case.case_id != req.access.case:
        return _deny("case", f"case {req.case_label} does not exist")
    return None


def _check_case_org(req: _Request, grant: Grant) -> Decision | None:
    if req.case is not None and req.case.org != req.access.principal.org:
        return _deny("case.org", f"case {req.case_label} belongs to another organization")
    return None


def _check_case_purpose(req: _Request, grant: Grant) -> Decision | None:
    if req.case is not None and req.case.purpose != req.purpose:
        return _deny(
            "case.purpose",
            f"case {req.case_label} was opened for purpose {_q(req.case.purpose)}, "
            f"not {_q(req.purpose)}",
        )
    return None


def _check_case_open(req: _Request, grant: Grant) -> Decision | None:
    case = req.case
    if case is None or case.is_open(req.now):
        return None
    closed = case.closed_at is not None and case.closed_at <= req.now
    state = "is closed" if closed else "has expired"
    return _deny("case.open", f"case {req.case_label} {state}")


def _check_case_subject(req: _Request, grant: Grant) -> Decision | None:
    # A find names no subject yet (it discovers them); the vault checks each result instead.
    if req.case is None or req.subject_ref is None or req.subject_ref in req.case.subjects:
        return None
    return _deny("case.subject", f"case {req.case_label} does not name this subject")


def _check_case_assignment(req: _Request, grant: Grant) -> Decision | None:
    # A grant without requires_assignment lets any holder of its role in the case's
    # organization read under the case (the org check above still applies).
    if req.case is None or not grant.requires_assignment:
        return None
    if req.access.principal.accessor in req.case.assigned:
        return None
    return _deny("case.assignment", f"case {req.case_label} is not assigned to the reader")


def _check_case_approval(req: _Request, grant: Grant) -> Decision | None:
    needed = grant.requires_approval
    if req.case is None or needed is None:
        return None
    case = req.case
    approver = case.approved_by
    valid = (
        approver is not None
        and case.approver_role == needed
        and approver != req.access.principal.accessor
        and approver != case.opened_by
    )
    if valid:
        return None
    return _deny(
        "case.approval",
        f"case {req.case_label} is not approved by a {_q(needed)} other than the reader",
    )


def _check_case_expiry(req: _Request, grant: Grant) -> Decision | None:
    # The warrant rule is about reading location; erasing it needs no time box.
    reads = req.action in READ_ACTIONS
    if req.case is None or not reads or req.collection not in grant.location:
        return None
    if req.case.expires_at is not None:
        return None
    return _deny(
        "case.expiry",
        f"case {req.case_label} has no expiry: location data is read only under a time-boxed case",
    )


def _check_hours(req: _Request, grant: Grant) -> Decision | None:
    hours = grant.hours
    if hours is None or hours.contains(req.now.astimezone(req.timezone).time()):
        return None
    return _deny("hours", f"outside permitted hours {hours.text} ({req.timezone.key})")


def _check_quota(req: _Request, grant: Grant) -> Decision | None:
    limit = grant.max_subjects_per_day
    if limit == 0 or req.subject is None or req.subject in req.subjects_today:
        return None
    if len(req.subjects_today) < limit:
        return None
    return _deny("quota", f"daily limit of {limit} subjects reached")


_CASE_CHECKS: tuple[_Check, ...] = (
    _check_case_named,
    _check_case_exists,
    _check_case_org,
    _check_case_purpose,
    _check_case_open,
    _check_case_subject,
    _check_case_assignment,
    _check_case_approval,
    _check_case_expiry,
)
# In the order the denials are reported; break-glass waives exactly the case and hours checks.
_GRANT_CHECKS: tuple[_Check, ...] = (
    _check_fields,
    _check_break_glass,
    *_CASE_CHECKS,
    _check_hours,
    _check_quota,
)
_WAIVABLE: frozenset[_Check] = frozenset({*_CASE_CHECKS, _check_hours})


class Policy:
    """Purposes and grants of a deployment, and the decisions they give; deny by default."""

    def __init__(
        self,
        *,
        schema: Schema,
        purposes: Mapping[str, str],
        grants: Sequence[Grant],
        timezone: ZoneInfo | None = None,
        oversight_roles: Iterable[str] = (),
    ) -> None:
        self.schema = schema
        self._oversight = frozenset(oversight_roles)
        self._purposes = MappingProxyType(dict(purposes))
        self._grants = tuple(grants)
        self._timezone = timezone or ZoneInfo("UTC")
        # Decisions that depend only on their names (see timeless_decision), and None for
        # names whose decision depends on more. The policy is immutable, so they stay true.
        self._timeless: dict[_TimelessKey, Decision | None] = {}
        self._timeless_lock = threading.Lock()

    @classmethod
    def loads(cls, text: str, *, schema: Schema, source: str = "<policy>") -> Policy:
        """Parse a policy from TOML text, checked against ``schema``.

        Raises:
            ConfigError: invalid TOML, unknown keys, or an invalid grant; the message names
                ``source`` and the key path.
        """
        parsed = parse_policy(text, schema=schema, source=source)
        return cls(
            schema=schema,
            purposes=parsed.purposes,
            grants=parsed.grants,
            timezone=parsed.timezone,
            oversight_roles=parsed.oversight_roles,
        )

    @classmethod
    def load(cls, path: Path, *, schema: Schema) -> Policy:
        """Read and parse the policy file at ``path``.

        Raises:
            ConfigError: the file cannot be read, or its contents are invalid (see ``loads``).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the policy file: {exc}") from exc
        return cls.loads(text, schema=schema, source=str(path))

    @classmethod
    def default(cls, schema: Schema) -> Policy:
        """Return the policy packaged with custodes (``custodes/defaults/policy.toml``).

        Raises:
            ConfigError: the packaged file is missing, or does not fit ``schema``.
        """
        return cls.loads(_default_text(), schema=schema, source="custodes/defaults/policy.toml")

    @property
    def purposes(self) -> Mapping[str, str]:
        """The declared purposes: name to description."""
        return self._purposes

    @property
    def grants(self) -> tuple[Grant, ...]:
        """The grants, in file order."""
        return self._grants

    @property
    def timezone(self) -> str:
        """The IANA time zone in which grant hours are read."""
        return self._timezone.key

    @property
    def roles(self) -> frozenset[str]:
        """Every role the policy speaks of: holders of grants, required approvers and oversight."""
        approvers = {g.requires_approval for g in self._grants if g.requires_approval}
        return frozenset({g.role for g in self._grants} | approvers | self._oversight)

    @property
    def oversight_roles(self) -> frozenset[str]:
        """Roles that review the access log and its alerts (the auditor dashboard); they get
        no access to records."""
        return self._oversight

    def approver_roles(self, purpose: str) -> frozenset[str]:
        """Return the roles whose approval some grant for ``purpose`` requires."""
        return frozenset(
            g.requires_approval
            for g in self._grants
            if g.purpose == purpose and g.requires_approval
        )

    def decide(
        self,
        *,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        subject_ref: bytes | None,
        subject: str | None,
        case: Case | None,
        now: datetime,
        subjects_today: AbstractSet[str],
    ) -> Decision:
        """Decide one access; the decision says why, and what was missing if it is refused.

        ``case`` is the case the caller loaded for ``access.case`` (``None`` if not found);
        ``collection=None`` means every collection at once (erasing a subject), which only a
        grant covering all of them allows, with no field-level access;
        ``fields=None`` asks for the grant's fields; ``subjects_today`` are the pseudonyms of
        the subjects this accessor already read today (for the daily limit).

        Raises:
            InputError: ``now`` is not timezone-aware.
        """
        _require_aware(now)
        key = _timeless_key(access, action, collection, fields)
        if key is not None and (known := self._timeless.get(key)) is not None:
            return known
        decision, timeless = self._decide(
            access, action, collection, fields, subject_ref, subject, case, now, subjects_today
        )
        if key is not None and key not in self._timeless:
            self._remember(key, decision if timeless else None)
        return decision

    def timeless_decision(
        self,
        *,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        now: datetime,
    ) -> Decision | None:
        """Return the decision of an access if it is the same for every subject and moment.

        That is the case when the access names no case and asks no break-glass, and no grant
        that could apply to it has hours or a daily limit: no check then reads the subject, the
        case, the time or the accessor's history, so :meth:`decide` would return an equal
        decision whatever they are. Returns ``None`` otherwise (call :meth:`decide`). Answers
        are remembered per (role, purpose, action, collection, fields), a bounded number.

        Raises:
            InputError: ``now`` is not timezone-aware.
        """
        _require_aware(now)
        key = _timeless_key(access, action, collection, fields)
        if key is None:
            return None
        if key not in self._timeless:
            # Decide once with no subject, case or history; _decide says whether they mattered
            # and decide() remembers the decision only if they did not.
            self.decide(
                access=access,
                action=action,
                collection=collection,
                fields=fields,
                subject_ref=None,
                subject=None,
                case=None,
                now=now,
                subjects_today=frozenset(),
            )
        return self._timeless.get(key)

    def _remember(self, key: _TimelessKey, decision: Decision | None) -> None:
        with self._timeless_lock:
            if key not in self._timeless and len(self._timeless) >= _TIMELESS_CACHE:
                del self._timeless[next(iter(self._timeless))]  # the oldest
            self._timeless[key] = decision

    def _decide(
        self,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        subject_ref: bytes | None,
        subject: str | None,
        case: Case | None,
        now: datetime,
        subjects_today: AbstractSet[str],
    ) -> tuple[Decision, bool]:
        """Decide; also return whether the decision is timeless (see :meth:`timeless_decision`).

        The refusals before any grant is found read only the names; past them, a grant's
        checks read the time only through ``hours``, the subject and history only through
        ``max_subjects_per_day``, and the case only when the access names one.
        """
        refused = self._check_purpose(access)
        if refused is not None:
            return refused, True
        if collection is not None and collection not in self.schema.collections:
            return self._unknown_collection(access, action), True
        grants = self._matching(access, action, collection)
        if not grants:
            return self._no_grant(access, action, collection), True
        timeless = all(g.hours is None and g.max_subjects_per_day == 0 for g in grants)
        req = _Request(
            access=access,
            action=action,
            collection=collection,
            fields=None if fields is None else tuple(dict.fromkeys(fields)),
            subject_ref=subject_ref,
            subject=subject,
            # A case object without a case named in the access explains nothing; ignore it.
            case=case if access.case is not None else None,
            now=now,
            subjects_today=subjects_today,
            timezone=self._timezone,
        )
        return self._best(req, grants), timeless

    def _check_purpose(self, access: Access) -> Decision | None:
        purpose = access.purpose
        if purpose is None or not purpose.strip():
            return _deny("purpose", "no purpose given: every access must name its purpose")
        if purpose not in self._purposes:
            return _deny("purpose", f"purpose {_q(purpose)} is not declared in the policy")
        return None

    def _unknown_collection(self, access: Access, action: Action) -> Decision:
        role, purpose = _q(access.principal.role), _q(access.purpose)
        reason = f"no grant lets role {role} {action} an unknown collection for purpose {purpose}"
        return _deny("grant", reason)

    def _matching(self, access: Access, action: Action, collection: str | None) -> list[Grant]:
        role, purpose = access.principal.role, access.purpose or ""
        if collection is not None:
            return [g for g in self._grants if g.matches(role, purpose, action, collection)]
        # No collection: the access touches all of them, so only a grant covering all will do.
        every = set(self.schema.collections)
        return [
            g
            for g in self._grants
            if g.role == role
            and g.purpose == purpose
            and action in g.actions
            and every <= set(g.fields)
        ]

    def _no_grant(self, access: Access, action: Action, collection: str | None) -> Decision:
        role, purpose = _q(access.principal.role), _q(access.purpose)
        return _deny(
            "grant",
            f"no grant lets role {role} {action} {_target(collection)} for purpose {purpose}",
        )

    def _best(self, req: _Request, grants: list[Grant]) -> Decision:
        furthest, refusal = -1, _deny("grant", "no grant applies")
        for grant in grants:
            progress, denial = _evaluate(req, grant)
            if denial is None:
                return _allow(req, grant)
            if progress > furthest:
                furthest, refusal = progress, denial
        return refusal


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("the time of a decision must be timezone-aware")


def _timeless_key(
    access: Access, action: Action, collection: str | None, fields: Sequence[str] | None
) -> _TimelessKey | None:
    """Return the names a decision depends on, or ``None`` if it may depend on more."""
    if access.case is not None or access.break_glass:
        return None
    key = (
        access.principal.role,
        access.purpose,
        action,
        collection,
        None if fields is None else tuple(fields),
    )
    try:
        hash(key)
    except TypeError:
        return None  # odd input; decided the long way, and its error raised there
    return key


def _evaluate(req: _Request, grant: Grant) -> tuple[int, Decision | None]:
    """Run the grant checks in order; return how far they got and the first refusal."""
    for progress, check in enumerate(_GRANT_CHECKS):
        if req.access.break_glass and check in _WAIVABLE:
            continue
        denial = check(req, grant)
        if denial is not None:
            return progress, denial
    return len(_GRANT_CHECKS), None


def _allow(req: _Request, grant: Grant) -> Decision:
    fields = req.fields if req.fields is not None else req.covered(grant)
    base = f"role '{grant.role}' may {req.action} {req.target} for '{grant.purpose}'"
    limit = grant.max_subjects_per_day  # not waived by break-glass
    if req.access.break_glass:
        reason = f"break-glass: {base} without its case and hours conditions (justified)"
        return Decision(
            allowed=True, reason=reason, fields=fields, break_glass=True, daily_limit=limit
        )
    if req.access.case is not None:
        base += f" under case {req.case_label}"
    return Decision(allowed=True, reason=f"allowed: {base}", fields=fields, daily_limit=limit)


@functools.cache
def _default_text() -> str:
    resource = resources.files("custodes").joinpath("defaults/policy.toml")
    try:
        return resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"the packaged default policy is missing: {exc}") from exc
