"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs and proof verification.

Kept free of storage and I/O so that the audit log, the offline verifier and any external
auditor share one definition of the tree. Leaves and interior nodes are hashed with different
one-byte prefixes (0x00 / 0x01) so that a leaf can never be passed off as an interior node
(second-preimage attack on naive Merkle trees).

Sizes and indices are 0-based leaf counts and positions, as in RFC 9162.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from privplate.errors import AuditError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleProofError",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# Returns the hash of the RFC 6962 subtree over leaves [start, end).
_SubtreeHash = Callable[[int, int], bytes]


class MerkleProofError(AuditError, ValueError):
    """An inclusion or consistency proof did not verify; the message says which check failed."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry as a tree leaf."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1 over already-hashed leaves; ``EMPTY_ROOT`` when empty."""
    _check_hashes(leaf_hashes)
    return _mth(leaf_hashes)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1 for the tree over all of ``leaf_hashes``.

    Costs O(n) hashing; use :class:`MerkleTree` for repeated queries on a large log.
    """
    _check_hashes(leaf_hashes)
    return _inclusion_path(index, len(leaf_hashes), lambda s, e: _mth(leaf_hashes[s:e]))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 6962 §2.1.2 for the tree over all of ``leaf_hashes``.

    ``old_size`` 0 or n yields the empty proof: the empty tree and the tree itself are
    trivially prefixes of it. Costs O(n) hashing; use :class:`MerkleTree` for repeated queries.
    """
    _check_hashes(leaf_hashes)
    return _consistency_path(old_size, len(leaf_hashes), lambda s, e: _mth(leaf_hashes[s:e]))


class MerkleTree:
    """Append-only RFC 6962 tree answering root and proof queries for any past size.

    ``_levels[j][k]`` caches the hash of the complete subtree over leaves
    [k * 2**j, (k + 1) * 2**j). Every subtree that RFC 6962 hashes is either one of these
    or a right-edge fold of O(log n) of them, so each query costs O(log n) hashing after the
    O(n) build, whatever past size it asks about.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # Copied so that later changes to the caller's list cannot desynchronise the cache.
        leaves = list(leaf_hashes)
        _check_hashes(leaves)
        self._levels: list[list[bytes]] = [leaves]
        while len(self._levels[-1]) > 1:
            self._levels.append(_parents(self._levels[-1]))

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash, completing at most log2(n) cached parents."""
        _check_hashes((leaf_hash,))
        levels = self._levels
        levels[0].append(leaf_hash)
        height, index = 0, len(levels[0]) - 1
        # A node completes its parent exactly when it is a right child, i.e. has an odd index.
        while index & 1:
            parent = node_hash(levels[height][index - 1], levels[height][index])
            height += 1
            if height == len(levels):
                levels.append([])
            levels[height].append(parent)
            index >>= 1

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree over the first ``size`` leaves (default: all of them)."""
        n = self._resolve_size(size)
        return self._subtree_hash(0, n) if n else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 PATH for leaf ``index`` in the tree of the first ``size`` leaves."""
        return _inclusion_path(index, self._resolve_size(size), self._subtree_hash)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 PROOF that the tree of ``old_size`` leaves is a prefix of ``new_size``."""
        return _consistency_path(old_size, self._resolve_size(new_size), self._subtree_hash)

    def _resolve_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size} (the leaves held)")
        return size

    def _subtree_hash(self, start: int, end: int) -> bytes:
        # RFC 6962 only ever hashes subtrees whose start is aligned to their largest complete
        # part, so [start, end) splits into cached complete subtrees of strictly decreasing
        # size; MTH nests them to the right, hence the right-to-left fold.
        levels = self._levels
        parts: list[bytes] = []
        while start < end:
            height = (end - start).bit_length() - 1
            parts.append(levels[height][start >> height])
            start += 1 << height
        result = parts.pop()
        while parts:
            result = node_hash(parts.pop(), result)
        return result


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof per RFC 9162 §2.1.3.2; raise MerkleProofError if it fails.

    The proof binds ``size`` only through ``root``: callers must take the root from a tree
    head that was signed for that same size.
    """
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root hash")
    _require_proof_hashes(proof)
    if not 0 <= index < size:
        raise MerkleProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    running = leaf_hash
    for sibling in proof:
        if sn == 0:
            raise MerkleProofError(
                f"inclusion proof has {len(proof)} hashes, more than leaf {index} of a tree "
                f"of size {size} needs"
            )
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            # On the right edge the node may have no sibling for several levels: RFC 6962
            # promotes it unchanged, so skip those levels.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            running = node_hash(running, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError(
            f"inclusion proof has {len(proof)} hashes, fewer than leaf {index} of a tree "
            f"of size {size} needs"
        )
    if running != root:
        raise MerkleProofError(
            f"inclusion proof for leaf {index} does not lead to the given root of the tree "
            f"of size {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof per RFC 9162 §2.1.4.2; raise MerkleProofError if it fails.

    Beyond the RFC (which assumes 0 < old_size < new_size): equal sizes need an empty proof
    and equal roots; old_size 0 needs an empty proof and ``old_root == EMPTY_ROOT``.
    """
    _require_hash(old_root, "old root hash")
    _require_hash(new_root, "new root hash")
    _require_proof_hashes(proof)
    if not 0 <= old_size <= new_size:
        raise MerkleProofError(
            f"a tree of size {old_size} cannot be a prefix of a tree of size {new_size}"
        )
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    old_running, new_running = _consistency_roots(old_size, new_size, old_root, proof)
    if old_running != old_root:
        raise MerkleProofError(
            f"consistency proof does not reproduce the given root of the tree of size {old_size}"
        )
    if new_running != new_root:
        raise MerkleProofError(
            f"consistency proof does not reproduce the given root of the tree of size {new_size}"
        )


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    # RFC 9162 §2.1.4.2 steps 1-6 for 0 < old_size < new_size: the old and new roots that
    # the proof implies, or an error if its length does not fit the two sizes.
    if not proof:
        raise MerkleProofError(
            f"consistency proof from size {old_size} to {new_size} is empty; differing "
            "sizes need at least one hash"
        )
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # A power-of-two old tree is a complete subtree of the new one, so RFC 6962 leaves
        # its hash (which the verifier already has) out of the proof.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Levels where the old tree's last node is a right child add nothing to the proof.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_running = new_running = path[0]
    for node in path[1:]:
        if sn == 0:
            raise MerkleProofError(
                f"consistency proof from size {old_size} to {new_size} has {len(proof)} "
                "hashes, more than it needs"
            )
        if fn & 1 or fn == sn:
            old_running = node_hash(node, old_running)
            new_running = node_hash(node, new_running)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new_running = node_hash(new_running, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError(
            f"consistency proof from size {old_size} to {new_size} has {len(proof)} hashes, "
            "fewer than it needs"
        )
    return old_running, new_running


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise MerkleProofError(
            f"consistency proof from size {old_size} to {new_size} must be empty, "
            f"got {len(proof)} hashes"
        )
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise MerkleProofError("the root given for the empty tree is not SHA-256 of nothing")
    if old_size == new_size and old_root != new_root:
        raise MerkleProofError(f"two different roots were given for the tree of size {new_size}")


def _mth(leaf_hashes: Sequence[bytes]) -> bytes:
    if not leaf_hashes:
        return EMPTY_ROOT
    level = leaf_hashes
    while len(level) > 1:
        parents = _parents(level)
        # RFC 6962 splits at the largest power of two below n, so a node left without a
        # sibling is the root of the right-most complete subtree and meets its sibling
        # unchanged at a higher level. This pairwise reduction therefore equals the recursive
        # MTH without recursing per leaf.
        if len(level) & 1:
            parents.append(level[-1])
        level = parents
    return level[0]


def _parents(level: Sequence[bytes]) -> list[bytes]:
    # One comprehension over a shared iterator hashes adjacent pairs with no per-pair Python
    # calls beyond SHA-256 itself; an odd last node is dropped and left to the caller.
    pairs = iter(level)
    sha256, prefix = _sha256, _NODE_PREFIX
    return [
        sha256(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
    ]


def _split(n: int) -> int:
    # RFC 6962's k: the largest power of two strictly smaller than n (n >= 2).
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_path(index: int, size: int, subtree: _SubtreeHash) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            path.append(subtree(mid, end))
            end = mid
        else:
            path.append(subtree(start, mid))
            start = mid
    # The descent meets siblings root-first; RFC 6962 lists them leaf-first.
    path.reverse()
    return path


def _consistency_path(old_size: int, new_size: int, subtree: _SubtreeHash) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size} (the new size)")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    start, end = 0, new_size
    # SUBPROOF's flag b: stays true while the old tree is exactly a left-edge subtree, whose
    # hash the verifier already holds and so is not sent.
    old_is_known = True
    while old_size != end:
        mid = start + _split(end - start)
        if old_size <= mid:
            path.append(subtree(mid, end))
            end = mid
        else:
            path.append(subtree(start, mid))
            start = mid
            old_is_known = False
    if not old_is_known:
        path.append(subtree(start, end))
    path.reverse()
    return path


def _check_hashes(hashes: Sequence[bytes]) -> None:
    # set(map(len, ...)) runs at C speed, which matters on million-leaf logs.
    if set(map(len, hashes)) <= {HASH_SIZE}:
        return
    bad = next(i for i, h in enumerate(hashes) if len(h) != HASH_SIZE)
    raise ValueError(
        f"leaf hash #{bad} is {len(hashes[bad])} bytes, not {HASH_SIZE}: pass leaf_hash(entry)"
    )


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise MerkleProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise MerkleProofError(f"proof hash #{i} is {len(node)} bytes, not {HASH_SIZE}")
