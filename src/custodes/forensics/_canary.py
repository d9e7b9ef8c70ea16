"""Canary subjects planted in the vault, and canaries found among a leak's subjects.

:func:`plant_canaries` writes synthetic people through the vault as a registrar would: an
identity record and the records a real person of that kind has (the simulator's mix: stays,
flights, crossings, deposits...), with valid ID numbers spread through the ID space (random
regions, birth dates and sexes). Nothing in a record or in the API says *canary*: only the
registry (``<home>/forensics/canaries.jsonl``, by ledger pseudonym) does. They get no record in
a collection any grant can export (the identity collection excepted: every person has one), so
no legitimate bulk work reaches them; any read or find of one raises a ``canary_touch`` alert
at once through streaming detection, which reads the registry.

:func:`canaries_in` tells which of a leak's subjects are canaries: planted ones (whose scope
names the organization or accessor they were planted for) and per-export canary rows (whose
scope names the export and its recipient).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custodes.errors import InputError
from custodes.forensics._canaryrows import CanarySearch, search_canary_rows
from custodes.forensics._fingerprint import read_exports
from custodes.forensics._leak import LeakTable
from custodes.forensics._registry import (
    CANARIES_FILE,
    ExportRecord,
    PlantedCanary,
    append_lines,
)
from custodes.forensics._registry import planted_canaries as _planted
from custodes.forensics._synth import person_records, synthetic_person
from custodes.model import Access, Action
from custodes.sim import Person

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = ["CanaryHit", "PlantResult", "canaries_in", "plant_canaries", "planted_canaries"]

MAX_PLANT = 10_000
_DRAWS = 50  # synthetic people drawn per canary before giving up on a free ID number


@dataclass(frozen=True, slots=True)
class PlantResult:
    """What :func:`plant_canaries` planted: the registry entries and, for seeding them into
    the scope's own systems, their (synthetic) identity records."""

    canaries: list[PlantedCanary]
    identities: list[dict[str, str]]
    records: int


@dataclass(frozen=True, slots=True)
class CanaryHit:
    """A canary among a leak's subjects.

    ``kind`` is ``planted`` (a canary subject of the vault; ``scope`` names the ``org`` and
    ``accessor`` it was planted for) or ``export`` (a canary row of a fingerprinted export;
    ``scope`` names the ``export``, its recipient ``accessor`` and ``org``). ``confirmed`` is
    whether a whole leaked row matched the canary (always true for a planted one: its ID number
    is a vault subject); an export canary known by its ID number alone may be a real person
    who happens to hold the same number. ``pseudonym`` is None for a canary row without an ID
    number, found by its other values.
    """

    pseudonym: str | None
    scope: Mapping[str, str | None]
    kind: str
    confirmed: bool = True

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "pseudonym": self.pseudonym,
            "scope": dict(self.scope),
            "kind": self.kind,
            "confirmed": self.confirmed,
        }


def planted_canaries(vault: Vault) -> list[PlantedCanary]:
    """Return the canaries planted in ``vault``, in planting order.

    Raises:
        InputError: the registry is unreadable or malformed.
    """
    return _planted(vault.settings.home)


def plant_canaries(
    vault: Vault,
    access: Access,
    *,
    count: int = 10,
    org: str | None = None,
    accessor: str | None = None,
    rng: random.Random | None = None,
) -> PlantResult:
    """Write ``count`` canary subjects through the vault as ``access`` (a registrar) and
    register them, scoped to ``org`` and/or ``accessor`` (an accessor's org is the default
    scope org).

    Raises:
        InputError: a bad count or scope, an unknown scope accessor, or a schema for which no
            plausible identity record can be made.
        AccessDenied: policy refused the registrar's writes (recorded; nothing registered).
        AuditFailure: the writes could not be committed.
    """
    if type(count) is not int or not 0 < count <= MAX_PLANT:
        raise InputError(f"--count must be 1-{MAX_PLANT}")
    org = _scope_org(vault, org, accessor)
    rng = rng or random.SystemRandom()
    wanted = _plantable(vault, access)
    people = _free_people(vault, count, rng)
    batches: dict[str, list[tuple[str, dict[str, str]]]] = {}
    held: list[tuple[str, ...]] = []
    identities = []
    for person in people:
        records = _records(vault, person, wanted, rng)
        identities.append(records[vault.schema.subject_field[0]][0])
        held.append(tuple(name for name in wanted if records.get(name)))
        for name, items in records.items():
            batches.setdefault(name, []).extend((person.id_number, r) for r in items)
    for name in wanted:  # identity first: the subject exists before its other records
        if batches.get(name):
            vault.put_many(access, name, batches[name])
    # The time of the registrar's last write (the vault's clock, as the ledger shows it).
    now = vault.store.accessor_events(access.principal.accessor, 1)[0][1].ts
    canaries = [
        PlantedCanary(
            pseudonym=vault.pseudonym(person.id_number),
            org=org,
            accessor=accessor,
            planted_by=access.principal.accessor,
            planted_at=now,
            collections=collections,
        )
        for person, collections in zip(people, held, strict=True)
    ]
    append_lines(vault.settings.home, CANARIES_FILE, [c.as_dict() for c in canaries])
    total = sum(len(items) for items in batches.values())
    return PlantResult(canaries=canaries, identities=identities, records=total)


def _scope_org(vault: Vault, org: str | None, accessor: str | None) -> str | None:
    for name, value in (("--org", org), ("--accessor", accessor)):
        if value is not None and (not value or not value.isprintable() or len(value) > 64):
            raise InputError(f"{name} must be 1-64 printable characters")
    if accessor is None:
        return org
    found = vault.store.accessor(accessor)
    if found is None:
        raise InputError(f"cannot scope canaries to unknown accessor '{accessor}'")
    if org is not None and org != found.org:
        raise InputError(f"accessor '{accessor}' is not of organization '{org}'")
    return found.org


def _plantable(vault: Vault, access: Access) -> list[str]:
    """The collections canaries get records in: the identity collection, then every other
    collection no grant can export and the registrar may write, in schema order."""
    identity = vault.schema.subject_field[0]
    exportable = {
        name for g in vault.policy.grants if Action.EXPORT in g.actions for name in g.collections
    }
    out = [identity]
    for name in vault.schema.collections:
        if name == identity or name in exportable:
            continue
        if vault.explain(access, Action.PUT, name).allowed:
            out.append(name)
    return out


def _free_people(vault: Vault, count: int, rng: random.Random) -> list[Person]:
    """``count`` synthetic people whose ID numbers and phones no vault subject holds."""
    index = vault._index  # forensics reads the blind index through the vault (DESIGN §4)
    identity, id_field = vault.schema.subject_field
    phone_indexed = "phone" in vault.schema.collection(identity).indexed_fields
    people: list[Person] = []
    seen: set[str] = set()
    draws = 0
    while len(people) < count:
        draws += 1
        if draws > count * _DRAWS:
            raise InputError("could not find free ID numbers for canaries")
        person = synthetic_person(rng)
        probes = [index.token(identity, id_field, person.id_number)]
        if phone_indexed:
            probes.append(index.token(identity, "phone", person.phone))
        if person.id_number in seen or any(vault.store.lookup(p, 1) for p in probes):
            continue
        seen.add(person.id_number)
        people.append(person)
    return people


def _records(
    vault: Vault, person: Person, wanted: Sequence[str], rng: random.Random
) -> dict[str, list[dict[str, str]]]:
    """The person's records in the wanted collections, as the schema would store them; a
    collection whose simulated records do not fit this schema is left out (identity must fit).
    """
    made = person_records(person, rng)
    identity = vault.schema.subject_field[0]
    out: dict[str, list[dict[str, str]]] = {}
    for name in wanted:
        coll = vault.schema.collection(name)
        try:
            out[name] = [coll.validate(r) for r in made.get(name, [])]
        except InputError:
            if name == identity:
                raise InputError(
                    f"cannot make plausible canary records for collection '{name}' of this schema"
                ) from None
    if not out.get(identity):
        raise InputError(f"cannot make an identity record for canaries in '{identity}'")
    return out


def canaries_in(
    vault: Vault,
    subject_tokens: LeakTable | Iterable[str | None],
    *,
    table: LeakTable | None = None,
    searched: tuple[Sequence[ExportRecord], CanarySearch] | None = None,
) -> list[CanaryHit]:
    """Return the canaries among a leak's subjects.

    ``subject_tokens`` are the ledger pseudonyms of the ID numbers in the leak (``vault.
    pseudonym`` of every valid ID number, whether or not it resolved to a subject: export
    canary rows are no vault subjects), or the parsed leak itself: then planted canaries are
    looked for among its resolved subjects, and export canaries among its other rows, by their
    values (confirmed by a whole row, or by an ID number alone: unconfirmed), which also finds
    canary rows without an ID number (``pseudonym`` None). ``searched`` is the registered
    exports and the search of the table's rows for their canary rows, when the caller has
    them already (see :func:`~custodes.forensics.match_fingerprints`).

    Raises:
        InputError: the registry is unreadable or malformed.
    """
    if isinstance(subject_tokens, LeakTable):
        table = subject_tokens
        subject_tokens = table.subjects
    tokens = {t for t in subject_tokens if t}
    hits = [
        CanaryHit(c.pseudonym, {"org": c.org, "accessor": c.accessor}, "planted", True)
        for c in planted_canaries(vault)
        if c.pseudonym in tokens
    ]
    search: CanarySearch | None
    if searched is not None:
        exports, search = searched
    else:
        exports = read_exports(vault)
        search = search_canary_rows(vault, exports, table) if table is not None else None
    for number, export in enumerate(exports):
        scope = {"export": export.export_id, "accessor": export.accessor, "org": export.org}
        found = search.found.get(number, set()) if search else set()
        for position, canary in enumerate(export.canaries):
            confirmed = position in found
            named = canary.subject is not None and canary.subject in tokens
            seen = search is not None and (number, position) in search.partial
            if confirmed or named or seen:
                hits.append(CanaryHit(canary.subject, scope, "export", confirmed))
    return hits
