"""Grants and the policy file parser: turns TOML into validated, expanded grants.

The file format is documented in the header of ``custodes/defaults/policy.toml``. Everything a
grant names is checked against the schema at load time, so that a typo is a load error rather
than a grant that silently never matches.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from custodes.errors import ConfigError
from custodes.model import Action
from custodes.schema import Collection, DataClass, Schema

__all__ = ["GRANT_ACTIONS", "Grant", "Hours", "ParsedPolicy", "parse_policy"]

GRANT_ACTIONS: frozenset[Action] = frozenset(
    {Action.PUT, Action.GET, Action.FIND, Action.EXPORT, Action.SHRED}
)
# Actions that reveal stored values; these are the ones the location rule guards.
READ_ACTIONS: frozenset[Action] = frozenset({Action.GET, Action.FIND, Action.EXPORT})

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
_TOP_KEYS = frozenset({"timezone", "purposes", "grants", "oversight_roles"})
_PURPOSE_KEYS = frozenset({"description"})
_GRANT_KEYS = frozenset(
    {
        "role",
        "purpose",
        "actions",
        "collections",
        "fields",
        "requires_case",
        "requires_approval",
        "requires_assignment",
        "max_subjects_per_day",
        "hours",
        "break_glass",
    }
)


@dataclass(frozen=True, slots=True)
class Hours:
    """A daily window of permitted local time; ``start > end`` means it spans midnight."""

    start: time
    end: time
    text: str

    def contains(self, moment: time) -> bool:
        """Return whether the local wall-clock time ``moment`` lies inside the window."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule of the policy: a role may do some actions on some fields for a purpose.

    ``fields`` maps each covered collection to the covered fields in schema order ("*" already
    expanded); ``location`` names the collections where the grant covers location-class fields.
    ``requires_assignment`` (meaningful with ``requires_case`` only): the case must be assigned
    to the reader; when false, any member of the case's organization holding the role may read
    under it, every other case condition still applying.
    """

    index: int
    role: str
    purpose: str
    actions: frozenset[Action]
    fields: Mapping[str, tuple[str, ...]] = field(hash=False)
    requires_case: bool = False
    requires_approval: str | None = None
    requires_assignment: bool = True
    max_subjects_per_day: int = 0
    hours: Hours | None = None
    break_glass: bool = False
    location: frozenset[str] = frozenset()

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections this grant covers, in schema order."""
        return tuple(self.fields)

    def matches(self, role: str, purpose: str, action: Action, collection: str) -> bool:
        """Return whether this grant speaks of ``role`` doing ``action`` on ``collection``."""
        return (
            self.role == role
            and self.purpose == purpose
            and action in self.actions
            and collection in self.fields
        )


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    """The validated contents of a policy file."""

    timezone: ZoneInfo
    purposes: Mapping[str, str]
    grants: tuple[Grant, ...]
    oversight_roles: frozenset[str] = frozenset()


def parse_policy(text: str, *, schema: Schema, source: str) -> ParsedPolicy:
    """Parse and validate policy TOML against ``schema``.

    Raises:
        ConfigError: invalid TOML or any invalid entry; the message names source and key path.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return _Parser(source, schema).policy(raw)


class _Parser:
    """Turns parsed TOML into a policy, naming the key path of anything wrong."""

    def __init__(self, source: str, schema: Schema) -> None:
        self.source = source
        self.schema = schema

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {problem}")

    def policy(self, raw: dict[str, Any]) -> ParsedPolicy:
        self._no_unknown(raw, _TOP_KEYS, "")
        timezone = self._timezone(raw.get("timezone", "UTC"))
        purposes = self._purposes(raw.get("purposes", {}))
        entries = raw.get("grants", [])
        if not isinstance(entries, list):
            raise self.fail("grants", "must be an array of tables ([[grants]])")
        grants = tuple(self.grant(i, body, purposes) for i, body in enumerate(entries))
        oversight = raw.get("oversight_roles", [])
        if not isinstance(oversight, list) or not all(
            isinstance(r, str) and r.isidentifier() for r in oversight
        ):
            raise self.fail("oversight_roles", "must be a list of role names")
        return ParsedPolicy(
            timezone=timezone,
            purposes=MappingProxyType(purposes),
            grants=grants,
            oversight_roles=frozenset(oversight),
        )

    def _timezone(self, value: object) -> ZoneInfo:
        if not isinstance(value, str) or not value:
            raise self.fail("timezone", "must be an IANA time zone name such as 'Asia/Shanghai'")
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.fail("timezone", f"unknown time zone {value!r}") from exc

    def _purposes(self, value: object) -> dict[str, str]:
        tables = self._table(value, "purposes")
        purposes: dict[str, str] = {}
        for name, body in tables.items():
            path = f"purposes.{name}"
            self._check_name(name, path)
            table = self._table(body, path)
            self._no_unknown(table, _PURPOSE_KEYS, path)
            description = table.get("description", "")
            if not isinstance(description, str):
                raise self.fail(f"{path}.description", "must be a string")
            purposes[name] = description
        return purposes

    def grant(self, index: int, body: object, purposes: Mapping[str, str]) -> Grant:
        path = f"grants[{index}]"
        table = self._table(body, path)
        self._no_unknown(table, _GRANT_KEYS, path)
        role = self._name(table, "role", path)
        purpose = self._name(table, "purpose", path)
        if purpose not in purposes:
            raise self.fail(f"{path}.purpose", f"purpose '{purpose}' is not declared")
        actions = self._actions(table.get("actions"), f"{path}.actions")
        fields = self._coverage(table, path)
        grant = Grant(
            index=index,
            role=role,
            purpose=purpose,
            actions=actions,
            fields=MappingProxyType(fields),
            requires_case=self._flag(table, "requires_case", path),
            requires_approval=self._approval(table, path),
            requires_assignment=self._assignment(table, path),
            max_subjects_per_day=self._limit(table.get("max_subjects_per_day", 0), path),
            hours=self._hours(table.get("hours", ""), f"{path}.hours"),
            break_glass=self._flag(table, "break_glass", path),
            location=self._location(fields),
        )
        self._check_location(grant, path)
        return grant

    def _actions(self, value: object, path: str) -> frozenset[Action]:
        words = self._strings(value, path)
        choices = ", ".join(sorted(GRANT_ACTIONS))
        actions: set[Action] = set()
        for word in words:
            if word not in GRANT_ACTIONS:
                raise self.fail(path, f"unknown action {word!r} (actions: {choices})")
            actions.add(Action(word))
        return frozenset(actions)

    def _coverage(self, table: dict[str, Any], path: str) -> dict[str, tuple[str, ...]]:
        collections = self._collections(table.get("collections"), f"{path}.collections")
        names = self._strings(table.get("fields"), f"{path}.fields")
        if "*" in names:
            if len(names) > 1:
                raise self.fail(f"{path}.fields", "'*' must stand alone")
            return {c.name: tuple(c.fields) for c in collections}
        for collection in collections:
            absent = [n for n in names if n not in collection.fields]
            if absent:
                raise self.fail(
                    f"{path}.fields",
                    f"collection '{collection.name}' has no field(s) {', '.join(absent)}",
                )
        return {c.name: tuple(n for n in c.fields if n in names) for c in collections}

    def _collections(self, value: object, path: str) -> list[Collection]:
        names = self._strings(value, path)
        if "*" in names:
            if len(names) > 1:
                raise self.fail(path, "'*' must stand alone")
            return list(self.schema.collections.values())
        unknown = [n for n in names if n not in self.schema.collections]
        if unknown:
            known = ", ".join(self.schema.collections)
            raise self.fail(
                path, f"unknown collection(s) {', '.join(unknown)} (collections: {known})"
            )
        # Schema order, so expansions and decisions list collections the same way every time.
        return [c for n, c in self.schema.collections.items() if n in names]

    def _location(self, fields: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
        collections = self.schema.collections
        return frozenset(
            name
            for name, covered in fields.items()
            if any(collections[name].fields[f].data_class is DataClass.LOCATION for f in covered)
        )

    def _check_location(self, grant: Grant, path: str) -> None:
        # Secure default: live location is read only under a time-boxed, dual-controlled warrant,
        # and break-glass must not be a way around that warrant.
        if not grant.location or not grant.actions & READ_ACTIONS:
            return
        where = ", ".join(sorted(grant.location))
        if not (grant.requires_case and grant.requires_approval):
            raise self.fail(
                path,
                f"reading location data ({where}) needs requires_case = true and "
                "requires_approval set (a warrant with dual control)",
            )
        if grant.break_glass:
            raise self.fail(
                f"{path}.break_glass",
                f"break-glass may not waive the warrant for location data ({where})",
            )

    def _approval(self, table: dict[str, Any], path: str) -> str | None:
        value = table.get("requires_approval", "")
        if not isinstance(value, str):
            raise self.fail(f"{path}.requires_approval", 'must be a role name or ""')
        if not value:
            return None
        self._check_name(value, f"{path}.requires_approval")
        if table.get("requires_case") is not True:
            raise self.fail(
                f"{path}.requires_approval",
                "needs requires_case = true (approval is given to a case)",
            )
        return value

    def _assignment(self, table: dict[str, Any], path: str) -> bool:
        if "requires_assignment" not in table:
            return True
        value = self._flag(table, "requires_assignment", path)
        if table.get("requires_case") is not True:
            raise self.fail(
                f"{path}.requires_assignment",
                "needs requires_case = true (assignment is to a case)",
            )
        return value

    def _limit(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(
                f"{path}.max_subjects_per_day", "must be a whole number, 0 for no limit"
            )
        return value

    def _hours(self, value: object, path: str) -> Hours | None:
        if not isinstance(value, str):
            raise self.fail(path, 'must be a string such as "08:00-20:00"')
        if not value:
            return None
        match = _HOURS.fullmatch(value)
        if match is None:
            raise self.fail(path, f'{value!r} is not a window such as "08:00-20:00"')
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        start, end = time(h1, m1), time(h2, m2)
        if start == end:
            raise self.fail(path, 'an empty window; use "" for no restriction')
        return Hours(start=start, end=end, text=value)

    def _name(self, table: dict[str, Any], key: str, path: str) -> str:
        value = table.get(key)
        if not isinstance(value, str):
            raise self.fail(f"{path}.{key}", "missing" if value is None else "must be a string")
        self._check_name(value, f"{path}.{key}")
        return value

    def _strings(self, value: object, path: str) -> list[str]:
        if value is None:
            raise self.fail(path, "missing")
        if not isinstance(value, list) or not value:
            raise self.fail(path, "must be a non-empty list of strings")
        if not all(isinstance(item, str) for item in value):
            raise self.fail(path, "must be a non-empty list of strings")
        return value

    def _flag(self, table: dict[str, Any], key: str, path: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", "must be true or false")
        return value

    def _table(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        return value

    def _no_unknown(self, table: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise self.fail(where, f"unknown key (allowed here: {', '.join(sorted(allowed))})")

    def _check_name(self, name: str, path: str) -> None:
        if not _NAME.fullmatch(name):
            raise self.fail(path, "names must be lower-case letters, digits and '_'")
