"""Tracing a leaked file: is it ours, whose records, which export, whose reads cover it.

:func:`trace_leak` reads the file (:func:`~custodes.forensics._leak.read_leak`), resolves each
row to a vault subject through the blind indexes (a keyed token of the row's ID number, phone or
other indexed value, looked up exactly; nothing is decrypted), finds which collections those
subjects have records in, asks the canary registry and the export fingerprints what they
recognize, and ranks the accessors whose ledgered reads cover the leaked subjects.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodes.errors import InputError
from custodes.forensics._canary import CanaryHit, canaries_in
from custodes.forensics._canaryrows import search_canary_rows
from custodes.forensics._fingerprint import (
    HIGH_CONFIDENCE,
    ExportMatch,
    match_fingerprints,
    read_exports,
)
from custodes.forensics._leak import ColumnRole, LeakTable, Progress, clean_id_number, read_leak
from custodes.forensics._lookups import LookupHelper, lookup_values
from custodes.model import AccessEvent, Action
from custodes.schema import Collection, FieldType

if TYPE_CHECKING:
    from custodes.crypto import BlindIndex
    from custodes.vault import Vault

__all__ = [
    "CollectionShare",
    "LeakReport",
    "Resolution",
    "Suspect",
    "rank_suspects",
    "resolve_subjects",
    "trace_leak",
]

HELPER_MIN_BYTES = 1_000_000  # leaked files this large get a helper process for the lookups
HELPER_MIN_VALUES = 20_000  # ID numbers worth handing half of to it
LEDGER_SAMPLE = 2_000  # leaked subjects whose ledger events are read for attribution
COLLECTION_SAMPLE = 200  # leaked subjects whose collections are listed
KEY_SAMPLE = 40  # values of a column tried against another indexed field
EVENTS_PER_SUBJECT = 1_000  # newest ledger events read per sampled subject
READS_PER_SUSPECT = 5_000  # newest events read per ranked accessor to size its reads
SUSPECTS = 10
_READS = frozenset({Action.GET.value, Action.FIND.value, Action.EXPORT.value})
_ROLE_TYPES = {
    ColumnRole.ID_NUMBER: FieldType.ID_NUMBER,
    ColumnRole.PHONE: FieldType.PHONE,
    ColumnRole.NAME: FieldType.NAME,
    ColumnRole.DATE: FieldType.DATE,
    ColumnRole.DATETIME: FieldType.DATETIME,
}


@dataclass(frozen=True, slots=True)
class CollectionShare:
    """How well one collection explains the leaked rows.

    ``holders`` of ``sampled`` leaked subjects have records in it; ``fit`` is the share of the
    file's typed columns (phone, name, dates) that fields of this collection could hold, with
    ``named`` columns whose header is one of its field names.
    """

    collection: str
    holders: int
    sampled: int
    fit: float
    named: int
    likely: bool


@dataclass(frozen=True, slots=True)
class Suspect:
    """An accessor whose allowed reads cover leaked subjects, with overlap and time window.

    ``covered`` of ``sampled`` leaked subjects were read by this accessor (``full``: with every
    leaked field); ``coverage`` is ``covered / sampled``, ``estimated`` the count scaled to all
    matched subjects. ``read_subjects`` is how many distinct subjects the accessor read in the
    leak's collections (at least, if ``read_capped``); ``precision`` the share of those that
    are in the leak (1.0: it read exactly the leaked people).
    """

    accessor: str
    org: str
    role: str
    covered: int
    full: int
    sampled: int
    coverage: float
    estimated: int
    read_subjects: int
    read_capped: bool
    precision: float
    first_read: datetime
    last_read: datetime
    actions: dict[str, int]
    collections: tuple[str, ...]


@dataclass(frozen=True)
class LeakReport:
    """What :func:`trace_leak` found about a leaked file."""

    source: str
    format: str
    rows: int
    bad_rows: int
    problems: tuple[str, ...]
    columns: dict[str, str]
    keys: dict[str, str]
    matched_rows: int
    matched_subjects: int
    matched_by: dict[str, int]
    identifiable_rows: int
    collections: list[CollectionShare]
    canaries: list[CanaryHit]
    exports: list[ExportMatch]
    suspects: list[Suspect]
    verdict: str
    summary: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        """Whether the verdict is ``ours`` (see :func:`trace_leak`)."""
        return self.verdict == "ours"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times in ISO 8601)."""
        body = asdict(self)
        body["canaries"] = [_plain(hit) for hit in self.canaries]
        body["exports"] = [_plain(match) for match in self.exports]
        out: dict[str, Any] = _jsonable(body)
        return out


def trace_leak(vault: Vault, path: Path | str, *, progress: Progress | None = None) -> LeakReport:
    """Trace a leaked file against ``vault`` and report what it is and where it came from.

    The verdict is ``ours`` when a confirmed canary or an export fingerprint (confidence at
    least ``HIGH_CONFIDENCE``) is found, or when at least 3 rows and half the identifiable rows
    name vault subjects; ``not ours`` when nothing is found and fewer than 3 rows, or fewer than
    1 in 20 identifiable rows, name subjects; ``inconclusive`` in between. Tracing decrypts
    nothing and writes nothing. ``progress`` is called as ``(stage, done, total)``.

    Raises:
        InputError: the file is unreadable (see :func:`~custodes.forensics.read_leak`).
        StoreError: the store could not be read.
    """
    clock = _Stopwatch()
    with _helper_for(vault, path) as helper:
        table = read_leak(path, progress=progress)
        clock.lap("read")
        resolved = resolve_subjects(vault, table, progress=progress, helper=helper)
    table, keys, matched_by = resolved.table, resolved.keys, resolved.matched_by
    clock.lap("match")
    pseudonyms = sorted(resolved.refs)
    shares = _collections(vault, table, resolved.refs)
    scope = frozenset(s.collection for s in shares if s.likely)
    clock.lap("collections")
    canaries, exports = _fingerprints(vault, table)
    clock.lap("fingerprints")
    leaked_fields = _leaked_fields(vault, table, scope)
    suspects = rank_suspects(vault, pseudonyms, scope=scope, fields=leaked_fields)
    clock.lap("ledger")
    return _report(table, keys, matched_by, shares, canaries, exports, suspects, clock)


def _helper_for(vault: Vault, path: Path | str) -> LookupHelper | nullcontext[None]:
    """A helper process for a large file's lookups, started now so that its start-up overlaps
    the reading of the file (see :mod:`custodes.forensics._lookups`)."""
    try:
        large = Path(path).stat().st_size >= HELPER_MIN_BYTES
    except OSError:
        large = False  # read_leak says what is wrong with the path
    return LookupHelper(vault.settings) if large else nullcontext()


class _Stopwatch:
    def __init__(self) -> None:
        self.start = self.mark = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.mark, 4)
        self.mark = now


# -- rows to subjects --------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """Rows resolved to vault subjects: the table with ``subjects`` (and confirmed
    ``id_numbers``) filled in, the key columns found (``column -> collection.field``), how many
    rows each kind of key resolved, and the subject ref of every matched pseudonym."""

    table: LeakTable
    keys: dict[str, str]
    matched_by: dict[str, int]
    refs: dict[str, bytes]


def resolve_subjects(
    vault: Vault,
    table: LeakTable,
    *,
    progress: Progress | None = None,
    helper: LookupHelper | None = None,
) -> Resolution:
    """Resolve each row to a vault subject through exact blind-index lookups.

    A row's ID number is tried first, then its phone numbers, then values of columns found to
    hold another indexed field (a booking reference, a document number). Each distinct value
    is looked up once; a running ``helper`` process looks up half of the ID numbers, if there
    are at least ``HELPER_MIN_VALUES``. ID numbers that match no subject are then validated in
    full, and dropped from ``id_numbers`` if invalid.

    Raises:
        StoreError: the store could not be read.
    """
    collection, field_name = vault.schema.subject_field
    wanted = list({number for number in table.id_numbers if number is not None})
    pseudonyms: dict[bytes, str] = {}
    if helper is not None and helper.running and len(wanted) >= HELPER_MIN_VALUES:
        by_id = _lookup_shared(vault, helper, collection, field_name, wanted, progress, pseudonyms)
    else:
        by_id = _lookup_all(vault, collection, field_name, wanted, progress, pseudonyms)
    refs: list[bytes | None] = [by_id.get(n) if n else None for n in table.id_numbers]
    matched_by: Counter[str] = Counter({"id_number": sum(1 for r in refs if r is not None)})
    keys = _key_columns(vault, table)
    for column, (coll, name) in keys.items():
        _resolve_by_key(vault, table.rows, refs, column, coll, name, matched_by, pseudonyms)
    subjects = [pseudonyms[ref] if ref is not None else None for ref in refs]
    id_numbers = [
        number if ref is not None or number is None else clean_id_number(number)
        for number, ref in zip(table.id_numbers, refs, strict=True)
    ]
    return Resolution(
        table=replace(table, subjects=subjects, id_numbers=id_numbers),
        keys={col: f"{coll}.{name}" for col, (coll, name) in keys.items()},
        matched_by={how: n for how, n in matched_by.items() if n},
        refs={p: ref for ref, p in pseudonyms.items()},
    )


def _resolve_by_key(
    vault: Vault,
    rows: Sequence[dict[str, str]],
    refs: list[bytes | None],
    column: str,
    collection: str,
    field_name: str,
    matched_by: Counter[str],
    pseudonyms: dict[bytes, str],
) -> None:
    """Fill in the unresolved rows whose ``column`` holds a known ``collection.field``."""
    values: dict[int, str] = {}
    for pos, row in enumerate(rows):
        if refs[pos] is None and (raw := row.get(column)):
            normalized = _normalized(vault, collection, field_name, raw)
            if normalized is not None:
                values[pos] = normalized
    found = _lookup_all(vault, collection, field_name, set(values.values()), None, pseudonyms)
    for pos, value in values.items():
        ref = found.get(value)
        if ref is not None:
            refs[pos] = ref
            matched_by[f"{collection}.{field_name}"] += 1


def _lookup_all(
    vault: Vault,
    collection: str,
    field_name: str,
    values: Iterable[str],
    progress: Progress | None,
    pseudonyms: dict[bytes, str],
    *,
    whole: int | None = None,
) -> dict[str, bytes]:
    """:func:`~custodes.forensics._lookups.lookup_values` of ``values`` in this process; the
    pseudonym of every subject found is added to ``pseudonyms`` (by subject ref). Progress is
    reported out of ``whole`` values (default: these)."""
    values = list(values)
    out_of = len(values) if whole is None else whole
    report: Callable[[int, int], None] | None = None
    if progress is not None:
        shown = progress
        report = lambda done, _total: shown("match", done, out_of)  # noqa: E731
    found, named = lookup_values(vault.store, vault._index, collection, field_name, values, report)
    pseudonyms.update(named)
    if report is not None:
        report(len(values), out_of)
    return found


def _lookup_shared(
    vault: Vault,
    helper: LookupHelper,
    collection: str,
    field_name: str,
    values: Sequence[str],
    progress: Progress | None,
    pseudonyms: dict[bytes, str],
) -> dict[str, bytes]:
    """:func:`_lookup_all`, with the second half of ``values`` looked up by ``helper`` at the
    same time (or here, after the first half, if the helper fails)."""
    half = len(values) // 2
    mine, theirs = values[:half], values[half:]
    helper.submit(collection, field_name, theirs)
    found = _lookup_all(
        vault, collection, field_name, mine, progress, pseudonyms, whole=len(values)
    )
    answer = helper.result()
    if answer is None:
        found.update(_lookup_all(vault, collection, field_name, theirs, None, pseudonyms))
    else:
        found.update(answer[0])
        pseudonyms.update(answer[1])
    if progress is not None:
        progress("match", len(values), len(values))
    return found


def _normalized(vault: Vault, collection: str, field_name: str, value: str) -> str | None:
    try:
        return vault.schema.collection(collection).field(field_name).normalize(value)
    except InputError:
        return None


def _key_columns(vault: Vault, table: LeakTable) -> dict[str, tuple[str, str]]:
    """Columns (other than the ID number) whose values hit an indexed field of the schema.

    Phone columns are tried against indexed phone fields; columns of no detected role against
    indexed text fields. A column is a key when at least a quarter of its sampled values (and
    two or more) are found; the field with the most hits wins.
    """
    index: BlindIndex = vault._index
    subject = vault.schema.subject_field
    candidates = [
        (coll.name, name, f.type)
        for coll in vault.schema.collections.values()
        for name, f in coll.fields.items()
        if f.indexed and (coll.name, name) != subject
    ]
    keys: dict[str, tuple[str, str]] = {}
    for column in table.columns:
        role = table.roles[column]
        if role not in (ColumnRole.PHONE, ColumnRole.OTHER):
            continue
        values = _sample_values(table.rows, column, KEY_SAMPLE)
        wanted = FieldType.PHONE if role is ColumnRole.PHONE else None
        best, best_hits = None, 0
        for coll, name, ftype in candidates:
            if (wanted is not None and ftype is not wanted) or (
                wanted is None and ftype is FieldType.PHONE
            ):
                continue
            hits = _hits(vault, index, coll, name, values)
            if hits > best_hits:
                best, best_hits = (coll, name), hits
        if best is not None and best_hits >= max(2, len(values) // 4):
            keys[column] = best
        elif best is not None and role is ColumnRole.PHONE and best_hits:
            keys[column] = best  # few hits is still a phone column; rows decide one by one
    return keys


def _hits(vault: Vault, index: BlindIndex, coll: str, name: str, values: Sequence[str]) -> int:
    hits = 0
    for value in values:
        normalized = _normalized(vault, coll, name, value)
        if normalized is not None and vault.store.lookup(index.token(coll, name, normalized), 1):
            hits += 1
    return hits


def _sample_values(rows: Sequence[dict[str, str]], column: str, count: int) -> list[str]:
    step = max(1, len(rows) // (count * 4))
    values = [v for row in rows[::step] if (v := row.get(column, "").strip())]
    return values[:count]


# -- collections -------------------------------------------------------------------------------


def _collections(vault: Vault, table: LeakTable, refs: dict[str, bytes]) -> list[CollectionShare]:
    """Which collections the leaked subjects have records in (a sample of them, by subject
    ref: ciphertexts are counted, never opened) and which fit the file's columns."""
    sample = [refs[p] for p in sorted(refs)[:COLLECTION_SAMPLE]]
    typed = [c for c in table.columns if table.roles[c] not in (ColumnRole.OTHER, _ID_ROLE)]
    shares = []
    for coll in vault.schema.collections.values():
        holders = sum(1 for ref in sample if vault.store.records(coll.name, ref))
        fit, named = _fit(coll, table, typed)
        shares.append(
            CollectionShare(coll.name, holders, len(sample), round(fit, 3), named, likely=False)
        )
    return _mark_likely(shares)


_ID_ROLE = ColumnRole.ID_NUMBER


def _fit(coll: Collection, table: LeakTable, typed: Sequence[str]) -> tuple[float, int]:
    fields = {_plain_name(name) for name in coll.fields}
    named = sum(1 for c in table.columns if _plain_name(c) in fields)
    if not typed:
        return (1.0 if named else 0.0), named
    types = Counter(f.type for f in coll.fields.values())
    wanted = Counter(_ROLE_TYPES[table.roles[c]] for c in typed)
    held = sum(min(n, types.get(t, 0)) for t, n in wanted.items())
    return held / len(typed), named


def _plain_name(name: str) -> str:
    return "".join(ch for ch in name.lower().rsplit(".", 1)[-1] if ch.isalnum())


def _mark_likely(shares: list[CollectionShare]) -> list[CollectionShare]:
    """The likely collections: held by most sampled subjects, and fitting the columns best."""
    held = [s for s in shares if s.sampled and s.holders * 2 >= s.sampled]
    if not held:
        return shares
    best = max((s.fit, s.named) for s in held)
    likely = {s.collection for s in held if (s.fit, s.named) == best and s.fit > 0}
    out = [replace(s, likely=s.collection in likely) for s in shares]
    return sorted(out, key=lambda s: (not s.likely, -s.fit, -s.holders, s.collection))


def _leaked_fields(vault: Vault, table: LeakTable, scope: frozenset[str]) -> dict[str, set[str]]:
    """Per likely collection, the fields the file's columns show (by header or by type)."""
    out: dict[str, set[str]] = {}
    for name in scope:
        coll = vault.schema.collection(name)
        by_name = {_plain_name(f): f for f in coll.fields}
        by_type: dict[FieldType, list[str]] = {}
        for fname, f in coll.fields.items():
            by_type.setdefault(f.type, []).append(fname)
        shown: set[str] = set()
        for column in table.columns:
            role = table.roles[column]
            if _plain_name(column) in by_name:
                shown.add(by_name[_plain_name(column)])
            elif role in _ROLE_TYPES and len(by_type.get(_ROLE_TYPES[role], ())) == 1:
                shown.add(by_type[_ROLE_TYPES[role]][0])
        out[name] = shown
    return out


# -- fingerprints and canaries (H5's registry) --------------------------------------------------


def _fingerprints(vault: Vault, table: LeakTable) -> tuple[list[CanaryHit], list[ExportMatch]]:
    exports = read_exports(vault)  # read, and the table searched for their canary rows, once
    searched = (exports, search_canary_rows(vault, exports, table))
    return (
        canaries_in(vault, table, searched=searched),
        match_fingerprints(vault, table, searched=searched),
    )


# -- the ledger --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cover:
    """One accessor's reads of sampled leaked subjects (made at its first covering read)."""

    org: str
    role: str
    first: datetime
    last: datetime
    subjects: set[str] = field(default_factory=set)
    full: set[str] = field(default_factory=set)
    actions: Counter[str] = field(default_factory=Counter)
    collections: set[str] = field(default_factory=set)


def rank_suspects(
    vault: Vault,
    pseudonyms: Sequence[str],
    *,
    scope: frozenset[str] = frozenset(),
    fields: dict[str, set[str]] | None = None,
    sample: int = LEDGER_SAMPLE,
) -> list[Suspect]:
    """Rank the accessors whose allowed reads (get, find, export) cover the leaked subjects.

    Reads up to ``EVENTS_PER_SUBJECT`` ledger events of each of up to ``sample`` subjects (the
    first pseudonyms in sorted order: keyed hashes, so a uniform sample), keeps reads in
    ``scope`` collections (all, if empty), and ranks accessors by how many sampled subjects
    they read with every leaked field, then by precision (how much of what they read is in the
    leak), then by coverage.

    Raises:
        StoreError: the store could not be read.
    """
    chosen = sorted(pseudonyms)[:sample]
    covers: dict[str, _Cover] = {}
    for pseudonym in chosen:
        for _seq, event in vault.store.subject_events(pseudonym, EVENTS_PER_SUBJECT):
            if event.decision != "allow" or event.action not in _READS or event.count == 0:
                continue
            if scope and event.collection not in scope:
                continue
            _note(covers, pseudonym, event, fields or {})
    total = len(set(pseudonyms))
    ranked = sorted(covers.items(), key=lambda kv: (-len(kv[1].full), -len(kv[1].subjects)))
    suspects = [
        _suspect(vault, accessor, cover, len(chosen), total, scope)
        for accessor, cover in ranked[:SUSPECTS]
    ]
    suspects.sort(key=lambda s: (-s.full, -s.precision, -s.covered, s.accessor))
    return suspects[:SUSPECTS]


def _note(
    covers: dict[str, _Cover], pseudonym: str, event: AccessEvent, fields: dict[str, set[str]]
) -> None:
    cover = covers.get(event.accessor)
    if cover is None:
        cover = covers[event.accessor] = _Cover(event.org, event.role, event.ts, event.ts)
    cover.subjects.add(pseudonym)
    wanted = fields.get(event.collection or "", set())
    if wanted <= set(event.fields) or not event.fields:
        cover.full.add(pseudonym)
    cover.first = min(cover.first, event.ts)
    cover.last = max(cover.last, event.ts)
    cover.actions[event.action] += 1
    if event.collection:
        cover.collections.add(event.collection)


def _suspect(
    vault: Vault, accessor: str, cover: _Cover, sampled: int, total: int, scope: frozenset[str]
) -> Suspect:
    read, capped = _read_subjects(vault, accessor, scope)
    coverage = len(cover.subjects) / sampled if sampled else 0.0
    estimated = round(coverage * total)
    return Suspect(
        accessor=accessor,
        org=cover.org,
        role=cover.role,
        covered=len(cover.subjects),
        full=len(cover.full),
        sampled=sampled,
        coverage=round(coverage, 4),
        estimated=estimated,
        read_subjects=max(read, estimated),
        read_capped=capped,
        precision=round(min(1.0, estimated / read) if read else 1.0, 4),
        first_read=cover.first,
        last_read=cover.last,
        actions=dict(cover.actions),
        collections=tuple(sorted(cover.collections)),
    )


def _read_subjects(vault: Vault, accessor: str, scope: frozenset[str]) -> tuple[int, bool]:
    events = vault.store.accessor_events(accessor, READS_PER_SUSPECT)
    subjects = {
        e.subject
        for _seq, e in events
        if e.decision == "allow"
        and e.action in _READS
        and e.count
        and e.subject
        and (not scope or e.collection in scope)
    }
    return len(subjects), len(events) >= READS_PER_SUSPECT


# -- the report --------------------------------------------------------------------------------


def _report(
    table: LeakTable,
    keys: dict[str, str],
    matched_by: dict[str, int],
    shares: list[CollectionShare],
    canaries: list[CanaryHit],
    exports: list[ExportMatch],
    suspects: list[Suspect],
    clock: _Stopwatch,
) -> LeakReport:
    matched = sum(1 for s in table.subjects if s is not None)
    subjects = len({s for s in table.subjects if s is not None})
    identifiable = _identifiable_rows(table, keys)
    verdict = _verdict(matched, identifiable, canaries, exports)
    report = LeakReport(
        source=table.source,
        format=table.format,
        rows=len(table.rows),
        bad_rows=table.bad_rows,
        problems=table.problems,
        columns={c: table.roles[c].value for c in table.columns},
        keys=keys,
        matched_rows=matched,
        matched_subjects=subjects,
        matched_by=matched_by,
        identifiable_rows=identifiable,
        collections=shares,
        canaries=canaries,
        exports=exports,
        suspects=suspects,
        verdict=verdict,
        summary="",
        seconds=round(time.perf_counter() - clock.start, 4),
        timings=clock.laps,
    )
    return replace(report, summary=summarize(report))


def _identifiable_rows(table: LeakTable, keys: dict[str, str]) -> int:
    """Rows holding something a subject could be found by (a valid ID number or a key)."""
    key_columns = list(keys)
    return sum(
        1
        for pos, row in enumerate(table.rows)
        if table.id_numbers[pos] is not None or any(row.get(c) for c in key_columns)
    )


def _verdict(
    matched: int,
    identifiable: int,
    canaries: Sequence[CanaryHit],
    exports: Sequence[ExportMatch],
) -> str:
    """``ours``: a canary or an export fingerprint was found, or most identifiable rows name
    vault subjects; ``not ours``: nothing found and at most a stray match; else
    ``inconclusive`` (some of these people are in the vault, but the file carries no mark)."""
    confident = [m for m in exports if m.confidence >= HIGH_CONFIDENCE]
    if confident or any(hit.confirmed for hit in canaries):
        return "ours"
    if matched >= 3 and matched * 2 >= identifiable:
        return "ours"
    if matched < 3 or matched * 20 < identifiable:
        return "not ours"
    return "inconclusive"


def summarize(report: LeakReport) -> str:
    """Return a few sentences saying what the trace found, for people."""
    parts = [
        f"{report.matched_rows:,} of {report.rows:,} rows name {report.matched_subjects:,} "
        f"subject(s) held in this vault"
    ]
    likely = [s.collection for s in report.collections if s.likely]
    if likely and report.matched_rows:
        parts.append(f"their shape and records point to: {', '.join(likely)}")
    if report.canaries:
        parts.append(f"{len(report.canaries)} canary record(s) found")
    strong = [m for m in report.exports if m.confidence >= HIGH_CONFIDENCE]
    if strong:
        best = strong[0]
        parts.append(
            f"fingerprint of export {best.export_id} to {best.accessor} "
            f"(confidence {best.confidence:.6f}, by {best.method})"
        )
    elif report.matched_rows:
        parts.append("no export fingerprint found")
    if report.suspects:
        parts.append(_ledger_sentence(report.suspects))
    if report.verdict == "not ours":
        parts = ["not ours: no row names a subject of this vault and no canary or fingerprint"]
        if report.matched_rows:
            parts[0] = (
                f"not ours: only {report.matched_rows} stray row(s) name subjects of this vault "
                "and there is no canary or fingerprint"
            )
    return "; ".join(parts) + "."


def _ledger_sentence(suspects: Sequence[Suspect]) -> str:
    top = suspects[0]
    tied = [
        s
        for s in suspects
        if (s.full, s.precision, s.covered) == (top.full, top.precision, top.covered)
    ]
    share = f"{top.coverage:.0%} of the sampled leaked subjects"
    if len(tied) > 1:
        names = ", ".join(s.accessor for s in tied)
        return f"ledger: reads by {names} cover {share} alike (the ledger cannot tell them apart)"
    return (
        f"ledger: {top.accessor} ({top.org}) read {share} between {top.first_read:%Y-%m-%d} and "
        f"{top.last_read:%Y-%m-%d}"
    )


def _plain(item: Any) -> Any:
    if hasattr(item, "as_dict"):
        return item.as_dict()
    if hasattr(item, "__dataclass_fields__"):
        return asdict(item)
    return item


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items: Iterable[Any] = sorted(value) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
