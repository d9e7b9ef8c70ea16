"""The persistent access ledger: an RFC 9162 Merkle log over the store's event table.

The store writes each event's leaf hash and every perfect subtree it completes in the event's
own transaction (table ``ledger_nodes``). Roots and proofs for any size are then assembled from
O(log n) stored nodes; only :meth:`Ledger.verify` rehashes the log, to catch a store whose
events or nodes were changed behind custodes' back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from custodes.errors import InputError, VerificationError
from custodes.ledger import merkle

if TYPE_CHECKING:
    from custodes.store import Store

__all__ = ["Ledger", "LedgerTamperError"]

_Key = tuple[int, int]
_Node = tuple[int, int, bytes]
_MAX_LEVEL = 64


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

    def verify(self, *, expect_size: int | None = None, expect_root: bytes | None = None) -> None:
        """Recompute the whole tree from the stored events and compare it with what is stored.

        With ``expect_size``/``expect_root`` (a checkpoint seen earlier) also check that the log
        still has at least that many entries and that its root at that size is unchanged.

        Raises:
            LedgerTamperError: an event is missing, out of place or altered, a stored node
                disagrees with the events, or the log contradicts the checkpoint; the message
                and ``index`` name the first bad entry.
            StoreError: the store could not be read.
        """
        size = _Checker(self._store).run()
        if expect_size is not None and size < expect_size:
            raise LedgerTamperError(
                f"entry {size}: the log has {size} entries but the checkpoint has "
                f"{expect_size}; entries {size}..{expect_size - 1} are missing",
                size,
            )
        if expect_root is not None:
            at = size if expect_size is None else expect_size
            if self.root(at) != expect_root:
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
    """Streams events and stored nodes in order, rebuilding the tree with O(log n) memory."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._streams: dict[int, Iterator[tuple[int, bytes]]] = {}
        self._pending: dict[int, tuple[int, bytes] | None] = {}

    def run(self) -> int:
        edge: list[_Node] = []
        pos = 0
        for seq, event in self._store.events():
            if seq != pos:
                raise LedgerTamperError(
                    f"entry {pos}: the stored event is missing (the next stored event is {seq})",
                    pos,
                )
            node: _Node = (0, pos, merkle.leaf_hash(event.canonical()))
            self._expect(node)
            while edge and edge[-1][0] == node[0]:
                left = edge.pop()
                node = (node[0] + 1, node[1] >> 1, merkle.node_hash(left[2], node[2]))
                self._expect(node)
            edge.append(node)
            pos += 1
        self._no_extra_nodes(pos)
        return pos

    def _next_stored(self, level: int) -> tuple[int, bytes] | None:
        if level not in self._streams:
            self._streams[level] = self._store.level_nodes(level)
            self._pending[level] = next(self._streams[level], None)
        return self._pending[level]

    def _expect(self, node: _Node) -> None:
        level, idx, digest = node
        stored = self._next_stored(level)
        first = idx << level
        if stored is None or stored[0] != idx:
            raise LedgerTamperError(self._describe(level, first, "is missing"), first)
        self._pending[level] = next(self._streams[level], None)
        if stored[1] != digest:
            what = "does not match" if level else "does not match its leaf hash"
            raise LedgerTamperError(self._describe(level, first, what), first)

    @staticmethod
    def _describe(level: int, first: int, problem: str) -> str:
        if level == 0:
            if problem == "is missing":
                return f"entry {first}: the stored leaf hash of the event is missing"
            return f"entry {first}: stored event {problem}"
        last = first + (1 << level) - 1
        subject = f"the stored subtree hash over entries {first}..{last} (level {level})"
        verb = problem if problem == "is missing" else f"{problem} those entries"
        return f"entry {first}: {subject} {verb}"

    def _no_extra_nodes(self, size: int) -> None:
        # Nodes past the events (e.g. the events of a truncated tail deleted but not their
        # hashes) also mean the store was edited.
        for level in range(_MAX_LEVEL):
            extra = next(self._store.level_nodes(level, size >> level), None)
            if extra is not None:
                first = extra[0] << level
                raise LedgerTamperError(
                    f"entry {first}: a stored hash at level {level} covers entries the log "
                    f"does not have (it has {size})",
                    first,
                )
