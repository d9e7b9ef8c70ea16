"""Merkle tree hashing, proofs and their verification (RFC 9162 §2.1, same as RFC 6962 §2.1).

Leaves are hashed as ``SHA-256(0x00 || entry)`` and interior nodes as
``SHA-256(0x01 || left || right)``; a tree of ``n > 1`` leaves splits at the largest power of
two smaller than ``n``. The empty tree's root is ``SHA-256(b"")``.

Functions taking ``leaves`` want raw entries; the ``*_from_hashes`` variants and
:func:`verify_inclusion_hash` want leaf hashes. Verifiers return ``None`` or raise
:class:`~custodes.errors.InclusionError` / :class:`~custodes.errors.ConsistencyError`.

Node ranges, for a persistent log
---------------------------------
A range ``(start, end)`` names the subtree over leaves ``start .. end-1``. Every range this
module returns is *aligned*: ``start`` is a multiple of the largest power of two not smaller
than ``end - start``. :func:`inclusion_proof_nodes` and :func:`consistency_proof_nodes` give,
in proof order, the ranges whose subtree hashes make up a proof, so a store can fetch them:

* a range whose size is a power of two is a *perfect* subtree; its hash can be stored once,
  when its last leaf is appended, and fetched directly;
* any other range is the rightmost edge of the tree; its hash is :func:`combine_peaks` of the
  hashes of :func:`range_peaks` ``(start, end)`` (all perfect), largest first.

:func:`subtree_roots` gives the peaks of a whole tree: its compact range.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from custodes.errors import ConsistencyError, InclusionError, InputError

__all__ = [
    "HASH_SIZE",
    "combine_peaks",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "range_peaks",
    "root",
    "root_from_hashes",
    "subtree_roots",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_hash",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 9162 hash of one raw leaf entry."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node from its children's hashes."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _require_hashes(hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise InputError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return hashes[start]
    k = _split(end - start)
    return node_hash(_mth(hashes, start, start + k), _mth(hashes, start + k, end))


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash over the given leaf hashes.

    Raises InputError if a leaf hash is not 32 bytes.
    """
    _require_hashes(hashes)
    if not hashes:
        return _EMPTY_ROOT
    return _mth(hashes, 0, len(hashes))


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash over the given raw entries (``SHA-256(b"")`` if empty)."""
    return root_from_hashes([leaf_hash(e) for e in leaves])


# --- node ranges ------------------------------------------------------------------------------


def range_peaks(start: int, end: int) -> list[Range]:
    """Return the perfect subtrees composing the aligned range ``(start, end)``, largest first.

    Raises InputError if the range is empty or negative.
    """
    if not 0 <= start < end:
        raise InputError(f"range ({start}, {end}) is not a non-empty range of leaves")
    peaks: list[Range] = []
    size = end - start
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            peaks.append((start, start + (1 << bit)))
            start += 1 << bit
    return peaks


def subtree_roots(size: int) -> list[Range]:
    """Return the peaks (perfect subtrees) of a tree of ``size`` leaves, largest first.

    Raises InputError if ``size`` is negative.
    """
    if size < 0:
        raise InputError(f"tree size {size} is negative")
    return range_peaks(0, size) if size else []


def combine_peaks(peak_hashes: Sequence[bytes]) -> bytes:
    """Return the hash of a range from the hashes of its peaks, given largest first.

    Raises InputError if there are no peaks.
    """
    if not peak_hashes:
        raise InputError("cannot combine an empty list of peak hashes")
    acc = peak_hashes[-1]
    for peak in reversed(peak_hashes[:-1]):
        acc = node_hash(peak, acc)
    return acc


def inclusion_proof_nodes(index: int, size: int) -> list[Range]:
    """Return the ranges whose hashes form the inclusion proof of leaf ``index``, leaf to root.

    Raises InputError if ``index`` is not in ``0 .. size-1``.
    """
    if not 0 <= index < size:
        raise InputError(f"leaf index {index} is out of range for a tree of size {size}")
    top_down: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            top_down.append((mid, end))
            end = mid
        else:
            top_down.append((start, mid))
            start = mid
    return top_down[::-1]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[Range]:
    """Return the ranges whose hashes form the consistency proof ``old_size -> new_size``.

    The proof is empty when the sizes are equal (RFC 9162 §2.1.4.1).

    Raises InputError unless ``0 < old_size <= new_size``.
    """
    if not 0 < old_size <= new_size:
        raise InputError(
            f"consistency needs 0 < old_size <= new_size, got {old_size} and {new_size}"
        )
    top_down: list[Range] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            top_down.append((start + k, end))
            end = start + k
        else:
            top_down.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        # The old tree's last subtree is not a left edge, so it is part of the proof.
        top_down.append((start, end))
    return top_down[::-1]


# --- proofs -----------------------------------------------------------------------------------


def _hashes_for(hashes: Sequence[bytes], ranges: list[Range]) -> list[bytes]:
    return [_mth(hashes, start, end) for start, end in ranges]


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` in the tree over ``hashes``, leaf to root.

    Raises InputError if the index is out of range or a leaf hash is not 32 bytes.
    """
    _require_hashes(hashes)
    return _hashes_for(hashes, inclusion_proof_nodes(index, len(hashes)))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof of raw entry ``index``, leaf to root.

    Raises InputError if the index is out of range.
    """
    return inclusion_proof_from_hashes([leaf_hash(e) for e in leaves], index)


def consistency_proof_from_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the first ``old_size`` leaf hashes are a prefix of ``hashes``.

    Raises InputError unless ``0 < old_size <= len(hashes)`` or if a hash is not 32 bytes.
    """
    _require_hashes(hashes)
    return _hashes_for(hashes, consistency_proof_nodes(old_size, len(hashes)))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the first ``old_size`` raw entries are a prefix of ``leaves``.

    Raises InputError unless ``0 < old_size <= len(leaves)``.
    """
    return consistency_proof_from_hashes([leaf_hash(e) for e in leaves], old_size)


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------------


def _check_size(
    value: bytes, what: str, error: type[InclusionError] | type[ConsistencyError]
) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _inclusion_length(index: int, size: int) -> int:
    """Proof length for leaf ``index`` of ``size``: inner levels plus right-border levels."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _check_inclusion_args(index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    if not 0 <= index < size:
        raise InclusionError(f"leaf index {index} is out of range for a tree of size {size}")
    _check_size(root, "root", InclusionError)
    for i, p in enumerate(proof):
        _check_size(p, f"proof[{i}]", InclusionError)
    want = _inclusion_length(index, size)
    if len(proof) != want:
        raise InclusionError(
            f"wrong inclusion proof length for leaf {index} of {size}: "
            f"expected {want} hashes, got {len(proof)}"
        )


def _root_from_inclusion(index: int, size: int, proof: Sequence[bytes], r: bytes) -> bytes:
    fn, sn = index, size - 1
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where this node has no right sibling (right edge of the tree).
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r


def verify_inclusion_hash(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Raises InclusionError naming the problem: index out of range, a hash not 32 bytes, wrong
    proof length, or a computed root that does not match.
    """
    _check_size(leaf_hash, "leaf hash", InclusionError)
    _check_inclusion_args(index, size, proof, root)
    computed = _root_from_inclusion(index, size, proof, leaf_hash)
    if not hmac.compare_digest(computed, root):
        raise InclusionError(
            f"inclusion proof for leaf {index} of {size} does not lead to the given root"
        )


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that raw entry ``leaf`` is leaf ``index`` of the tree with ``root``.

    Raises InclusionError as :func:`verify_inclusion_hash` does.
    """
    verify_inclusion_hash(leaf_hash(leaf), index, size, proof, root)


def _consistency_length(old_size: int, new_size: int) -> int:
    """Proof length: the old tree's seed node (unless a left edge) plus its inclusion path."""
    level = (old_size & -old_size).bit_length() - 1
    index, size = (old_size - 1) >> level, ((new_size - 1) >> level) + 1
    return (1 if index else 0) + _inclusion_length(index, size)


def _check_consistency_args(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if old_size <= 0:
        raise ConsistencyError(f"old_size must be at least 1, got {old_size}")
    if old_size > new_size:
        raise ConsistencyError(f"old_size {old_size} is larger than new_size {new_size}")
    _check_size(old_root, "old root", ConsistencyError)
    _check_size(new_root, "new root", ConsistencyError)
    for i, p in enumerate(proof):
        _check_size(p, f"proof[{i}]", ConsistencyError)
    want = 0 if old_size == new_size else _consistency_length(old_size, new_size)
    if len(proof) != want:
        raise ConsistencyError(
            f"wrong consistency proof length for {old_size} -> {new_size}: "
            f"expected {want} hashes, got {len(proof)}"
        )


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect left subtree: its root is the seed, not sent in the proof.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr, sr


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    Raises ConsistencyError naming the problem: old_size 0 (nothing to prove), old_size larger
    than new_size, a hash not 32 bytes, wrong proof length, or a root that does not match.
    """
    _check_consistency_args(old_size, new_size, old_root, new_root, proof)
    if old_size == new_size:
        if not hmac.compare_digest(old_root, new_root):
            raise ConsistencyError(f"trees of equal size {old_size} have different roots")
        return
    fr, sr = _roots_from_consistency(old_size, new_size, old_root, proof)
    if not hmac.compare_digest(fr, old_root):
        raise ConsistencyError(f"consistency proof does not lead to the old root ({old_size})")
    if not hmac.compare_digest(sr, new_root):
        raise ConsistencyError(f"consistency proof does not lead to the new root ({new_size})")
