"""Events, directory rows, findings and alerts; the reader of the interchange files.

The interchange format is the one of DESIGN.md §6 (what ``custodes ledger export`` writes). The
reader checks every line and names the file and line of the first bad one, so a malformed log
is refused with one sentence instead of being half-analysed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from custodes.errors import InputError

__all__ = [
    "ACTIONS",
    "READ_ACTIONS",
    "AccessorInfo",
    "Alert",
    "CaseInfo",
    "Event",
    "Finding",
    "SubjectInfo",
    "parse_ts",
    "read_accessors",
    "read_cases",
    "read_events",
    "read_subjects",
]

ACTIONS = frozenset(
    {"read", "find", "write", "export", "shred", "case_open", "case_approve", "case_close"}
    | {"alert_ack", "export_mark"}
)
"""Every action an ``events.jsonl`` line may name: record actions, case actions, an auditor's
acknowledgement of an alert, and the fingerprint of an export (``export_mark``, after the
export's own entries); the last two disclose nothing, so detectors pass over them."""

READ_ACTIONS = frozenset({"read", "find", "export"})
"""The actions that disclose records to the accessor."""

_DECISIONS = {"allow": True, "deny": False}
_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class Event:
    """One access event; ``index`` is its 0-based line in ``events.jsonl``, ``ts`` Unix seconds."""

    index: int
    ts: float
    accessor: str
    org: str
    role: str
    action: str
    collection: str | None
    fields: tuple[str, ...]
    subject: str | None
    purpose: str | None
    case: str | None
    allowed: bool
    count: int
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class AccessorInfo:
    """One accessor of ``accessors.jsonl``; dates as Unix seconds (None: unknown/still employed)."""

    accessor: str
    org: str
    role: str
    surname_token: str | None
    address_token: str | None
    active_from: float | None
    active_to: float | None


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    """One subject of ``subjects.jsonl`` (tokens are keyed hashes, never plaintext)."""

    subject: str
    surname_token: str | None
    address_token: str | None
    employer_org: str | None
    protected: bool
    canary: bool
    relations: frozenset[str]


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """One case of ``cases.jsonl``; times as Unix seconds."""

    case: str
    org: str
    subjects: frozenset[str]
    assigned: frozenset[str]
    opened: float | None
    approved_by: str | None
    closed: float | None


@dataclass(slots=True)
class Finding:
    """What one detector concluded about one accessor: a kind, a score in (0, 1], the events
    that show it, when it was first raised (Unix seconds) and one plain sentence."""

    accessor: str
    kind: str
    score: float
    evidence: list[int]
    raised: float
    reason: str


@dataclass(slots=True)
class Alert:
    """The combined evidence against one accessor (DESIGN.md §6 output of ``custodes detect``).

    ``kind`` is the strongest finding's kind, ``kinds`` all of them (strongest first);
    ``raised`` is when the combined score first crossed the alert threshold.
    """

    accessor: str
    kind: str
    first_ts: float
    last_ts: float
    score: float
    evidence: list[int]
    explanation: str
    raised: float
    kinds: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The alert as the JSON object of ``custodes detect --json``."""
        return {
            "accessor": self.accessor,
            "kind": self.kind,
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "score": round(self.score, 3),
            "evidence": self.evidence,
            "explanation": self.explanation,
            "raised_at": _iso(self.raised),
            "kinds": self.kinds,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class _LineError(Exception):
    """A problem in one line; the reader adds the file name and line number."""


def parse_ts(value: object, key: str = "ts") -> float:
    """Parse an ISO 8601 timestamp with an offset into Unix seconds.

    Raises:
        _LineError: not a string, not ISO 8601, or without an offset.
    """
    if not isinstance(value, str):
        raise _LineError(f"'{key}' must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _LineError(f"'{key}' is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise _LineError(f"'{key}' has no UTC offset: {value[:40]!r}")
    return moment.timestamp()


def _date(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        value += "T00:00:00+00:00"
    return parse_ts(value, key)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise _LineError(f"'{key}' must be a non-empty string")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj[key]
    if value is not None and not isinstance(value, str):
        raise _LineError(f"'{key}' must be a string or null")
    return value


def _str_list(obj: dict[str, Any], key: str) -> list[str]:
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _LineError(f"'{key}' must be a list of strings")
    return value


def _bool(obj: dict[str, Any], key: str, default: bool | None = None) -> bool:
    value = obj.get(key, default) if default is not None else obj[key]
    if not isinstance(value, bool):
        raise _LineError(f"'{key}' must be true or false")
    return value


def _event(obj: dict[str, Any], index: int) -> Event:
    ts, accessor, org, role = obj["ts"], obj["accessor"], obj["org"], obj["role"]
    action, collection, fields = obj["action"], obj["collection"], obj["fields"]
    subject, purpose, case = obj["subject"], obj["purpose"], obj["case"]
    count, glass = obj["count"], obj.get("break_glass", False)
    allowed = _DECISIONS.get(obj["decision"])
    # The fast path: one test of every type; the slow path below says what is wrong.
    if not (
        type(ts) is str
        and type(accessor) is str
        and type(org) is str
        and type(role) is str
        and accessor
        and org
        and role
        and action in ACTIONS
        and (collection is None or type(collection) is str)
        and type(fields) is list
        and (subject is None or type(subject) is str)
        and (purpose is None or type(purpose) is str)
        and (case is None or type(case) is str)
        and allowed is not None
        and type(count) is int
        and count >= 0
        and type(glass) is bool
    ):
        _explain_event(obj)
    try:
        "".join(fields)  # one C-level pass that fails on anything but strings
    except TypeError:
        _explain_event(obj)
    return Event(
        index,
        parse_ts(ts),
        accessor,
        org,
        role,
        action,
        collection,
        tuple(fields),
        subject,
        purpose,
        case,
        allowed,  # type: ignore[arg-type]  # checked above
        count,
        glass,
    )


def _explain_event(obj: dict[str, Any]) -> None:
    """Raise the error that says what is wrong with an event line."""
    for key in ("accessor", "org", "role"):
        _str(obj, key)
    if obj["action"] not in ACTIONS:
        raise _LineError(
            f"unknown action {obj['action']!r} (expected one of {', '.join(sorted(ACTIONS))})"
        )
    for key in ("collection", "subject", "purpose", "case"):
        _opt_str(obj, key)
    _str_list(obj, "fields")
    if obj["decision"] not in _DECISIONS:
        raise _LineError("'decision' must be 'allow' or 'deny'")
    count = obj["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise _LineError("'count' must be a non-negative integer")
    _bool(obj, "break_glass", False)
    parse_ts(obj["ts"])
    raise _LineError("malformed event")


def _accessor(obj: dict[str, Any], index: int) -> AccessorInfo:
    return AccessorInfo(
        _str(obj, "accessor"),
        _str(obj, "org"),
        _str(obj, "role"),
        _opt_str(obj, "surname_token"),
        _opt_str(obj, "address_token"),
        _date(obj, "active_from"),
        _date(obj, "active_to"),
    )


def _subject(obj: dict[str, Any], index: int) -> SubjectInfo:
    return SubjectInfo(
        _str(obj, "subject"),
        _opt_str(obj, "surname_token"),
        _opt_str(obj, "address_token"),
        _opt_str(obj, "employer_org"),
        _bool(obj, "protected"),
        _bool(obj, "canary"),
        frozenset(_str_list(obj, "relations")),
    )


def _case(obj: dict[str, Any], index: int) -> CaseInfo:
    return CaseInfo(
        _str(obj, "case"),
        _str(obj, "org"),
        frozenset(_str_list(obj, "subjects")),
        frozenset(_str_list(obj, "assigned")),
        _date(obj, "opened"),
        _opt_str(obj, "approved_by"),
        _date(obj, "closed"),
    )


T = TypeVar("T")


def _lines(path: Path, build: Callable[[dict[str, Any], int], T]) -> Iterator[T]:
    """Yield ``build(object, index)`` per non-empty line of ``path``.

    Raises:
        InputError: the file cannot be read, or a line is not a JSON object of the right shape
            (the message names the file and the 1-based line).
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    scan = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, 1):
                try:
                    # The decoder's C scanner without the wrappers of json.loads: a line must
                    # hold exactly one object (anything else goes the slow way for the message).
                    obj, end = scan(line, 0)
                    if end != len(line) and line[end:].strip():
                        raise ValueError
                except (StopIteration, ValueError):
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise _LineError("not a JSON object")
                yield build(obj, number - 1)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {number}: not valid JSON ({exc.msg})") from None
        except KeyError as exc:
            raise InputError(f"{path.name} line {number}: missing key {exc.args[0]!r}") from None
        except _LineError as exc:
            raise InputError(f"{path.name} line {number}: {exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path.name} line {number + 1}: not UTF-8 text") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path.name} line {number}: {exc}") from None


def read_events(path: Path) -> Iterator[Event]:
    """Yield the events of an ``events.jsonl`` file in order (``index`` = 0-based line).

    Raises:
        InputError: unreadable file or malformed line (naming file and line).
    """
    return _lines(path, _event)


def read_accessors(path: Path) -> dict[str, AccessorInfo]:
    """Read ``accessors.jsonl`` into a dict by accessor id.

    Raises:
        InputError: unreadable file or malformed line (naming file and line).
    """
    return {a.accessor: a for a in _lines(path, _accessor)}


def read_subjects(path: Path) -> dict[str, SubjectInfo]:
    """Read ``subjects.jsonl`` into a dict by pseudonym.

    Raises:
        InputError: unreadable file or malformed line (naming file and line).
    """
    return {s.subject: s for s in _lines(path, _subject)}


def read_cases(path: Path) -> dict[str, CaseInfo]:
    """Read ``cases.jsonl`` into a dict by case id.

    Raises:
        InputError: unreadable file or malformed line (naming file and line).
    """
    return {c.case: c for c in _lines(path, _case)}
