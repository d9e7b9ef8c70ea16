"""Domain records shared by the layers: who accesses, why, and what the audit trail holds.

These are plain frozen dataclasses with no behaviour that needs a store or a key, so that
``policy``, ``store`` and ``vault`` can all speak of them without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring as _json_str

__all__ = [
    "RECORD_ID_RANDOM_HEX",
    "Access",
    "AccessEvent",
    "Accessor",
    "Action",
    "Case",
    "Credential",
    "CredentialKind",
    "Decision",
    "IndexEntry",
    "Principal",
    "StoredRecord",
    "record_id_head",
]

#: Hex digits of a record id after its time head (80 random bits).
RECORD_ID_RANDOM_HEX = 20


class Action(StrEnum):
    """What an access does. Case actions, and an auditor's acknowledgement of a misuse alert,
    are ledgered like record actions."""

    PUT = "put"
    GET = "get"
    FIND = "find"
    EXPORT = "export"
    SHRED = "shred"
    CASE_OPEN = "case_open"
    CASE_APPROVE = "case_approve"
    CASE_CLOSE = "case_close"
    ALERT_ACK = "alert_ack"
    EXPORT_MARK = "export_mark"  # the fingerprint of an export, recorded after the export


@dataclass(frozen=True, slots=True)
class Principal:
    """The accessor behind a call: a person or an integrating application."""

    accessor: str
    org: str
    role: str


@dataclass(frozen=True, slots=True)
class Access:
    """The context every vault call carries: who, why, under which case.

    ``break_glass`` asks for emergency access where policy permits it; it needs a
    ``justification`` and is always flagged in the ledger.
    """

    principal: Principal
    purpose: str | None
    case: str | None = None
    justification: str | None = None
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class Accessor:
    """A registered accessor (clerk, officer, application) and its organization and role."""

    accessor: str
    org: str
    role: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Case:
    """An investigation or service case that can explain reads of the subjects it names.

    ``subjects`` holds subject references (keyed blind-index values), never ID numbers.
    """

    case_id: str
    org: str
    purpose: str
    subjects: frozenset[bytes]
    assigned: frozenset[str]
    opened_by: str
    opened_at: datetime
    expires_at: datetime | None = None
    approved_by: str | None = None
    approver_role: str | None = None
    approved_at: datetime | None = None
    closed_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Return whether the case is neither closed nor expired at ``now``."""
        if self.closed_at is not None and self.closed_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a policy check, with the reason recorded in the access event.

    ``missing`` names the unmet condition(s) when ``allowed`` is false. ``fields`` are the
    fields the access may touch (the requested ones, or the grant's when none were named).
    ``daily_limit`` is the allowing grant's ``max_subjects_per_day`` (0: none): an access
    whose subjects are known only after the decision (a find, an export) is held to it then.
    """

    allowed: bool
    reason: str
    missing: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    break_glass: bool = False
    daily_limit: int = 0


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One entry of the access log: an allowed or denied decision about one call.

    ``subject`` is the subject's keyed pseudonym (never the ID number). ``justification`` is the
    sealed (encrypted) break-glass justification, as hex, or ``None``.
    """

    ts: datetime
    accessor: str
    org: str
    role: str
    action: str
    collection: str | None
    fields: tuple[str, ...]
    subject: str | None
    purpose: str | None
    case: str | None
    decision: str
    reason: str
    count: int
    break_glass: bool = False
    justification: str | None = None

    def canonical(self, seq: int | None = None) -> bytes:
        """Return the deterministic byte encoding of this event.

        JSON with sorted keys, no insignificant white space, UTF-8, ``ts`` in ISO 8601 with
        offset and microseconds. The same event always encodes to the same bytes. The ledger
        entry at index ``seq`` is ``canonical(seq)``: it names its own position, so an entry
        moved to another place in the log is found at that place.
        """
        head, tail = self.canonical_halves()
        if seq is None:
            return head + tail
        if type(seq) is not int:
            raise TypeError(f"seq must be an int, not {type(seq).__name__}")
        return b'%s"seq":%d,%s' % (head, seq, tail)

    def canonical_halves(self) -> tuple[bytes, bytes]:
        """Return ``(head, tail)``: ``canonical(seq)`` is ``head + b'"seq":%d,' % seq + tail``.

        Everything but the position can so be encoded before the ledger's write lock is taken
        (``seq`` sorts between ``role`` and ``subject``, the only keys around it).
        """
        fast = self._halves_fast()
        if fast is not None:
            return fast
        body: dict[str, object] = {
            "v": 1,
            "ts": self.ts.isoformat(timespec="microseconds"),
            "accessor": self.accessor,
            "org": self.org,
            "role": self.role,
            "action": self.action,
            "collection": self.collection,
            "fields": list(self.fields),
            "subject": self.subject,
            "purpose": self.purpose,
            "case": self.case,
            "decision": self.decision,
            "reason": self.reason,
            "count": self.count,
            "break_glass": self.break_glass,
            "justification": self.justification,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        # In JSON text every quote inside a string is escaped, so ',"subject":' can only be
        # the key, the one after "role" (no key sorts between them but "seq").
        cut = text.index(',"subject":') + 1
        return text[:cut].encode(), text[cut:].encode()

    def _halves_fast(self) -> tuple[bytes, bytes] | None:
        """The halves of :meth:`canonical_halves`, written out directly (hot path).

        The keys are in sorted order and each value is encoded as ``json.dumps`` encodes it
        (strings by the same function, which refuses non-strings). Returns ``None`` for a
        value of another type than the declared one, which the general path then encodes; a
        test checks that both agree.
        """
        count, glass = self.count, self.break_glass
        if type(count) is not int or type(glass) is not bool:
            return None
        text, opt = _json_str, _json_opt
        try:
            head = (
                f'{{"accessor":{text(self.accessor)},"action":{text(self.action)},'
                f'"break_glass":{"true" if glass else "false"},'
                f'"case":{opt(self.case)},"collection":{opt(self.collection)},'
                f'"count":{count},"decision":{text(self.decision)},'
                f'"fields":[{",".join(map(text, self.fields))}],'
                f'"justification":{opt(self.justification)},"org":{text(self.org)},'
                f'"purpose":{opt(self.purpose)},"reason":{text(self.reason)},'
                f'"role":{text(self.role)},'
            )
            tail = (
                f'"subject":{opt(self.subject)},'
                f'"ts":{text(self.ts.isoformat(timespec="microseconds"))},"v":1}}'
            )
        except TypeError:
            return None
        return head.encode(), tail.encode()


def _json_opt(value: str | None) -> str:
    return "null" if value is None else _json_str(value)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A blind-index entry: a keyed token that points at one record of one subject."""

    token: bytes
    record_id: str
    subject_ref: bytes


def record_id_head(created_at: datetime) -> str:
    """The first 12 of a record id's 32 hex digits: its creation time, in milliseconds since
    1970 (48 bits hold every ``datetime`` from 1970 on; earlier times give 0). The other 20
    are random.

    Ids then sort by creation time, so a batch's records go to the end of the record-id index
    rather than to a random page of it each (a bulk load writes ~13 % fewer pages). The head
    tells no more than the creation time every record carries beside its id.
    """
    ms = int(created_at.timestamp() * 1000)
    return f"{max(ms, 0):012x}"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the store holds it: ciphertext per field, bound to its position."""

    record_id: str
    collection: str
    subject_ref: bytes
    created_at: datetime
    fields: dict[str, bytes] = field(default_factory=dict)


class CredentialKind(StrEnum):
    """What a stored credential lets its bearer do (see :class:`Credential`)."""

    API_TOKEN = "api_token"  # noqa: S105 - a kind name; an accessor's API token
    PORTAL_CODE = "portal_code"  # a one-time code that signs a data subject in to the portal
    SUBJECT_SESSION = "subject_session"  # a data subject's portal sign-in
    ACCESSOR_SESSION = "accessor_session"  # an accessor's (auditor's) dashboard sign-in


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer secret as stored: only its SHA-256 digest, never the secret itself.

    ``principal`` is an accessor id (API tokens, accessor sessions) or a subject's ledger
    pseudonym (portal codes, subject sessions).
    """

    digest: bytes
    kind: CredentialKind
    principal: str
    created_at: datetime
    expires_at: datetime
