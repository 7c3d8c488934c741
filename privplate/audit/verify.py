"""Full verification of the audit log, and of a witness's checkpoint against it.

Every check names the first entry (or range of entries) that fails, so an auditor knows where
to look. Verification reads the whole log; it never trusts the server's cached tree.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from privplate.audit.entries import decode_entry
from privplate.audit.merkle import MerkleTree, leaf_hash, verify_consistency
from privplate.audit.signing import AuditSigner, Checkpoint
from privplate.errors import AuditError
from privplate.store.database import Database
from privplate.store.models import AuditEntry

_BATCH = 10_000


@dataclass
class VerifyReport:
    entries: int = 0
    pruned: int = 0
    root: bytes = b""
    checkpoints_checked: int = 0
    witness_checked: bool = False
    problems: list[str] = field(default_factory=list)
    #: The tree recomputed from the stored leaves, for checks that build on this one (the
    #: witnesses' cosignatures, audit/cosigners.py).
    tree: MerkleTree = field(default_factory=MerkleTree, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems


def _bytes(value: object) -> bytes:
    # Someone editing with SQL may have turned a BLOB into TEXT; compare the bytes anyway.
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]


def _identity_problem(row: Any, expected_seq: int, leaf: bytes, signer: AuditSigner) -> str | None:
    if row.seq != expected_seq:
        return f"entry #{expected_seq} is missing (deleted or renumbered)"
    if not hmac.compare_digest(_bytes(row.mac), signer.entry_mac(row.seq, leaf)):
        return (
            f"entry #{row.seq}: leaf hash was rewritten (its MAC does not match the deployment key)"
        )
    return None


def _through_seq(data: object) -> int:
    value = decode_entry(_bytes(data)).details.get("through_seq")
    return value if type(value) is int else -1


def _content_problem(row: Any, leaf: bytes) -> str | None:
    data = _bytes(row.entry)
    if not hmac.compare_digest(leaf_hash(data), leaf):
        return f"entry #{row.seq}: content does not match its leaf hash (edited)"
    try:
        entry = decode_entry(data)
    except AuditError as exc:
        return f"entry #{row.seq}: {exc}"
    if entry.seq != row.seq:
        return f"entry #{row.seq}: it records sequence number {entry.seq} (reordered)"
    if (entry.actor, entry.action, entry.time) != (row.actor, row.action, row.created_at):
        return f"entry #{row.seq}: indexed columns differ from the signed content"
    return None


def verify_log(
    db: Database,
    signer: AuditSigner,
    *,
    witness: Checkpoint | None = None,
    stored: list[Checkpoint] | None = None,
) -> VerifyReport:
    report = VerifyReport()
    leaves: list[bytes] = []
    seen_content = False
    last_pruned = -1
    pruned_through = -1  # the furthest an authentic audit.pruned entry allows erasure
    with db.read() as conn:
        last = -1
        while True:
            rows = conn.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last)
                .order_by(AuditEntry.seq)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                leaf = _bytes(row.leaf_hash)
                problem = _identity_problem(row, len(leaves), leaf, signer)
                if problem is None and row.entry is None and seen_content:
                    problem = f"entry #{row.seq}: content erased outside the pruned prefix"
                if problem is None and row.entry is not None:
                    seen_content = True
                    problem = _content_problem(row, leaf)
                    if problem is None and row.action == "audit.pruned":
                        pruned_through = max(pruned_through, _through_seq(row.entry))
                if row.entry is None:
                    last_pruned = row.seq
                if problem and not report.problems:
                    report.problems.append(problem)
                report.pruned += row.entry is None
                leaves.append(leaf)
            last = rows[-1].seq
    if last_pruned > pruned_through and not report.problems:
        report.problems.append(
            f"entries #0 to #{last_pruned} have no content, but no audit.pruned entry covers "
            f"them beyond #{pruned_through} (erased without a recorded policy)"
        )
    tree = MerkleTree(leaves)
    report.tree = tree
    report.entries = tree.size
    report.root = tree.root()
    _check_stored(tree, signer, stored or [], report)
    if witness is not None:
        _check_witness(tree, signer, witness, stored or [], report)
    return report


def _when(cp: Checkpoint) -> str:
    # Stored rows always have their time; a checkpoint read from a bare note has none.
    return "at an unrecorded time" if cp.time is None else cp.time.isoformat()


def _check_stored(
    tree: MerkleTree, signer: AuditSigner, stored: list[Checkpoint], report: VerifyReport
) -> None:
    good_size = 0
    for cp in sorted(stored, key=lambda c: c.tree_size):
        report.checkpoints_checked += 1
        try:
            cp.verify_signature(signer.public_key)
        except AuditError as exc:
            report.problems.append(f"stored {exc}")
            continue
        if cp.tree_size > tree.size:
            report.problems.append(
                f"log truncated: a checkpoint signed {_when(cp)} covers "
                f"{cp.tree_size} entries but only {tree.size} remain"
            )
            return
        if not hmac.compare_digest(tree.root(cp.tree_size), cp.root):
            report.problems.append(
                f"log rewritten between entry #{good_size} and #{cp.tree_size - 1}: it no "
                f"longer matches the checkpoint signed {_when(cp)}"
            )
            return
        good_size = cp.tree_size


def _check_witness(
    tree: MerkleTree,
    signer: AuditSigner,
    witness: Checkpoint,
    stored: list[Checkpoint],
    report: VerifyReport,
) -> None:
    try:
        witness.verify_signature(signer.public_key)
    except AuditError as exc:
        report.problems.append(f"witness {exc}")
        return
    if witness.tree_size > tree.size:
        report.problems.append(
            f"log truncated: the witness checkpoint covers {witness.tree_size} entries, the "
            f"log now has {tree.size}"
        )
        return
    proof = tree.consistency_proof(witness.tree_size, tree.size)
    try:
        verify_consistency(witness.tree_size, tree.size, witness.root, tree.root(), proof)
    except AuditError:
        earlier = [
            c.tree_size
            for c in stored
            if c.tree_size < witness.tree_size
            and hmac.compare_digest(tree.root(c.tree_size), c.root)
        ]
        start = max(earlier, default=0)
        report.problems.append(
            f"log rewritten after the witness checkpoint: entries #{start} to "
            f"#{witness.tree_size - 1} no longer match it"
        )
        return
    report.witness_checked = True
