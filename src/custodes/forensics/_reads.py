"""Fingerprinted bulk reads: a large ``find`` answer carries its reader's watermark.

A ``find`` that returns at least ``forensics.fingerprint_min_rows`` records is a bulk read: its
rows could leak like an export's. :func:`fingerprint_read` gives them the same keyed choice of
spellings as :func:`~custodes.forensics.export_fingerprinted` (every value still normalizes to
the stored one) and records the mark the same way: an ``export_mark`` ledger entry whose mark
names the read (``"read": "find"``), and a registry line, so :func:`match_fingerprints` and
``custodes trace-leak`` name the read and its reader. No canary rows: an answer to a lookup
must not contain invented people.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from custodes.forensics._fingerprint import _exported_fields, _marked, export_key, register_mark
from custodes.model import Access
from custodes.vault import Record

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = ["fingerprint_read"]


def fingerprint_read(
    vault: Vault,
    access: Access,
    collection: str,
    records: Sequence[Record],
    *,
    read: str = "find",
    rng: random.Random | None = None,
) -> list[Record]:
    """Return ``records`` (a bulk read by ``access``) fingerprinted for its reader.

    Below ``forensics.fingerprint_min_rows`` records the answer is returned unchanged and
    nothing is written. Above it the mark is on the ledger and in the registry before any
    row is returned. ``read`` names the kind of read in the mark; ``rng`` (tests only)
    replaces the operating system's randomness.

    Raises:
        InputError: unknown collection or field.
        AuditFailure: the mark could not be committed; the rows must not be released.
        OSError: the registry could not be written; the rows must not be released.
    """
    if len(records) < vault.settings.fingerprint_min_rows:
        return list(records)
    coll = vault.schema.collection(collection)
    names = _exported_fields(coll, records, None)
    export_id = f"{(rng or random.SystemRandom()).getrandbits(80):020x}"
    out, carriers = _marked(coll, export_key(vault, export_id), records)
    register_mark(
        vault,
        access,
        coll.name,
        names,
        export_id=export_id,
        rows=len(out),
        canaries=(),
        carriers=carriers,
        read=read,
    )
    return out
