"""Merkle invariants, checked against a naive recursive reference written from RFC 9162 §2.1."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from custodes.errors import ConsistencyError, InclusionError, InputError
from custodes.ledger import merkle

MAX_LEAVES = 2000
BOUNDED = settings(max_examples=60, deadline=None)
WINDOW = 24  # how far around the true index/size the "every change" checks look


# --- the naive reference ----------------------------------------------------------------------


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], complete), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --- strategies -------------------------------------------------------------------------------


def make_leaves(n: int, salt: bytes) -> list[bytes]:
    # Derived entries keep large trees cheap to generate; the salt varies their content.
    return [salt + i.to_bytes(4, "big") for i in range(n)]


tree_sizes = st.integers(min_value=1, max_value=MAX_LEAVES)
salts = st.binary(max_size=6)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    n = draw(tree_sizes)
    return make_leaves(n, draw(salts)), draw(st.integers(0, n - 1))


@st.composite
def tree_and_old_size(draw: st.DrawFn) -> tuple[list[bytes], int]:
    n = draw(tree_sizes)
    return make_leaves(n, draw(salts)), draw(st.integers(1, n))


def bit_flips(value: bytes) -> list[bytes]:
    out = []
    for i in range(len(value) * 8):
        flipped = bytearray(value)
        flipped[i // 8] ^= 1 << (i % 8)
        out.append(bytes(flipped))
    return out


def rejects(error: type[Exception], check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except error:
        return True
    return False


# --- agreement with the reference -------------------------------------------------------------


@BOUNDED
@given(st.integers(0, MAX_LEAVES), salts)
@example(0, b"")
@example(1, b"")
@example(1024, b"")
@example(1025, b"")
def test_root_matches_reference(n: int, salt: bytes) -> None:
    leaves = make_leaves(n, salt)
    assert merkle.root(leaves) == ref_mth(leaves)
    assert merkle.root_from_hashes([merkle.leaf_hash(e) for e in leaves]) == ref_mth(leaves)


@BOUNDED
@given(tree_and_index())
def test_inclusion_proof_matches_reference_and_verifies(case: tuple[list[bytes], int]) -> None:
    leaves, index = case
    proof = merkle.inclusion_proof(leaves, index)
    assert proof == ref_path(index, leaves)
    merkle.verify_inclusion(leaves[index], index, len(leaves), proof, ref_mth(leaves))


@BOUNDED
@given(tree_and_old_size())
def test_consistency_proof_matches_reference_and_verifies(case: tuple[list[bytes], int]) -> None:
    leaves, old = case
    proof = merkle.consistency_proof(leaves, old)
    assert proof == ref_subproof(old, leaves, True)
    merkle.verify_consistency(old, len(leaves), ref_mth(leaves[:old]), ref_mth(leaves), proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 5000))
def test_peaks_cover_the_tree_and_combine_to_its_root(n: int) -> None:
    peaks = merkle.subtree_roots(n)
    assert [e - s for s, e in peaks] == sorted((e - s for s, e in peaks), reverse=True)
    assert all((e - s) & (e - s - 1) == 0 and s % (e - s) == 0 for s, e in peaks)
    assert [r for p in peaks for r in p][1:-1:2] == [r for p in peaks for r in p][2::2]
    if n:
        leaves = make_leaves(n, b"p")
        assert merkle.combine_peaks([ref_mth(leaves[s:e]) for s, e in peaks]) == ref_mth(leaves)


@BOUNDED
@given(tree_and_index())
def test_proof_nodes_fetched_via_peaks_give_the_proof(case: tuple[list[bytes], int]) -> None:
    leaves, index = case
    n = len(leaves)
    # A store holds only perfect subtrees; every other range is combined from its peaks.
    stored = {r: ref_mth(leaves[r[0] : r[1]]) for r in _perfect_ranges(n)}

    def fetch(ranges: list[tuple[int, int]]) -> list[bytes]:
        return [merkle.combine_peaks([stored[p] for p in merkle.range_peaks(*r)]) for r in ranges]

    assert fetch(merkle.inclusion_proof_nodes(index, n)) == ref_path(index, leaves)
    old = index + 1
    assert fetch(merkle.consistency_proof_nodes(old, n)) == ref_subproof(old, leaves, True)


def _perfect_ranges(n: int) -> list[tuple[int, int]]:
    out, width = [], 1
    while width <= n:
        out += [(s, s + width) for s in range(0, n - width + 1, width)]
        width *= 2
    return out


# --- tampering --------------------------------------------------------------------------------


def _inclusion_shape(index: int, size: int) -> list[bool]:
    """Left/right position of each proof sibling: all the verifier knows about the size."""
    return [end <= index for _, end in merkle.inclusion_proof_nodes(index, size)]


@BOUNDED
@given(tree_and_index())
def test_inclusion_rejects_every_bit_flip(case: tuple[list[bytes], int]) -> None:
    leaves, index = case
    n, r = len(leaves), merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    for bad_leaf in bit_flips(leaves[index]):
        assert rejects(InclusionError, merkle.verify_inclusion, bad_leaf, index, n, proof, r)
    for bad_root in bit_flips(r):
        assert rejects(
            InclusionError, merkle.verify_inclusion, leaves[index], index, n, proof, bad_root
        )
    for i, p in enumerate(proof):
        for bad in bit_flips(p):
            forged = [*proof[:i], bad, *proof[i + 1 :]]
            assert rejects(
                InclusionError, merkle.verify_inclusion, leaves[index], index, n, forged, r
            )


@BOUNDED
@given(tree_and_index())
def test_inclusion_rejects_other_index_and_size(case: tuple[list[bytes], int]) -> None:
    leaves, index = case
    n, r = len(leaves), merkle.root(leaves)
    proof, leaf = merkle.inclusion_proof(leaves, index), leaves[index]
    for other in {*range(index - WINDOW, index + WINDOW), -1, n, 2 * n} - {index}:
        assert rejects(InclusionError, merkle.verify_inclusion, leaf, other, n, proof, r)
    # RFC 9162 proofs do not commit to the size: a size whose proof has the same shape also
    # verifies. The size must come from the signed checkpoint; every other size is rejected.
    for size in {*range(n - WINDOW, n + WINDOW), 0, 2 * n, n // 2} - {n}:
        same_shape = 0 <= index < size and _inclusion_shape(index, size) == _inclusion_shape(
            index, n
        )
        ok = not rejects(InclusionError, merkle.verify_inclusion, leaf, index, size, proof, r)
        assert ok == same_shape


def _consistency_shape(old: int, new: int) -> tuple[bool, list[bool]]:
    nodes = merkle.consistency_proof_nodes(old, new)
    return old & (old - 1) == 0, [end <= old for _, end in nodes]


@BOUNDED
@given(tree_and_old_size())
def test_consistency_rejects_every_bit_flip(case: tuple[list[bytes], int]) -> None:
    leaves, old = case
    n = len(leaves)
    old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, old)

    def check(o: bytes, nr: bytes, p: list[bytes]) -> Callable[[], None]:
        return lambda: merkle.verify_consistency(old, n, o, nr, p)

    for bad in bit_flips(old_root):
        assert rejects(ConsistencyError, check(bad, new_root, proof))
    for bad in bit_flips(new_root):
        assert rejects(ConsistencyError, check(old_root, bad, proof))
    for i, p in enumerate(proof):
        for bad in bit_flips(p):
            assert rejects(
                ConsistencyError, check(old_root, new_root, [*proof[:i], bad, *proof[i + 1 :]])
            )


@BOUNDED
@given(tree_and_old_size())
def test_consistency_rejects_other_sizes(case: tuple[list[bytes], int]) -> None:
    leaves, old = case
    n = len(leaves)
    old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, old)

    def accepted(o: int, m: int) -> bool:
        verify = lambda: merkle.verify_consistency(o, m, old_root, new_root, proof)  # noqa: E731
        return not rejects(ConsistencyError, verify)

    def same_shape(o: int, m: int) -> bool:
        if old == n:
            return o == m  # empty proof, equal roots: only "equal sizes" is claimed
        return 0 < o < m and _consistency_shape(o, m) == _consistency_shape(old, n)

    for o in {*range(old - WINDOW, old + WINDOW), 0, -1, n + 1} - {old}:
        assert accepted(o, n) == same_shape(o, n)
    for m in {*range(n - WINDOW, n + WINDOW), 2 * n} - {n}:
        assert accepted(old, m) == same_shape(old, m)


# --- argument errors --------------------------------------------------------------------------


def test_verifiers_name_the_problem() -> None:
    leaves = make_leaves(5, b"e")
    r, proof = merkle.root(leaves), merkle.inclusion_proof(leaves, 2)
    with pytest.raises(InclusionError, match="out of range"):
        merkle.verify_inclusion(leaves[2], 5, 5, proof, r)
    with pytest.raises(InclusionError, match=r"proof\[1\] is 31 bytes"):
        merkle.verify_inclusion(leaves[2], 2, 5, [proof[0], proof[1][:31], proof[2]], r)
    with pytest.raises(InclusionError, match="expected 3 hashes, got 2"):
        merkle.verify_inclusion(leaves[2], 2, 5, proof[:2], r)
    with pytest.raises(InclusionError, match="does not lead to the given root"):
        merkle.verify_inclusion(leaves[3], 2, 5, proof, r)
    old_root = merkle.root(leaves[:3])
    cproof = merkle.consistency_proof(leaves, 3)
    with pytest.raises(ConsistencyError, match="at least 1"):
        merkle.verify_consistency(0, 5, old_root, r, cproof)
    with pytest.raises(ConsistencyError, match="larger than new_size"):
        merkle.verify_consistency(5, 3, r, old_root, cproof)
    with pytest.raises(ConsistencyError, match="old root"):
        merkle.verify_consistency(3, 5, r, r, cproof)


def test_proof_builders_reject_bad_arguments() -> None:
    leaves = make_leaves(4, b"a")
    with pytest.raises(InputError, match="out of range"):
        merkle.inclusion_proof(leaves, 4)
    with pytest.raises(InputError, match="0 < old_size <= new_size"):
        merkle.consistency_proof(leaves, 0)
    with pytest.raises(InputError, match="0 < old_size <= new_size"):
        merkle.consistency_proof(leaves, 5)
    with pytest.raises(InputError, match="leaf hash 1 is 3 bytes"):
        merkle.root_from_hashes([bytes(32), b"abc"])
    assert merkle.consistency_proof(leaves, 4) == []
