"""Tests of the RFC 6962 / RFC 9162 Merkle tree in privplate.audit.merkle.

Three independent oracles: published Certificate Transparency vectors, a deliberately naive
recursive transcription of RFC 6962 §2.1 below, and the RFC 9162 verifiers themselves.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privplate.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleProofError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from privplate.errors import AuditError

VECTORS_PATH = Path(__file__).parent.parent / "crypto" / "vectors" / "merkle.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

KAT_LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
KAT_NODES = [[bytes.fromhex(h) for h in level] for level in VECTORS["node_hashes"]]
KAT_LEAF_HASHES = KAT_NODES[0]
KAT_ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]


def _hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in values]


# --- Reference: RFC 6962 §2.1 transcribed literally (recursive, slow, obviously right) ----


def _ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _ref_k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _ref_k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _ref_k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def distinct_leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"entry-%d" % i) for i in range(n)]


LEAVES_300 = distinct_leaves(300)
TREE_300 = MerkleTree(LEAVES_300)
OUTSIDER = leaf_hash(b"never appended")


def flip(value: bytes, position: int = 0) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x10]) + value[position + 1 :]


def inclusion_rejected(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except MerkleProofError:
        return True
    return False


def consistency_rejected(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    try:
        verify_consistency(old, new, old_root, new_root, proof)
    except MerkleProofError:
        return True
    return False


# --- Known-answer vectors -----------------------------------------------------------------


def test_vectors_name_their_source() -> None:
    assert "transparency-dev/merkle" in VECTORS["source"]["repository"]
    assert len(KAT_LEAVES) == 8
    assert len(KAT_ROOTS) == 9


def test_empty_root_matches_vector() -> None:
    expected = bytes.fromhex(VECTORS["empty_root"])
    assert expected == KAT_ROOTS[0]
    assert expected == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == expected
    assert MerkleTree().root() == expected


@pytest.mark.parametrize("i", range(8))
def test_leaf_hash_vectors(i: int) -> None:
    assert leaf_hash(KAT_LEAVES[i]) == KAT_LEAF_HASHES[i]


@pytest.mark.parametrize(
    ("level", "k"),
    [(level, k) for level in range(1, 4) for k in range(8 >> level)],
)
def test_node_hash_vectors(level: int, k: int) -> None:
    expected = KAT_NODES[level][k]
    below = KAT_NODES[level - 1]
    assert node_hash(below[2 * k], below[2 * k + 1]) == expected
    covered = KAT_LEAF_HASHES[k << level : (k + 1) << level]
    assert root_from_leaf_hashes(covered) == expected
    assert MerkleTree(covered).root() == expected


def test_tree_cache_layout_matches_node_vectors() -> None:
    # The cache is specified as "level j, index k = complete subtree [k*2^j, (k+1)*2^j)",
    # which is exactly how the vectors' NodeHashes are laid out.
    assert MerkleTree(KAT_LEAF_HASHES)._levels == KAT_NODES
    grown = MerkleTree()
    for h in KAT_LEAF_HASHES:
        grown.append(h)
    assert grown._levels == KAT_NODES


@pytest.mark.parametrize("size", range(9))
def test_root_vectors(size: int) -> None:
    expected = KAT_ROOTS[size]
    assert root_from_leaf_hashes(KAT_LEAF_HASHES[:size]) == expected
    assert MerkleTree(KAT_LEAF_HASHES).root(size) == expected
    assert MerkleTree(KAT_LEAF_HASHES[:size]).root() == expected
    assert ref_mth(KAT_LEAF_HASHES[:size]) == expected


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['index']}of{v['size']}")
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    index, size, expected = vector["index"], vector["size"], _hexes(vector["path"])
    assert inclusion_proof(KAT_LEAF_HASHES[:size], index) == expected
    assert MerkleTree(KAT_LEAF_HASHES).inclusion_proof(index, size) == expected
    verify_inclusion(KAT_LEAF_HASHES[index], index, size, expected, KAT_ROOTS[size])


@pytest.mark.parametrize(
    "vector",
    VECTORS["consistency"],
    ids=lambda v: f"{v['old_size']}to{v['new_size']}",
)
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    old, new, expected = vector["old_size"], vector["new_size"], _hexes(vector["proof"])
    assert consistency_proof(KAT_LEAF_HASHES[:new], old) == expected
    assert MerkleTree(KAT_LEAF_HASHES).consistency_proof(old, new) == expected
    verify_consistency(old, new, KAT_ROOTS[old], KAT_ROOTS[new], expected)


# --- Agreement with the recursive RFC 6962 definition -------------------------------------


def test_pairwise_reduction_equals_recursive_mth() -> None:
    for n in range(301):
        expected = ref_mth(LEAVES_300[:n])
        assert root_from_leaf_hashes(LEAVES_300[:n]) == expected, n
        assert TREE_300.root(n) == expected, n


def test_proofs_equal_rfc_definition_up_to_64_leaves() -> None:
    for n in range(1, 65):
        leaves = LEAVES_300[:n]
        for m in range(n):
            expected = ref_path(m, leaves)
            assert inclusion_proof(leaves, m) == expected, (m, n)
            assert TREE_300.inclusion_proof(m, n) == expected, (m, n)
        for m in range(1, n + 1):
            expected = ref_proof(m, leaves)
            assert consistency_proof(leaves, m) == expected, (m, n)
            assert TREE_300.consistency_proof(m, n) == expected, (m, n)


def test_appended_tree_equals_bulk_tree() -> None:
    grown = MerkleTree()
    for n, h in enumerate(LEAVES_300, start=1):
        grown.append(h)
        assert grown.size == len(grown) == n
        assert grown.root() == TREE_300.root(n)
    assert grown._levels == TREE_300._levels
    for n in (1, 7, 64, 129, 300):
        for m in range(n):
            assert grown.inclusion_proof(m, n) == TREE_300.inclusion_proof(m, n)
            assert grown.consistency_proof(m, n) == TREE_300.consistency_proof(m, n)


def test_cached_methods_equal_pure_functions_on_large_sizes() -> None:
    for n in (255, 256, 257, 299, 300):
        leaves = LEAVES_300[:n]
        assert TREE_300.root(n) == root_from_leaf_hashes(leaves)
        for m in (0, 1, n // 3, n // 2, n - 2, n - 1):
            assert TREE_300.inclusion_proof(m, n) == inclusion_proof(leaves, m)
            assert TREE_300.consistency_proof(m, n) == consistency_proof(leaves, m)
        assert TREE_300.consistency_proof(n, n) == consistency_proof(leaves, n) == []


def test_default_sizes_mean_the_whole_tree() -> None:
    assert TREE_300.root() == TREE_300.root(300)
    assert TREE_300.inclusion_proof(17) == TREE_300.inclusion_proof(17, 300)
    assert TREE_300.consistency_proof(17) == TREE_300.consistency_proof(17, 300)


# --- Exhaustive verification --------------------------------------------------------------


def test_every_inclusion_proof_up_to_300_leaves_verifies_and_only_for_itself() -> None:
    roots = [TREE_300.root(n) for n in range(301)]
    for size in range(1, 301):
        root = roots[size]
        for index in range(size):
            leaf = LEAVES_300[index]
            proof = TREE_300.inclusion_proof(index, size)
            verify_inclusion(leaf, index, size, proof, root)
            case = (index, size)

            for wrong_index in {index - 1, index + 1, index ^ 2} - {index}:
                assert inclusion_rejected(leaf, wrong_index, size, proof, root), case
            # A proof's shape fixes the tree height, not the exact size (RFC 9162 binds the
            # size through the signed root), so a wrong height must fail on shape alone ...
            for wrong_size in (size * 2, size // 2):
                if wrong_size > index:
                    assert inclusion_rejected(leaf, index, wrong_size, proof, root), case
            # ... and a neighbouring size must fail against that size's real root.
            for other in (size - 1, size + 1):
                if index < other <= 300:
                    assert inclusion_rejected(leaf, index, other, proof, roots[other]), case
            wrong_leaf = LEAVES_300[index + 1] if index + 1 < size else OUTSIDER
            assert inclusion_rejected(wrong_leaf, index, size, proof, root), case
            assert inclusion_rejected(leaf, index, size, proof, roots[size - 1]), case
            assert inclusion_rejected(leaf, index, size, [*proof, root], root), case
            if proof:
                where = index % len(proof)
                bad = [*proof]
                bad[where] = flip(bad[where], index % HASH_SIZE)
                assert inclusion_rejected(leaf, index, size, bad, root), case
                assert inclusion_rejected(leaf, index, size, proof[:-1], root), case


def test_inclusion_tampering_of_each_proof_hash_is_detected() -> None:
    for size in range(2, 65):
        root = TREE_300.root(size)
        for index in range(size):
            leaf = LEAVES_300[index]
            proof = TREE_300.inclusion_proof(index, size)
            for i in range(len(proof)):
                bad = [*proof]
                bad[i] = flip(bad[i], 31)
                assert inclusion_rejected(leaf, index, size, bad, root), (index, size, i)
            assert inclusion_rejected(leaf, index, size, [root, *proof], root), (index, size)


def test_every_consistency_proof_up_to_64_leaves_verifies_and_tampering_fails() -> None:
    roots = [TREE_300.root(n) for n in range(129)]
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = TREE_300.consistency_proof(old, new)
            old_root, new_root = roots[old], roots[new]
            verify_consistency(old, new, old_root, new_root, proof)
            case = (old, new)

            if old == new:
                assert proof == [], case
                assert consistency_rejected(old, new, old_root, OUTSIDER, []), case
                assert consistency_rejected(old, new, old_root, new_root, [new_root]), case
                continue

            for i in range(len(proof)):
                bad = [*proof]
                bad[i] = flip(bad[i], (old + i) % HASH_SIZE)
                assert consistency_rejected(old, new, old_root, new_root, bad), (*case, i)
            for wrong_old_root in (roots[old - 1], flip(old_root), new_root):
                assert consistency_rejected(old, new, wrong_old_root, new_root, proof), case
            for wrong_new_root in (roots[new - 1], flip(new_root), old_root):
                assert consistency_rejected(old, new, old_root, wrong_new_root, proof), case
            for wrong_proof in ([], proof[:-1], [*proof, new_root], [old_root, *proof]):
                assert consistency_rejected(old, new, old_root, new_root, wrong_proof), case
            # Claimed sizes that disagree with the roots: neighbouring or doubled sizes,
            # each with that size's genuine root.
            for wrong_old in (old - 1, old + 1):
                if 0 < wrong_old < new:
                    assert consistency_rejected(
                        wrong_old, new, roots[wrong_old], new_root, proof
                    ), case
            assert consistency_rejected(old, new * 2, old_root, roots[new * 2], proof), case
            assert consistency_rejected(new, old, new_root, old_root, proof), case


# --- Hypothesis ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=12), max_size=90),
    data=st.data(),
)
def test_random_trees_agree_with_reference_and_verify(
    entries: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(e) for e in entries]
    root = root_from_leaf_hashes(leaves)
    assert root == ref_mth(leaves)

    bulk = MerkleTree(leaves)
    grown = MerkleTree()
    for h in leaves:
        grown.append(h)
    assert bulk.root() == grown.root() == root
    if not leaves:
        return

    n = len(leaves)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = bulk.inclusion_proof(index, size)
    assert proof == grown.inclusion_proof(index, size) == ref_path(index, leaves[:size])
    verify_inclusion(leaves[index], index, size, proof, bulk.root(size))

    old = data.draw(st.integers(0, size), label="old")
    cproof = bulk.consistency_proof(old, size)
    assert cproof == consistency_proof(leaves[:size], old)
    if old:
        assert cproof == ref_proof(old, leaves[:size])
    verify_consistency(old, size, bulk.root(old), bulk.root(size), cproof)


# --- Errors -------------------------------------------------------------------------------


def test_proof_error_fits_the_package_hierarchy() -> None:
    assert issubclass(MerkleProofError, AuditError)
    assert issubclass(MerkleProofError, ValueError)


def test_leaf_hashes_of_the_wrong_length_are_refused() -> None:
    good = LEAVES_300[:3]
    with pytest.raises(ValueError, match=r"leaf hash #1 is 5 bytes"):
        root_from_leaf_hashes([good[0], b"short", good[2]])
    with pytest.raises(ValueError, match="leaf hash #0"):
        MerkleTree([b"x" * 33])
    tree = MerkleTree(good)
    with pytest.raises(ValueError, match="leaf hash"):
        tree.append(b"")
    assert tree.size == 3
    with pytest.raises(ValueError, match="leaf hash"):
        inclusion_proof([b"entry, not its hash"], 0)


def test_proof_generation_refuses_out_of_range_arguments() -> None:
    tree = MerkleTree(LEAVES_300[:5])
    with pytest.raises(ValueError, match="outside"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError, match="outside"):
        tree.inclusion_proof(-1)
    with pytest.raises(ValueError, match="outside"):
        tree.root(6)
    with pytest.raises(ValueError, match="outside"):
        tree.inclusion_proof(0, 6)
    with pytest.raises(ValueError, match="outside"):
        tree.consistency_proof(4, 3)
    with pytest.raises(ValueError, match="outside"):
        consistency_proof(LEAVES_300[:5], 6)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof([], 0)
    assert tree.consistency_proof(0, 5) == consistency_proof(LEAVES_300[:5], 0) == []


def test_verify_inclusion_messages_say_what_failed() -> None:
    leaf, root = LEAVES_300[0], TREE_300.root(4)
    proof = TREE_300.inclusion_proof(0, 4)
    with pytest.raises(MerkleProofError, match="outside a tree of size 4"):
        verify_inclusion(leaf, 4, 4, proof, root)
    with pytest.raises(MerkleProofError, match="outside a tree of size 0"):
        verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)
    with pytest.raises(MerkleProofError, match="more than"):
        verify_inclusion(leaf, 0, 4, [*proof, root], root)
    with pytest.raises(MerkleProofError, match="fewer than"):
        verify_inclusion(leaf, 0, 4, proof[:1], root)
    with pytest.raises(MerkleProofError, match="does not lead to the given root"):
        verify_inclusion(OUTSIDER, 0, 4, proof, root)
    with pytest.raises(MerkleProofError, match="leaf hash is 0 bytes"):
        verify_inclusion(b"", 0, 1, [], b"")
    with pytest.raises(MerkleProofError, match="root hash is 3 bytes"):
        verify_inclusion(leaf, 0, 1, [], b"abc")
    with pytest.raises(MerkleProofError, match="proof hash #1 is 0 bytes"):
        verify_inclusion(leaf, 0, 4, [proof[0], b""], root)
    # A single-leaf tree's root is its leaf hash, with an empty proof.
    verify_inclusion(leaf, 0, 1, [], leaf)


def test_verify_consistency_edge_cases_and_messages() -> None:
    r1, r5 = TREE_300.root(1), TREE_300.root(5)
    proof = TREE_300.consistency_proof(1, 5)
    with pytest.raises(MerkleProofError, match="cannot be a prefix"):
        verify_consistency(5, 1, r5, r1, proof)
    with pytest.raises(MerkleProofError, match="cannot be a prefix"):
        verify_consistency(-1, 5, r1, r5, proof)
    with pytest.raises(MerkleProofError, match="is empty"):
        verify_consistency(1, 5, r1, r5, [])
    with pytest.raises(MerkleProofError, match="more than it needs"):
        verify_consistency(1, 5, r1, r5, [*proof, r5])
    with pytest.raises(MerkleProofError, match="fewer than it needs"):
        verify_consistency(1, 5, r1, r5, proof[:-1])
    with pytest.raises(MerkleProofError, match="root of the tree of size 5"):
        verify_consistency(1, 5, r1, r1, proof)
    with pytest.raises(MerkleProofError, match="root of the tree of size 3"):
        verify_consistency(3, 5, r1, r5, TREE_300.consistency_proof(3, 5))
    with pytest.raises(MerkleProofError, match="must be empty"):
        verify_consistency(5, 5, r5, r5, [r5])
    with pytest.raises(MerkleProofError, match="two different roots"):
        verify_consistency(5, 5, r5, r1, [])
    with pytest.raises(MerkleProofError, match="new root hash is 0 bytes"):
        verify_consistency(1, 5, r1, b"", proof)
    # Everything extends the empty tree, but only the real empty root is accepted for it.
    verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(MerkleProofError, match="empty tree"):
        verify_consistency(0, 5, r1, r5, [])
    with pytest.raises(MerkleProofError, match="empty tree"):
        verify_consistency(0, 0, r1, r1, [])
    with pytest.raises(MerkleProofError, match="must be empty"):
        verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
