"""Finding the per-export canary rows of registered exports among a leak's rows.

Only rows that did not resolve to a vault subject are searched (a canary row is nobody). The
search runs in two passes so a large leak costs one keyed hash per distinct value of its
*shaped* columns (times, phones, ID numbers, positions; :func:`~custodes.forensics._anchors.
shaped`) rather than per cell: the first pass looks those values up among the registered
anchors; only rows with a hit there have their other cells hashed, to count the anchors that
confirm (or do not) a whole canary row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from custodes.forensics._anchors import (
    HIT_WEIGHT,
    ID_WEIGHT,
    anchor_digest,
    anchor_digests,
    anchor_key,
    shaped,
)
from custodes.forensics._leak import LeakTable
from custodes.forensics._registry import ExportRecord

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = ["CanarySearch", "search_canary_rows"]

_SAMPLE = 40  # values of a column looked at to decide whether it is shaped

# (export position, canary position, weight) per anchor token
_Index = Mapping[bytes, Sequence[tuple[int, int, int]]]


@dataclass
class CanarySearch:
    """What the search found: per export (by position in the list searched), the canary rows
    found whole and how many leak rows they were; the canaries whose ID number appeared
    without a whole row confirming them; and how many leak rows were searched."""

    found: dict[int, set[int]] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)
    partial: set[tuple[int, int]] = field(default_factory=set)
    checked: int = 0


def search_canary_rows(
    vault: Vault, exports: Sequence[ExportRecord], table: LeakTable
) -> CanarySearch:
    """Search ``table`` for the canary rows of ``exports``."""
    index: dict[bytes, list[tuple[int, int, int]]] = {}
    for number, export in enumerate(exports):
        for position, canary in enumerate(export.canaries):
            for token, weight in canary.anchors:
                index.setdefault(bytes.fromhex(token), []).append((number, position, weight))
    search = CanarySearch()
    subjects = table.subjects
    rows = [
        row
        for number, row in enumerate(table.rows)
        if number >= len(subjects) or subjects[number] is None  # a subject's row is real
    ]
    search.checked = len(rows)
    if not index or not rows:
        return search
    key = anchor_key(vault)
    columns = table.columns or tuple(rows[0])
    digests: dict[str, bytes] = {}
    for number, first in _first_pass(rows, columns, index, key, digests).items():
        _confirm(search, rows[number], first, index, key, digests)
    return search


def _first_pass(
    rows: Sequence[Mapping[str, str]],
    columns: Sequence[str],
    index: _Index,
    key: bytes,
    digests: dict[str, bytes],
) -> dict[int, list[tuple[int, int, int]]]:
    """Per row (by position), the registered anchors among its shaped values, hashed column by
    column (each distinct value once)."""
    hits: dict[int, list[tuple[int, int, int]]] = {}
    for column in columns:
        values = [row.get(column) or "" for row in rows]
        if not _shaped_column(values[:200]):
            continue
        found = anchor_digests(key, values)
        digests.update(found)
        for number, value in enumerate(values):
            if value and (anchors := index.get(found[value])):
                hits.setdefault(number, []).extend(anchors)
    return hits


def _shaped_column(values: Sequence[str]) -> bool:
    sample = [v for v in values if v and v.strip()][:_SAMPLE]
    return bool(sample) and sum(map(shaped, sample)) * 2 > len(sample)


def _digest(value: str, key: bytes, digests: dict[str, bytes]) -> bytes:
    found = digests.get(value)
    if found is None:
        found = digests[value] = anchor_digest(key, value)
    return found


def _confirm(
    search: CanarySearch,
    row: Mapping[str, str],
    first: Sequence[tuple[int, int, int]],
    index: _Index,
    key: bytes,
    digests: dict[str, bytes],
) -> None:
    """Count every anchor of the row for the canaries its shaped values hit."""
    wanted = {(export, canary) for export, canary, _ in first}
    matched: dict[tuple[int, int], dict[bytes, int]] = {pair: {} for pair in wanted}
    for value in row.values():
        if not value:
            continue
        token = _digest(value, key, digests)
        for export, canary, weight in index.get(token, ()):
            if (export, canary) in wanted:
                matched[(export, canary)][token] = weight
    for (export, canary), anchors in matched.items():
        if len(anchors) >= 2 and sum(anchors.values()) >= HIT_WEIGHT:
            search.found.setdefault(export, set()).add(canary)
            search.rows[export] = search.rows.get(export, 0) + 1
        elif ID_WEIGHT in anchors.values():
            search.partial.add((export, canary))
