"""The persistent access ledger: an RFC 9162 Merkle log in the store.

The store keeps each entry's bytes with its leaf hash and the hash of every perfect subtree it
completes, in one bundle per append written in the events' own transaction (table
``ledger_bundles``, docs/ledger.md).
Roots and proofs for any size are then assembled from O(log n) stored hashes; only
:meth:`Ledger.verify` rehashes the log, to catch a store whose entries, hashes or events were
changed behind custodes' back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from custodes.errors import InputError, VerificationError
from custodes.ledger import merkle
from custodes.ledger.merkle import HASH_SIZE

if TYPE_CHECKING:
    from custodes.model import AccessEvent
    from custodes.store import Store

__all__ = ["Ledger", "LedgerTamperError"]

_Key = tuple[int, int]
_Node = tuple[int, int, bytes]


class LedgerTamperError(VerificationError):
    """The stored log disagrees with itself or with a checkpoint; ``index`` is the first bad
    entry (``None`` when only a root differs and no single entry can be named)."""

    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.index = index


def _key(start: int, end: int) -> _Key:
    level = (end - start).bit_length() - 1
    return level, start >> level


class Ledger:
    """Roots, proofs and verification of the access log held by ``store``."""

    def __init__(self, *, store: Store) -> None:
        self._store = store

    def size(self) -> int:
        """Return the number of entries in the log.

        Raises:
            StoreError: the store could not be read.
        """
        return self._store.event_count()

    def root(self, size: int | None = None) -> bytes:
        """Return the root hash of the log's first ``size`` entries (default: all of them).

        Raises:
            InputError: ``size`` is negative or larger than the log.
            LedgerTamperError: a stored node the root needs is missing.
            StoreError: the store could not be read.
        """
        n = self._checked_size(size)
        if n == 0:
            return merkle.root_from_hashes([])
        return self._range_hashes([(0, n)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the inclusion proof of entry ``index`` in the tree of ``size``, leaf to root.

        Raises:
            InputError: ``size`` is larger than the log or ``index`` is not below it.
            LedgerTamperError: a stored node the proof needs is missing.
            StoreError: the store could not be read.
        """
        n = self._checked_size(size)
        return self._range_hashes(merkle.inclusion_proof_nodes(index, n))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Return the proof that the tree of ``old`` entries is a prefix of that of ``new``.

        Raises:
            InputError: unless ``0 < old <= new <= size()``.
            LedgerTamperError: a stored node the proof needs is missing.
            StoreError: the store could not be read.
        """
        n = self._checked_size(new)
        return self._range_hashes(merkle.consistency_proof_nodes(old, n))

    def verify(
        self,
        *,
        expect_size: int | None = None,
        expect_root: bytes | None = None,
        check_events: bool = True,
    ) -> None:
        """Recompute the whole tree from the stored events and compare it with what is stored.

        Every entry must hash to its stored leaf hash, every stored subtree hash must match the
        entries under it, and (``check_events``) every entry must be the canonical encoding of
        the event recorded at its index. With ``expect_size``/``expect_root`` (a checkpoint seen
        earlier) also check that the log still has at least that many entries and that the root
        recomputed from the entries at that size is the checkpoint's.

        Raises:
            LedgerTamperError: an event is missing, out of place or altered, a stored node
                disagrees with the events, or the log contradicts the checkpoint; the message
                and ``index`` name the first bad entry.
            StoreError: the store could not be read.
        """
        checker = _Checker(
            self._store,
            check_events=check_events,
            roots_at=[] if expect_size is None else [expect_size],
        )
        size = checker.run()
        if expect_size is not None and size < expect_size:
            raise LedgerTamperError(
                f"entry {size}: the log has {size} entries but the checkpoint has "
                f"{expect_size}; entries {size}..{expect_size - 1} are missing",
                size,
            )
        if expect_root is not None:
            at = size if expect_size is None else expect_size
            recomputed = checker.roots.get(at)
            if recomputed is None:  # no expected size: the root of the whole log
                recomputed = self.root(at)
            if recomputed != expect_root:
                raise LedgerTamperError(
                    f"the log's root at size {at} does not match the checkpoint's root: entries "
                    f"before {at} were rewritten consistently (no single entry can be named)",
                    None,
                )

    def _checked_size(self, size: int | None) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is not between 0 and the log's size {current}")
        return size

    def _range_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        plans = [[_key(*peak) for peak in merkle.range_peaks(*span)] for span in ranges]
        found = self._store.nodes([key for plan in plans for key in plan])
        for plan in plans:
            for level, idx in plan:
                if (level, idx) not in found:
                    first = idx << level
                    raise LedgerTamperError(
                        f"entry {first}: the stored subtree hash at level {level} over entries "
                        f"{first}..{first + (1 << level) - 1} is missing",
                        first,
                    )
        return [merkle.combine_peaks([found[key] for key in plan]) for plan in plans]


class _Checker:
    """Streams the ledger rows (and the events projection) in order, rebuilding the tree with
    O(log n) memory and comparing every stored hash and event with the recomputed one."""

    def __init__(self, store: Store, *, check_events: bool, roots_at: Sequence[int]) -> None:
        self._store = store
        self._check_events = check_events
        self._roots_at = set(roots_at)
        self.roots: dict[int, bytes] = {}

    def run(self) -> int:
        sha256 = hashlib.sha256
        edge: list[tuple[int, bytes]] = []
        events = self._store.events() if self._check_events else iter(())
        pending = next(events, None)
        pos = 0
        if 0 in self._roots_at:
            self.roots[0] = merkle.root_from_hashes([])
        for seq, entry, hashes in self._store.ledger_rows():
            if seq != pos:
                raise LedgerTamperError(
                    f"entry {pos}: the stored entry is missing (the next stored entry is {seq})",
                    pos,
                )
            if self._check_events:
                pending = self._check_event(pos, entry, pending, events)
            digest = sha256(b"\x00" + entry).digest()
            if hashes[:HASH_SIZE] != digest:
                raise LedgerTamperError(
                    f"entry {pos}: the stored entry does not match its stored leaf hash", pos
                )
            level = 0
            while edge and edge[-1][0] == level:
                digest = sha256(b"\x01" + edge.pop()[1] + digest).digest()
                level += 1
                stored = hashes[level * HASH_SIZE : (level + 1) * HASH_SIZE]
                if stored != digest:
                    first = pos + 1 - (1 << level)
                    raise LedgerTamperError(
                        f"entry {pos}: the stored hash of the subtree over entries "
                        f"{first}..{pos} does not match those entries",
                        pos,
                    )
            if len(hashes) != (level + 1) * HASH_SIZE:
                raise LedgerTamperError(
                    f"entry {pos}: the stored hashes have the wrong length for this position", pos
                )
            edge.append((level, digest))
            pos += 1
            if pos in self._roots_at:
                self.roots[pos] = merkle.combine_peaks([d for _, d in edge])
        if pending is not None:
            raise LedgerTamperError(
                f"entry {pending[0]}: an event is recorded past the end of the ledger "
                f"({pos} entries)",
                pending[0],
            )
        return pos

    @staticmethod
    def _check_event(
        pos: int,
        entry: bytes,
        pending: tuple[int, AccessEvent] | None,
        events: Iterator[tuple[int, AccessEvent]],
    ) -> tuple[int, AccessEvent] | None:
        if pending is None or pending[0] != pos:
            raise LedgerTamperError(
                f"entry {pos}: the event recorded for this entry is missing", pos
            )
        if pending[1].canonical(pos) != entry:
            raise LedgerTamperError(
                f"entry {pos}: the stored entry does not match the event recorded at that index",
                pos,
            )
        return next(events, None)
