"""Anchors: keyed tokens of a canary row's distinctive values, and how much each one proves.

A leaked row is recognised as a canary row by the values it shares with it, wherever they
ended up (any column, any name, either watermark spelling). Both sides are reduced to one
*anchor text* by the shape of the value alone, not by its column: times to UTC ISO 8601,
phone numbers to ``+digits``, ID numbers to upper case, positions without spaces, other text
to NFC with single spaces. The registry holds ``BLAKE2b(anchor text, key=anchor key)`` only (keyed
BLAKE2b is a pseudo-random function like HMAC, at a fraction of the cost per short value: a
large leak is hashed value by value).

Each anchor has a *weight*: the negative base-10 logarithm of a conservative bound on the
chance that one real value equals it (an ID number 10, a phone number 9, an identifier or a
position 8, a time to the minute 6, an amount 3, a name 2, other text 1). A row is a canary
row when at least two of its anchors match, one of them a *shaped* value (a time, phone number,
ID number or position, recognisable by its form alone, which is what lets a large leak be
searched column by column), and their weights sum to :data:`HIT_WEIGHT` or more: an ID number
with its name, a departure time with its booking reference, a check-in with its check-out. One
value alone never suffices: a real person may hold a synthetic ID number.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from custodes.schema import Field, FieldType

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = [
    "HIT_WEIGHT",
    "ID_WEIGHT",
    "anchor_digest",
    "anchor_digests",
    "anchor_key",
    "anchor_text",
    "anchor_token",
    "anchor_weight",
    "shaped",
]

HIT_WEIGHT = 12
"""The summed weight of matching anchors that makes a leaked row a canary row (a chance match
of at most about 10^-12 per pair of rows)."""

ID_WEIGHT = 10
"""The weight of an ID number (and of nothing else)."""

_WEIGHTS = {
    FieldType.ID_NUMBER: ID_WEIGHT,
    FieldType.PHONE: 9,
    FieldType.GEO: 8,
    FieldType.DATETIME: 6,
    FieldType.DECIMAL: 3,
    FieldType.INTEGER: 2,
    FieldType.NAME: 2,
    FieldType.STRING: 1,
    FieldType.DATE: 0,  # a birth date repeats the ID number; other dates are common
}
_INDEXED_WEIGHT = 8
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:?\d\d)")
_PHONE = re.compile(r"\+\d[\d ()-]{5,22}\d")
_ID = re.compile(r"\d{17}[\dXx]")
_GEO = re.compile(r"-?\d{1,3}\.\d+, ?-?\d{1,3}\.\d+")
_SEPARATORS = str.maketrans("", "", " ()-")
_blake2b = hashlib.blake2b


def anchor_weight(spec: Field) -> int:
    """How much a match of this field's value proves (0: not an anchor)."""
    if spec.indexed and spec.type is FieldType.STRING:
        return _INDEXED_WEIGHT
    return _WEIGHTS.get(spec.type, 0)


def anchor_key(vault: Vault) -> bytes:
    """The vault's key for anchor tokens (derived from its index key; never stored)."""
    return bytes.fromhex(vault.keyed_token("forensics", "canary-anchor-v1"))


def anchor_token(key: bytes, text: str) -> str:
    """The keyed token of one value's anchor text, as the registry writes it (hex)."""
    return anchor_digest(key, text).hex()


def anchor_digest(key: bytes, text: str) -> bytes:
    """The keyed token of one value's anchor text (16 bytes)."""
    return _blake2b(anchor_text(text).encode(), key=key, digest_size=16).digest()


def anchor_digests(key: bytes, values: Iterable[str]) -> dict[str, bytes]:
    """The keyed tokens of the distinct non-empty ``values`` (a column's), by value."""
    blake, text = _blake2b, anchor_text
    return {v: blake(text(v).encode(), key=key, digest_size=16).digest() for v in set(values) if v}


def shaped(cell: str) -> bool:
    """Whether a value is recognisable by its form: a time, phone, ID number or position."""
    text = cell.strip()
    return any(p.fullmatch(text) for p in (_DATETIME, _PHONE, _ID, _GEO))


def anchor_text(text: str) -> str:
    """Reduce a value to the form both the registry and a leak agree on (see module doc)."""
    cell = text.strip()
    if _DATETIME.fullmatch(cell):
        try:
            return datetime.fromisoformat(cell).astimezone(UTC).isoformat()
        except ValueError:
            pass
    if _PHONE.fullmatch(cell):
        return cell.translate(_SEPARATORS)
    if _ID.fullmatch(cell):
        return cell.upper()
    if _GEO.fullmatch(cell):
        return cell.replace(" ", "")
    return " ".join(unicodedata.normalize("NFC", cell).split())
