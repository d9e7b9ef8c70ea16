"""Fingerprinted exports, and finding which export a leaked file came from.

:func:`export_fingerprinted` wraps :meth:`Vault.export <custodes.vault.Vault.export>` (policy,
per-subject ledger entries) and gives every export two recipient-specific carriers:

1. **Canary rows**: synthetic records (about nobody, never stored in the vault) mixed in at
   random positions, :data:`CANARY_SHARE` of the rows with at least :data:`MIN_CANARIES`,
   unique to this export. Each is registered by keyed tokens of its distinctive values
   (:mod:`custodes.forensics._anchors`), so one surviving canary row names the export exactly,
   whatever happened to the columns.
2. **A representation watermark** on every row, real and canary
   (:mod:`custodes.forensics._watermark`): the export key chooses between equal spellings of
   the same value. It survives subsetting to a few rows and needs no canary to survive.

The export's id, recipient and a digest of its registry line go on the ledger as an
``export_mark`` entry (:meth:`Vault.mark_export <custodes.vault.Vault.mark_export>`) before any
row is returned; the registry line (``<home>/forensics/exports.jsonl``) holds the canary tokens.
The export key is derived from the vault's index key and the export id: it is never stored.

:func:`match_fingerprints` tests a parsed leak (:class:`~custodes.forensics.LeakTable`) against
every registered export and returns the exports it matches with a confidence: one minus the
probability that a file *not* from that export would show as much evidence, multiplied by the
number of exports tested (a union bound over all of them).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from custodes.detect._base import poisson_tail
from custodes.errors import InputError
from custodes.forensics._anchors import HIT_WEIGHT, anchor_key, anchor_token, anchor_weight
from custodes.forensics._canaryrows import CanarySearch, search_canary_rows
from custodes.forensics._leak import LeakTable
from custodes.forensics._registry import (
    EXPORTS_FILE,
    CanaryRow,
    ExportRecord,
    append_lines,
    body_digest,
    read_lines,
)
from custodes.forensics._synth import canary_record, synthetic_person
from custodes.forensics._watermark import (
    Observation,
    agreement,
    binomial_tail,
    column_carrier,
    mark_value,
    observe,
)
from custodes.model import RECORD_ID_RANDOM_HEX, Access, Action, record_id_head
from custodes.schema import Collection, FieldType
from custodes.vault import Record

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = [
    "CANARY_SHARE",
    "HIGH_CONFIDENCE",
    "MAX_CANARIES",
    "MIN_CANARIES",
    "REPORT_CONFIDENCE",
    "SCHEME",
    "ExportMatch",
    "FingerprintedExport",
    "export_fingerprinted",
    "export_key",
    "match_fingerprints",
    "read_exports",
]

SCHEME = "custodes-fp-1"
"""The fingerprint scheme (canary rows + representation watermark), named in every mark."""

CANARY_SHARE = 0.015
"""Canary rows per real row of an export."""

MIN_CANARIES = 3
"""Canary rows in any export with at least one real row."""

MAX_CANARIES = 1000
"""Canary rows in the largest exports (a registry line stays small)."""

REPORT_CONFIDENCE = 0.99
""":func:`match_fingerprints` leaves out exports matched with less confidence than this (a
file from elsewhere is reported with some match at most 1% of the time)."""

HIGH_CONFIDENCE = 0.999
"""A match at least this confident names the export: the chance that a file from elsewhere
matches some export this well is at most 1 in 1000."""

MAX_OBSERVATIONS = 4096
"""Distinct watermark carriers tested per leak (a random sample beyond this)."""

_SCAN_ROWS = 20_000  # rows of a large leak scanned for watermark carriers (a random sample)
_VETTING_TRIES = 20  # draws of a canary row before an export gives up on one
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FingerprintedExport:
    """The rows of one export, real and canary, shuffled and watermarked, and its id.

    ``records`` carry record ids and creation times like any vault record (a canary's are
    random / a real record's); ``rows`` are their values, what a file export writes.
    """

    export_id: str
    collection: str
    fields: tuple[str, ...]
    records: list[Record]
    real_rows: int
    canary_rows: int
    ledger_index: int

    @property
    def rows(self) -> list[dict[str, str]]:
        """The values of every row, in output order."""
        return [dict(r.values) for r in self.records]


@dataclass(frozen=True, slots=True)
class ExportMatch:
    """A registered export whose fingerprint a leak carries.

    ``confidence`` is one minus the (union-bounded) probability that a file not from this
    export shows this much evidence; ``method`` names the stronger carrier (``canary_rows`` or
    ``watermark``); ``evidence`` holds the counts behind it (both carriers' when both speak).
    """

    export_id: str
    accessor: str
    org: str
    collection: str
    created_at: datetime
    confidence: float
    method: str
    evidence: dict[str, float | int] = field(default_factory=dict)
    ledger_index: int = -1

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "export_id": self.export_id,
            "accessor": self.accessor,
            "org": self.org,
            "collection": self.collection,
            "created_at": self.created_at.isoformat(),
            "confidence": self.confidence,
            "method": self.method,
            "evidence": dict(self.evidence),
            "ledger_index": self.ledger_index,
        }


def export_key(vault: Vault, export_id: str) -> bytes:
    """The watermark key of one export (derived from the vault's index key; never stored)."""
    return bytes.fromhex(vault.keyed_token("export_mark", export_id))


# -- exporting ---------------------------------------------------------------------------------


def export_fingerprinted(
    vault: Vault,
    access: Access,
    collection: str,
    fields: Sequence[str] | None = None,
    *,
    rng: random.Random | None = None,
    canary_share: float = CANARY_SHARE,
    min_canaries: int = MIN_CANARIES,
) -> FingerprintedExport:
    """Export ``collection`` to ``access``'s accessor with a recipient-specific fingerprint.

    The export is decided and ledgered by :meth:`Vault.export`; its fingerprint is then
    recorded on the ledger and in the registry before the rows are returned. ``rng`` (tests
    only) replaces the operating system's randomness.

    Raises:
        InputError: unknown collection or field, or a bad canary share.
        AccessDenied: policy refused the export (recorded).
        AuditFailure: the export or its mark could not be committed; nothing is returned.
        OSError: the registry could not be written; nothing is returned.
    """
    if not 0 <= canary_share <= 0.5 or min_canaries < 0:
        raise InputError("canary_share must be within 0..0.5 and min_canaries zero or more")
    records = vault.export(access, collection, fields)
    rng = rng or random.SystemRandom()
    coll = vault.schema.collection(collection)
    names = _exported_fields(coll, records, fields)
    export_id = f"{rng.getrandbits(80):020x}"
    key = export_key(vault, export_id)
    count = 0 if not records else max(min_canaries, round(len(records) * canary_share))
    made = _canaries(vault, coll, records, min(count, MAX_CANARIES), rng)
    out, carriers = _marked(coll, key, [*records, *(rec for rec, _ in made)])
    rng.shuffle(out)
    seq = register_mark(
        vault,
        access,
        coll.name,
        names,
        export_id=export_id,
        rows=len(out),
        canaries=tuple(row for _, row in made),
        carriers=carriers,
    )
    return FingerprintedExport(
        export_id=export_id,
        collection=coll.name,
        fields=tuple(names),
        records=out,
        real_rows=len(records),
        canary_rows=len(made),
        ledger_index=seq,
    )


def register_mark(
    vault: Vault,
    access: Access,
    collection: str,
    names: Sequence[str],
    *,
    export_id: str,
    rows: int,
    canaries: tuple[CanaryRow, ...],
    carriers: int,
    read: str | None = None,
) -> int:
    """Record a fingerprint: an ``export_mark`` ledger entry (ids and a digest of the registry
    line only), then the registry line itself; return the entry's ledger index.

    ``read`` names a fingerprinted read (e.g. ``"find"``) rather than an export.

    Raises:
        AuditFailure: the mark could not be committed; the rows must not be released.
        OSError: the registry could not be written; the rows must not be released.
    """
    pending = ExportRecord(
        export_id=export_id,
        accessor=access.principal.accessor,
        org=access.principal.org,
        role=access.principal.role,
        purpose=access.purpose,
        case=access.case,
        collection=collection,
        fields=tuple(names),
        created_at=datetime.min,
        rows=rows,
        canaries=canaries,
        carriers=carriers,
        scheme=SCHEME,
        ledger_index=-1,
    )
    mark: dict[str, object] = {
        "export": export_id,
        "scheme": SCHEME,
        "canary_rows": len(canaries),
        "digest": body_digest(pending.body()),
    }
    if read is not None:
        mark["read"] = read
    text = json.dumps(mark, sort_keys=True, separators=(",", ":"))
    seq = vault.mark_export(access, collection, names, rows=rows, mark=text)
    entry = next(vault.store.events(seq, seq + 1))[1]
    registered = replace(pending, created_at=entry.ts, ledger_index=seq)
    append_lines(vault.settings.home, EXPORTS_FILE, [registered.as_dict()])
    return seq


def _exported_fields(
    coll: Collection, records: Sequence[Record], fields: Sequence[str] | None
) -> list[str]:
    present = {name for rec in records for name in rec.values}
    if fields is not None:
        present.update(fields)
    return [name for name in coll.fields if name in present]


def _marked(coll: Collection, key: bytes, records: Sequence[Record]) -> tuple[list[Record], int]:
    """Give every value that has two spellings the one the export key chooses."""
    types = {name: spec.type for name, spec in coll.fields.items()}
    carrying = {FieldType.DATETIME, FieldType.PHONE, FieldType.ID_NUMBER, FieldType.GEO}
    out, carriers = [], 0
    for rec in records:
        values = {}
        for name, value in rec.values.items():
            if types[name] in carrying:
                value, carries = mark_value(key, types[name], value)
                carriers += carries
            values[name] = value
        out.append(Record(rec.record_id, rec.collection, rec.created_at, values))
    return out, carriers


def _canaries(
    vault: Vault, coll: Collection, records: Sequence[Record], count: int, rng: random.Random
) -> list[tuple[Record, CanaryRow]]:
    """Make ``count`` canary rows shaped like ``records``; each is vetted: none of its
    identifiers is in the vault's blind index or registered for another canary."""
    if count == 0:
        return []
    key = anchor_key(vault)
    taken = {
        token for exp in read_lines(vault.settings.home, EXPORTS_FILE) for token in _tokens(exp)
    }
    made: list[tuple[Record, CanaryRow]] = []
    for _ in range(count):
        for _attempt in range(_VETTING_TRIES):
            donor = rng.choice(records)
            try:
                values = canary_record(coll, donor.values, synthetic_person(rng), rng)
            except InputError:
                continue  # a donor with an unusual value: draw another
            row = _canary_row(vault, coll, key, values)
            if _vetted(vault, coll, values, row, taken):
                taken.update(token for token, _ in row.anchors)
                # Shaped like a real id: its time head is the donor's creation time.
                tail = f"{rng.getrandbits(4 * RECORD_ID_RANDOM_HEX):0{RECORD_ID_RANDOM_HEX}x}"
                record_id = record_id_head(donor.created_at) + tail
                made.append((Record(record_id, coll.name, donor.created_at, values), row))
                break
        else:
            _log.warning("export of %s: could not vet a canary row; it has one fewer", coll.name)
    return made


def _tokens(line: Mapping[str, object]) -> Iterable[str]:
    canaries = line.get("canaries")
    if not isinstance(canaries, list):
        return
    for canary in canaries:
        for token, _weight in canary.get("anchors", ()) if isinstance(canary, dict) else ():
            yield str(token)


def _canary_row(vault: Vault, coll: Collection, key: bytes, values: Mapping[str, str]) -> CanaryRow:
    anchors: dict[str, int] = {}
    subject = None
    for name, value in values.items():
        spec = coll.field(name)
        if spec.type is FieldType.ID_NUMBER and subject is None:
            subject = vault.pseudonym(value)
        weight = anchor_weight(spec)
        if weight:
            token = anchor_token(key, value)
            anchors[token] = max(weight, anchors.get(token, 0))
    return CanaryRow(subject=subject, anchors=tuple(sorted(anchors.items())))


def _vetted(
    vault: Vault, coll: Collection, values: Mapping[str, str], row: CanaryRow, taken: set[str]
) -> bool:
    """Whether no strong identifier of the row is a vault value or another canary's."""
    strong = {token for token, weight in row.anchors if weight >= HIT_WEIGHT // 2}
    if strong & taken:
        return False
    index = vault._index  # forensics reads the blind index through the vault (DESIGN §4)
    subject_coll, subject_field = vault.schema.subject_field
    for name, value in values.items():
        spec = coll.field(name)
        if spec.type is FieldType.ID_NUMBER:
            probe = index.token(subject_coll, subject_field, value)
        elif spec.indexed:
            probe = index.token(coll.name, name, value)
        else:
            continue
        if vault.store.lookup(probe, 1):
            return False
    return True


# -- reading the registry ----------------------------------------------------------------------


def read_exports(vault: Vault) -> list[ExportRecord]:
    """Return the registered exports whose registry line matches their ledger entry.

    A line whose ``export_mark`` entry is missing, names another export or recipient, or holds
    another digest was altered after the export: it is left out and logged.

    Raises:
        InputError: the registry file is unreadable or malformed.
    """
    out = []
    for line in read_lines(vault.settings.home, EXPORTS_FILE):
        record = ExportRecord.from_dict(line)
        problem = _ledger_problem(vault, record)
        if problem is None:
            out.append(record)
        else:
            _log.warning("export %s left out of forensics: %s", record.export_id, problem)
    return out


def _ledger_problem(vault: Vault, record: ExportRecord) -> str | None:
    found = next(vault.store.events(record.ledger_index, record.ledger_index + 1), None)
    if found is None:
        return f"no ledger entry {record.ledger_index}"
    entry = found[1]
    if entry.action != Action.EXPORT_MARK or entry.accessor != record.accessor:
        return f"ledger entry {record.ledger_index} is not this export's mark"
    try:
        mark = json.loads(entry.reason)
    except ValueError:
        return f"ledger entry {record.ledger_index} holds no export mark"
    if not isinstance(mark, dict) or mark.get("export") != record.export_id:
        return f"ledger entry {record.ledger_index} marks another export"
    if mark.get("digest") != body_digest(record.body()):
        return "the registry line differs from what the ledger recorded"
    return None


# -- matching a leak ---------------------------------------------------------------------------


def match_fingerprints(
    vault: Vault,
    table: LeakTable,
    *,
    min_confidence: float = REPORT_CONFIDENCE,
    searched: tuple[Sequence[ExportRecord], CanarySearch] | None = None,
) -> list[ExportMatch]:
    """Return the registered exports whose fingerprint ``table`` carries, most confident first.

    Rows that resolved to a vault subject (``table.subjects``) are real: only the others are
    searched for canary rows. Every row is read for watermark carriers. ``searched`` is the
    registered exports and that search, when the caller has them already.

    Raises:
        InputError: the registry is unreadable or malformed.
    """
    exports, search = searched if searched is not None else (read_exports(vault), None)
    if not exports or not table.rows:
        return []
    if search is None:
        search = search_canary_rows(vault, exports, table)
    observations = _observations(table)
    matches = []
    for number, export in enumerate(exports):
        found = len(search.found.get(number, ()))
        canary = (found, search.rows.get(number, 0), search.checked)
        match = _judge(vault, export, canary, observations, len(exports))
        if match.confidence >= min_confidence:
            matches.append(match)
    return sorted(matches, key=lambda m: (-m.confidence, m.created_at))


def _judge(
    vault: Vault,
    export: ExportRecord,
    canary: tuple[int, int, int],
    observations: Sequence[Observation],
    tested: int,
) -> ExportMatch:
    """Weigh both carriers of one export; the stronger decides. ``canary`` is (canary rows
    found, leak rows that are canary rows, leak rows searched)."""
    agree, total = agreement(export_key(vault, export.export_id), observations)
    p_mark = binomial_tail(agree, total)
    found, rows, checked = canary
    # Chance matches: each of ``checked`` rows against each canary, at most 10^-HIT_WEIGHT.
    p_canary = poisson_tail(found, checked * len(export.canaries) * 10.0**-HIT_WEIGHT)
    evidence: dict[str, float | int] = {
        "canary_rows_issued": len(export.canaries),
        "canary_rows_found": found,
        "leak_rows_canary": rows,
        "canary_false_positive": p_canary,
        "carriers": total,
        "carriers_agreeing": agree,
        "agreement": agree / total if total else 0.0,
        "watermark_false_positive": p_mark,
    }
    confidence = max(0.0, 1.0 - min(1.0, min(p_canary, p_mark) * tested))
    # A canary row exists in one export only: when it decides, say so, even if the watermark
    # is as strong (both bounds are often below what a float holds).
    canary_decides = found and 1.0 - min(1.0, p_canary * tested) >= HIGH_CONFIDENCE
    method = "canary_rows" if canary_decides or p_canary < p_mark else "watermark"
    return ExportMatch(
        export_id=export.export_id,
        accessor=export.accessor,
        org=export.org,
        collection=export.collection,
        created_at=export.created_at,
        confidence=confidence,
        method=method,
        evidence=evidence,
        ledger_index=export.ledger_index,
    )


def _observations(table: LeakTable) -> list[Observation]:
    """The distinct watermark carriers of a leak (each value once, first spelling seen)."""
    rows = table.rows
    if len(rows) > _SCAN_ROWS:
        picked = sorted(random.Random(len(rows)).sample(range(len(rows)), _SCAN_ROWS))  # noqa: S311
        rows = [rows[i] for i in picked]
    columns = table.columns or tuple(rows[0]) if rows else ()
    seen: dict[tuple[str, str], int] = {}
    for column in columns:
        carrier = column_carrier([row.get(column, "") for row in rows[:200]])
        if carrier is None:
            continue
        for row in rows:
            cell = row.get(column)
            found = observe(carrier, cell) if cell else None
            if found is not None:
                seen.setdefault((found[0], found[1]), found[2])
    observed = [(carrier, canonical, bit) for (carrier, canonical), bit in seen.items()]
    if len(observed) > MAX_OBSERVATIONS:
        observed = random.Random(len(observed)).sample(observed, MAX_OBSERVATIONS)  # noqa: S311
    return observed
